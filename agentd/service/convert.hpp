// proto <-> agent and core types, and agent errors as gRPC statuses. The
// service (agent_service.cpp) is these conversions around the agent's calls.
#pragma once

#include <optional>
#include <string>

#include <grpcpp/grpcpp.h>

#include "agent/agent.hpp"
#include "agent_service.hpp"
#include "clovis/rpc/apply_status.hpp"
#include "clovis/rpc/status.hpp"
#include "clovis/rpc/wire.hpp"
#include "clovis/v1/agent.pb.h"
#include "core/classifier.hpp"
#include "core/flow_filter.hpp"
#include "core/flow_query.hpp"
#include "core/flow_row.hpp"
#include "telemetry/flow_view.hpp"
#include "telemetry/link_sampler.hpp"

namespace clovis::agent::service {

// Rejections carry the located diagnostics (rpc::rejected_status); the
// other failures are the rpc/ status of their error code: kPrecondition,
// kNotFound and kHost (kIo) map to FAILED_PRECONDITION, NOT_FOUND and
// UNAVAILABLE.
grpc::Status error_status(const ApplyError& e, const std::string& source, grpc::ServerContext* ctx);
// A kernel read that failed: UNAVAILABLE.
grpc::Status kernel_status(const core::Error& e);
grpc::Status invalid(const std::string& message);

// Only the first `max_diff_items` changes as DiffItems (nullopt: all); the
// counts (diff_total, diff_counts) cover every change either way.
void to_proto(const ApplyOutcome& o, const std::string& source, int64_t now_unix_ms,
              std::optional<uint32_t> max_diff_items, v1::ApplyResponse* out);
uint32_t seconds_left(int64_t deadline_unix_ms, int64_t now_unix_ms);

core::FlowFilterSpec from_proto(const v1::FlowFilter& f);
// The one writer of clovis.v1.Flow. A cleared message keeps its strings'
// memory, so refilling one (a ListFlows chunk) allocates nothing.
void to_proto(const core::FlowRow& r, v1::Flow* out);
// A flow-table entry's row, and what a proxy reported about it (l7).
void to_proto(const FlowNamer& names, const clv_flow_key& k, const clv_flow& f, uint64_t now_ns, v1::Flow* out);

struct LinkFacts {
  const LinkView& view;  // with the checker's verdict, if it has one
  const clv_link_stats& counters;
  const LinkRates& rates;
  uint64_t flows = 0;  // pinned to it now
};
// Expired by core::ct_state_key, every state present (zeros too).
void to_proto(const FlowTableTotals& t, v1::FlowTableTotals* out);
// The kernel's per-link counters only Status carries: each link of `out`
// (filled already) gets its drops by reason and the expiry scan's flow and
// NAT binding counts; `out` gets the migrations between links, by name.
void add_link_counters(const LinkDrops& drops, const LinkMigrations& moved, const std::vector<LinkMigrations>& left,
                       const FlowTableTotals& t, v1::StatusResponse* out);
void to_proto(const LinkFacts& l, v1::Link* out);
void to_proto(const LinkChange& e, v1::LinkEventMsg* out);

// The flow (or request) to simulate, built by core::build_flow_query as
// `clovisctl simulate` builds it from its options. An empty proto is tcp.
core::Result<core::FlowQuery> from_proto(const v1::SimulateRequest& r);

}  // namespace clovis::agent::service
