// Bounds on what a caller may send: every string and every repeated field
// of every request, and the size of a whole message, explicit rather than
// whatever gRPC's defaults are. A request over a bound is refused with
// INVALID_ARGUMENT naming the field and the bound (the agent API), or
// answered OK with the reason in x-clovis-error and nothing steered (ext_authz,
// which fails open). See clovisd(8), "Limits".
#pragma once

#include <cstddef>
#include <string>

#include <grpcpp/grpcpp.h>

#include "clovis/v1/agent.pb.h"
#include "core/loader.hpp"
#include "envoy/service/auth/v3/external_auth.pb.h"

namespace clovis::agent::service {

// The agent API's largest request: an Apply of the largest mapping, with
// room for its other (bounded) fields.
inline constexpr size_t kMaxApiMessageBytes = core::kMaxMappingBytes + (64u << 10);
// The ext_authz service's largest Check: Envoy sends at most 60 KiB of
// request headers by default (max_request_headers_kb), and clovis needs no
// body (leave the filter's with_request_body unset).
inline constexpr size_t kMaxCheckMessageBytes = 1u << 20;

// ApplyRequest.source: a file name, kept in history.json and the log.
inline constexpr size_t kMaxSourceBytes = 4096;
// FlowFilter: entries per field, and bytes per entry (an address, CIDR,
// protocol, link or rule name).
inline constexpr int kMaxFilterEntries = 64;
inline constexpr size_t kMaxFilterEntryBytes = 128;
// ListFlowsRequest.last: the largest flow table (clovisd --flow-table-size).
inline constexpr uint32_t kMaxLast = 16u << 20;
// HTTP facts (SimulateRequest, an ext_authz Check): host, path, method,
// headers and each header's name and value.
inline constexpr size_t kMaxHostBytes = 1024;
inline constexpr size_t kMaxPathBytes = 4096;
inline constexpr size_t kMaxMethodBytes = 64;
inline constexpr int kMaxHeaders = 256;
inline constexpr size_t kMaxHeaderNameBytes = 256;
inline constexpr size_t kMaxHeaderValueBytes = 4096;
// Every other string of a request (an address, a protocol, an interface).
inline constexpr size_t kMaxShortBytes = 256;

// OK, or INVALID_ARGUMENT naming the field over its bound.
grpc::Status check_request(const v1::ApplyRequest& r);
grpc::Status check_request(const v1::ListFlowsRequest& r);
grpc::Status check_request(const v1::WatchFlowsRequest& r);
grpc::Status check_request(const v1::SimulateRequest& r);

// Empty, or what in the Check is over its bound.
std::string check_limits(const ::envoy::service::auth::v3::CheckRequest& r);

}  // namespace clovis::agent::service
