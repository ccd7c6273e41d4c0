// WatchFlows: a scan of the flow table every interval, diffed against the
// previous scan (flow_scan.hpp), streamed as events, and the per-link
// counters with rates over the interval. The scans run on the WatchHub's
// threads; the stream holds none (watch_stream.hpp).
#include <malloc.h>

#include <algorithm>

#include <fmt/format.h>

#include "agent_service.hpp"
#include "convert.hpp"
#include "request_limits.hpp"
#include "telemetry/flow_scan.hpp"

namespace clovis::agent::service {

namespace {

constexpr uint32_t kDefaultIntervalMs = 1000;
constexpr uint32_t kMinIntervalMs = 100;
constexpr uint32_t kMaxIntervalMs = 60000;
// A watch's messages waiting for its client: above the high mark the scan
// waits until the client has read down to the low one. A client that reads
// nothing for ServiceOptions::slow_reader loses its watch (rather than hold
// a scan thread every other watch needs).
constexpr size_t kHighWater = 1u << 20;
constexpr size_t kLowWater = 256u << 10;

v1::FlowEvent::Kind kind(FlowChange c) {
  switch (c) {
    case FlowChange::kAdded: return v1::FlowEvent::ADDED;
    case FlowChange::kUpdated: return v1::FlowEvent::UPDATED;
    case FlowChange::kExpired: return v1::FlowEvent::EXPIRED;
  }
  return v1::FlowEvent::KIND_UNSPECIFIED;
}

}  // namespace

class FlowWatch final : public WatchTask {
 public:
  FlowWatch(AgentService& s, std::shared_ptr<Outbox<v1::FlowEvent>> out, core::FlowFilter filter, uint32_t interval_ms)
      : s_(s), out_(std::move(out)), filter_(std::move(filter)), interval_(interval_ms) {}
  // What the scan's map and buffers leave in the heap goes back at once.
  ~FlowWatch() override { malloc_trim(0); }

  std::optional<Clock::time_point> run() override;
  void end(const grpc::Status& st) override { out_->finish(st); }

 private:
  // Queues `m`; false when the watch has ended.
  bool send(v1::FlowEvent m);

  AgentService& s_;
  std::shared_ptr<Outbox<v1::FlowEvent>> out_;
  const core::FlowFilter filter_;
  const std::chrono::milliseconds interval_;
  FlowScan scan_;
  LinkSampler sampler_;
};

bool FlowWatch::send(v1::FlowEvent m) {
  if (!out_->push(std::move(m))) return false;
  const auto limit = s_.opts_.slow_reader;
  if (out_->queued_bytes() < kHighWater || out_->wait_below(kLowWater, limit)) return true;
  out_->finish({grpc::StatusCode::RESOURCE_EXHAUSTED,
                fmt::format("the watch's client read none of its events for {} ms; ended", limit.count())});
  return false;
}

std::optional<WatchTask::Clock::time_point> FlowWatch::run() {
  if (out_->closed()) return std::nullopt;
  const FlowNamer names(s_.agent_.recent_rules(), s_.opts_.sessions);
  const int64_t now_ms = now_unix_ms();
  uint64_t now_ns = 0;
  bool gone = false;
  PinnedFlows pinned{};
  auto sink = [&](FlowChange change, const FlowEntry& entry) {
    v1::FlowEvent e;
    e.set_kind(kind(change));
    e.set_time_unix_ms(now_ms);
    to_proto(names, entry.key, entry.flow, now_ns, e.mutable_flow());
    gone = !send(std::move(e));
    return !gone;
  };
  // The table a batch at a time: the scan's memory is its map of the
  // followed flows, which stays put from one interval to the next. The
  // kernel reads into the hub thread's buffer (~0.5 MB), not the watch's:
  // 500 watches would hold 250 MB of them.
  thread_local FlowBuffer buf;
  scan_.begin();
  auto st = s_.telemetry_.scan_flows(
      [&](const FlowBatch& batch) {
        now_ns = monotonic_ns();
        for (const auto& f : batch.flows) count_pinned(f, &pinned);
        return scan_.add(batch, filter_, names, sink);
      },
      buf);
  if (gone) return std::nullopt;
  if (!st) {
    out_->finish(kernel_status(st.error()));
    return std::nullopt;
  }
  now_ns = monotonic_ns();
  if (!scan_.end(sink)) return std::nullopt;
  auto counters = s_.telemetry_.link_counters();
  if (!counters) {
    out_->finish(kernel_status(counters.error()));
    return std::nullopt;
  }
  const auto tick = Clock::now();
  sampler_.add(*counters, tick);
  v1::FlowEvent c;
  c.set_kind(v1::FlowEvent::COUNTERS);
  c.set_time_unix_ms(now_ms);
  const auto rates = sampler_.rates();
  if (auto ls = s_.fill_links(c.mutable_links(), pinned, &*counters, &rates); !ls.ok()) {
    out_->finish(ls);
    return std::nullopt;
  }
  if (!send(std::move(c))) return std::nullopt;
  return tick + interval_;
}

grpc::ServerWriteReactor<v1::FlowEvent>* AgentService::WatchFlows(grpc::CallbackServerContext*,
                                                                  const v1::WatchFlowsRequest* req) {
  using Stream = WatchStream<v1::FlowEvent>;
  if (auto st = check_request(*req); !st.ok()) return Stream::refuse(st);
  auto filter = core::FlowFilter::parse(from_proto(req->filter()));
  if (!filter) return Stream::refuse(rpc::to_status(filter.error()));
  if (!watches_.take_slot()) return Stream::refuse(watches_.refusal());
  const uint32_t ms =
      req->interval_ms() ? std::clamp(req->interval_ms(), kMinIntervalMs, kMaxIntervalMs) : kDefaultIntervalMs;
  auto* stream = new Stream([this] { watches_.give_slot(); });
  if (!watches_.schedule(std::make_shared<FlowWatch>(*this, stream->outbox(), std::move(*filter), ms)))
    stream->outbox()->finish({grpc::StatusCode::UNAVAILABLE, "clovisd is stopping"});
  return stream;
}

}  // namespace clovis::agent::service
