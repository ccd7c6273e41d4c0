// A rejected mapping across the wire: INVALID_ARGUMENT with its located
// diagnostics in the trailer (kDiagnosticsTrailer) that clovisctl prints.
// An apply that failed otherwise is to_status() of its error code
// (status.hpp; kPrecondition is FAILED_PRECONDITION).
#pragma once

#include <cstddef>
#include <string>

#include <grpcpp/grpcpp.h>

#include "clovis/v1/agent.pb.h"
#include "core/diagnostics.hpp"

namespace clovis::rpc {

// Metadata travels in HTTP/2 headers, and gRPC clients refuse more than 8 KiB
// of them by default: the diagnostics in the trailer and the status message
// are cut to these sizes, with a last item saying how many were left out.
inline constexpr size_t kMaxTrailerBytes = 3000;
inline constexpr size_t kMaxStatusMessage = 1500;

void to_proto(const core::Diagnostic& d, const std::string& file, v1::Diagnostic* out);

// A rejected mapping: INVALID_ARGUMENT, the diagnostics (located in `file`)
// as its message and, whole, in the trailer.
grpc::Status rejected_status(const core::Diagnostics& d, const std::string& file, grpc::ServerContext* ctx);

}  // namespace clovis::rpc
