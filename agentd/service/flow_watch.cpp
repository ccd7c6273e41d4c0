// WatchFlows: a scan of the flow table every interval, diffed against the
// previous scan (flow_scan.hpp), streamed as events, and the per-link
// counters with rates over the interval.
#include <malloc.h>

#include <algorithm>

#include "agent_service.hpp"
#include "convert.hpp"
#include "flow_scan.hpp"

namespace clovis::agent::service {

namespace {

constexpr uint32_t kDefaultIntervalMs = 1000;
constexpr uint32_t kMinIntervalMs = 100;
constexpr uint32_t kMaxIntervalMs = 60000;
// How often a sleeping stream looks whether its client went away.
constexpr auto kCancelCheck = std::chrono::milliseconds(100);

v1::FlowEvent::Kind kind(FlowChange c) {
  switch (c) {
    case FlowChange::kAdded: return v1::FlowEvent::ADDED;
    case FlowChange::kUpdated: return v1::FlowEvent::UPDATED;
    case FlowChange::kExpired: return v1::FlowEvent::EXPIRED;
  }
  return v1::FlowEvent::KIND_UNSPECIFIED;
}

}  // namespace

grpc::Status AgentService::WatchFlows(grpc::ServerContext* ctx, const v1::WatchFlowsRequest* req,
                                      grpc::ServerWriter<v1::FlowEvent>* writer) {
  auto filter = FlowFilter::parse(from_proto(req->filter()));
  if (!filter) return invalid(filter.error().message);
  const uint32_t ms = req->interval_ms() ? std::clamp(req->interval_ms(), kMinIntervalMs, kMaxIntervalMs)
                                         : kDefaultIntervalMs;
  const grpc::Status stopping{grpc::StatusCode::UNAVAILABLE, "clovisd is stopping"};
  // Destroyed last: once the watch's flow map and buffers are freed, what
  // they leave in the heap goes back at once.
  struct TrimOnExit {
    ~TrimOnExit() { malloc_trim(0); }
  } trim;
  FlowScan scan;
  FlowBuffer buf;  // the kernel reads into the same memory every interval
  LinkSampler sampler;
  v1::FlowEvent e;  // refilled for every event: its strings keep their memory
  for (;;) {
    if (ctx->IsCancelled()) return grpc::Status::CANCELLED;
    const FlowNamer names(agent_.recent_rules(), opts_.sessions);
    const int64_t now_ms = now_unix_ms();
    uint64_t now_ns = 0;
    bool gone = false;
    PinnedFlows pinned{};
    auto sink = [&](FlowChange change, const FlowEntry& entry) {
      e.set_kind(kind(change));
      e.set_time_unix_ms(now_ms);
      e.mutable_flow()->Clear();  // keeps the strings' memory
      to_proto(names, entry.key, entry.flow, now_ns, e.mutable_flow());
      gone = !writer->Write(e);
      return !gone;
    };
    // The table a batch at a time: the scan's memory is its map of the
    // followed flows, which stays put from one interval to the next.
    scan.begin();
    auto st = dp_.scan_flows(
        [&](const FlowBatch& batch) {
          now_ns = monotonic_ns();
          for (const auto& f : batch.flows) count_pinned(f, &pinned);
          return scan.add(batch, *filter, names, sink);
        },
        buf);
    if (gone) return grpc::Status::CANCELLED;  // the client went away
    if (!st) return kernel_status(st.error());
    now_ns = monotonic_ns();
    if (!scan.end(sink)) return grpc::Status::CANCELLED;
    auto counters = dp_.link_counters();
    if (!counters) return kernel_status(counters.error());
    const auto tick = LinkSampler::Clock::now();
    sampler.add(*counters, tick);
    v1::FlowEvent c;
    c.set_kind(v1::FlowEvent::COUNTERS);
    c.set_time_unix_ms(now_ms);
    const auto rates = sampler.rates();
    if (auto ls = fill_links(c.mutable_links(), pinned, &*counters, &rates); !ls.ok()) return ls;
    if (!writer->Write(c)) return grpc::Status::CANCELLED;
    const auto next = tick + std::chrono::milliseconds(ms);
    for (auto now = LinkSampler::Clock::now(); now < next; now = LinkSampler::Clock::now()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next - now) + std::chrono::milliseconds(1);
      if (stop_.wait_for(std::min<std::chrono::milliseconds>(left, kCancelCheck))) return stopping;
      if (ctx->IsCancelled()) return grpc::Status::CANCELLED;
    }
    if (stop_.stopped()) return stopping;
  }
}

}  // namespace clovis::agent::service
