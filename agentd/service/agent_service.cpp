#include "agent_service.hpp"

#include <malloc.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "convert.hpp"
#include "core/json/decision_json.hpp"
#include "core/loader.hpp"
#include "request_limits.hpp"
#include "telemetry/counter_names.hpp"

namespace clovis::agent::service {

namespace {

constexpr uint32_t kMaxConfirmTimeoutS = 86400;
// Threads scanning the flow table for the flow watches, however many are
// open: two keep one slow scan (a large table) from delaying every other.
constexpr unsigned kWatchThreads = 2;
// Flows per ListFlows message: ~0.5 MB on the wire, and what clovisd holds
// of a listing (besides --last's N flows) whatever the table's size.
constexpr int kListChunk = 4096;

// ListFlows' messages: a chunk is filled, written when full, and refilled
// in place (a cleared message keeps its flows' memory). The chunk lives on
// an arena of large blocks, which malloc maps and unmaps whole: a listing's
// ~2 MB go back to the kernel when it ends, not into the heap's free lists.
google::protobuf::ArenaOptions chunk_arena() {
  google::protobuf::ArenaOptions o;
  o.start_block_size = 256 * 1024;
  o.max_block_size = 1024 * 1024;
  return o;
}

class ChunkWriter {
 public:
  ChunkWriter(grpc::ServerWriter<v1::ListFlowsResponse>* w, const FlowNamer& names)
      : w_(w),
        names_(names),
        arena_(chunk_arena()),
        chunk_(*google::protobuf::Arena::CreateMessage<v1::ListFlowsResponse>(&arena_)) {}
  // False when the client went away.
  bool add(const clv_flow_key& key, const clv_flow& flow, uint64_t now_ns) {
    if (chunk_.flows_size() == kListChunk) {
      if (!w_->Write(chunk_)) return false;
      chunk_.clear_flows();
      ++chunks_;
    }
    to_proto(names_, key, flow, now_ns, chunk_.add_flows());
    return true;
  }
  // The last message: what is left, and the total.
  bool finish(uint64_t total) {
    chunk_.set_total(total);
    ++chunks_;
    return w_->Write(chunk_);
  }
  size_t chunks() const { return chunks_; }

 private:
  grpc::ServerWriter<v1::ListFlowsResponse>* w_;
  const FlowNamer& names_;
  google::protobuf::Arena arena_;
  v1::ListFlowsResponse& chunk_;
  size_t chunks_ = 0;  // written
};

// The N most recently active flows of a scan, kept as it goes: a heap whose
// top is the least recent kept. Ties in last_ns go by key, so that the order
// is the same however the table's batches fall.
class MostRecent {
 public:
  explicit MostRecent(size_t n) : n_(n) {}
  void offer(const FlowEntry& e) {
    if (heap_.size() < n_) {
      heap_.push_back(e);  // grown as needed: N may be far more than the table
      std::push_heap(heap_.begin(), heap_.end(), before);
    } else if (before(e, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), before);
      heap_.back() = e;
      std::push_heap(heap_.begin(), heap_.end(), before);
    }
  }
  // Most recent first.
  const std::vector<FlowEntry>& sorted() {
    std::sort_heap(heap_.begin(), heap_.end(), before);
    return heap_;
  }

 private:
  // a lists before b: more recently active.
  static bool before(const FlowEntry& a, const FlowEntry& b) {
    if (a.flow.last_ns != b.flow.last_ns) return a.flow.last_ns > b.flow.last_ns;
    return std::memcmp(&a.key, &b.key, sizeof a.key) < 0;
  }
  size_t n_;
  std::vector<FlowEntry> heap_;
};

// One listing (ListFlows) into `writer`; `chunks`: how many messages it
// wrote.
grpc::Status stream_flows(Telemetry& t, const FlowNamer& names, const core::FlowFilter& filter, uint32_t last,
                          grpc::ServerWriter<v1::ListFlowsResponse>* writer, size_t* chunks) {
  ChunkWriter out(writer, names);
  MostRecent recent(last);
  uint64_t total = 0;
  bool gone = false;
  FlowBuffer buf;
  auto st = t.scan_flows(
      [&](const FlowBatch& batch) {
        total += batch.size();
        const uint64_t now = monotonic_ns();  // ages as of this batch's read
        for (size_t i = 0; i < batch.size(); ++i) {
          if (!names.selects(filter, batch.keys[i], batch.flows[i])) continue;
          if (last) {
            recent.offer(batch.at(i));
          } else if (!out.add(batch.keys[i], batch.flows[i], now)) {
            gone = true;
            return false;
          }
        }
        return true;
      },
      buf);
  *chunks = out.chunks();
  if (gone) return grpc::Status::CANCELLED;  // the client went away
  if (!st) return kernel_status(st.error());
  if (last) {
    const uint64_t now = monotonic_ns();
    for (const auto& e : recent.sorted())
      if (!out.add(e.key, e.flow, now)) return grpc::Status::CANCELLED;
  }
  const bool sent = out.finish(total);
  *chunks = out.chunks();
  return sent ? grpc::Status::OK : grpc::Status::CANCELLED;
}

}  // namespace

AgentService::AgentService(Agent& agent, Telemetry& telemetry, ServiceOptions opts)
    : agent_(agent),
      telemetry_(telemetry),
      opts_(std::move(opts)),
      watches_(opts_.max_watchers, kWatchThreads),
      events_(agent) {}

void AgentService::stop() {
  watches_.stop();
  events_.stop();
}

namespace {
template <typename Req>
std::optional<uint32_t> items_wanted(const Req& r) {
  return r.has_max_diff_items() ? std::optional<uint32_t>(r.max_diff_items()) : std::nullopt;
}
// Changes whose detail is written: those that are sent.
size_t detail_for(std::optional<uint32_t> items) {
  return items ? size_t{*items} : static_cast<size_t>(-1);
}
}  // namespace

grpc::Status AgentService::apply_response(const ApplyResult& r, const std::string& source,
                                          std::optional<uint32_t> max_diff_items, grpc::ServerContext* ctx,
                                          v1::ApplyResponse* resp) {
  telemetry_.parsed();
  if (!r) return error_status(r.error(), source, ctx);
  to_proto(*r, source, now_unix_ms(), max_diff_items, resp);
  return grpc::Status::OK;
}

grpc::Status AgentService::Apply(grpc::ServerContext* ctx, const v1::ApplyRequest* req, v1::ApplyResponse* resp) {
  if (auto st = check_request(*req); !st.ok()) return st;
  const std::string source = req->source().empty() ? "<request>" : req->source();
  if (req->dry_run() && req->confirm_timeout_s())
    return invalid("a dry run applies nothing, so there is nothing to confirm: drop confirm_timeout_s");
  if (req->confirm_timeout_s() > kMaxConfirmTimeoutS)
    return invalid(
        fmt::format("confirm_timeout_s {} is more than a day ({})", req->confirm_timeout_s(), kMaxConfirmTimeoutS));
  ApplyOptions o;
  o.dry_run = req->dry_run();
  o.confirm_timeout_s = req->confirm_timeout_s();
  o.diff_detail = detail_for(items_wanted(*req));
  return apply_response(agent_.submit(req->mapping_yaml(), source, o), source, items_wanted(*req), ctx, resp);
}

grpc::Status AgentService::Rollback(grpc::ServerContext* ctx, const v1::RollbackRequest* req, v1::ApplyResponse* resp) {
  const auto items = items_wanted(*req);
  return apply_response(agent_.rollback(req->generation(), req->dry_run(), detail_for(items)), "<history>", items, ctx,
                        resp);
}

grpc::Status AgentService::Confirm(grpc::ServerContext* ctx, const v1::ConfirmRequest*, v1::ConfirmResponse* resp) {
  auto r = agent_.confirm();
  if (!r) return error_status(r.error(), "", ctx);
  resp->set_generation(*r);
  return grpc::Status::OK;
}

grpc::Status AgentService::GetMapping(grpc::ServerContext*, const v1::GetMappingRequest*,
                                      v1::GetMappingResponse* resp) {
  auto m = agent_.running_mapping();
  resp->set_generation(m.generation);
  resp->set_mapping_yaml(std::move(m.text));
  resp->set_applied_unix_ms(m.applied_unix_ms);
  return grpc::Status::OK;
}

grpc::Status AgentService::History(grpc::ServerContext*, const v1::HistoryRequest*, v1::HistoryResponse* resp) {
  const uint32_t running = agent_.generation();
  auto entries = agent_.history();
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {  // newest first
    auto* e = resp->add_entries();
    e->set_generation(it->generation);
    e->set_applied_unix_ms(it->applied_unix_ms);
    e->set_source(it->source);
    e->set_running(it->generation == running);
    if (auto text = agent_.history_text(it->generation)) e->set_mapping_yaml(std::move(*text));
  }
  return grpc::Status::OK;
}

grpc::Status AgentService::fill_links(Links* out, const PinnedFlows& pinned, const LinkCounters* counters,
                                      const std::array<LinkRates, CLV_MAX_LINKS>* rates) {
  auto links = agent_.links();
  if (!links) return kernel_status(links.error());
  LinkCounters own{};
  if (!counters) {
    auto lc = telemetry_.link_counters();
    if (!lc) return kernel_status(lc.error());
    own = *lc;
    counters = &own;
  }
  std::array<LinkRates, CLV_MAX_LINKS> own_rates{};
  if (!rates) {
    own_rates = telemetry_.rates(*counters);
    rates = &own_rates;
  }
  for (const auto& l : *links) {
    const auto s = static_cast<size_t>(l.slot);
    to_proto(LinkFacts{l, (*counters)[s], (*rates)[s], pinned[s]}, out->Add());
  }
  return grpc::Status::OK;
}

grpc::Status AgentService::ListLinks(grpc::ServerContext*, const v1::ListLinksRequest*, v1::ListLinksResponse* resp) {
  auto pinned = telemetry_.pinned_flows();
  if (!pinned) return kernel_status(pinned.error());
  return fill_links(resp->mutable_links(), *pinned);
}

grpc::Status AgentService::Status(grpc::ServerContext*, const v1::StatusRequest*, v1::StatusResponse* resp) {
  resp->set_version(CLOVIS_VERSION);
  resp->set_uptime_s(std::chrono::duration<double>(std::chrono::steady_clock::now() - opts_.started).count());
  resp->set_generation(agent_.generation());
  if (opts_.attachments)
    for (const auto& a : opts_.attachments()) resp->add_attachments(a);
  auto fill = agent_.map_fill();
  if (!fill) return kernel_status(fill.error());
  for (const auto& m : *fill) {
    auto* x = resp->add_maps();
    x->set_name(m.name);
    x->set_entries(m.entries);
    x->set_capacity(m.capacity);
  }
  auto counters = telemetry_.counters();
  if (!counters) return kernel_status(counters.error());
  for (size_t i = 0; i < kStatNames.size(); ++i) (*resp->mutable_counters())[kStatNames[i]] = (*counters)[i];
  auto totals = telemetry_.flow_table_totals();
  if (!totals) return kernel_status(totals.error());
  to_proto(*totals, resp->mutable_flow_table());
  auto pinned = telemetry_.pinned_flows();
  if (!pinned) return kernel_status(pinned.error());
  if (auto st = fill_links(resp->mutable_links(), *pinned); !st.ok()) return st;
  auto drops = telemetry_.link_drops();
  if (!drops) return kernel_status(drops.error());
  auto moved = telemetry_.link_migrations();
  if (!moved) return kernel_status(moved.error());
  auto left = telemetry_.link_moves();
  if (!left) return kernel_status(left.error());
  add_link_counters(*drops, *moved, *left, *totals, resp);
  resp->set_confirm_deadline_s(seconds_left(agent_.confirm_deadline_unix_ms(), now_unix_ms()));
  resp->set_pin_dir(opts_.pin_dir);
  resp->set_metrics_url(opts_.metrics_url);
  if (opts_.config_file) {
    const FileState f = opts_.config_file();
    auto* c = resp->mutable_config_file();
    c->set_path(f.path);
    c->set_hash(f.hash);
    c->set_result(f.result);
    c->set_error(f.error);
    c->set_generation(f.generation);
    c->set_time_unix_ms(f.time_unix_ms);
    c->set_in_effect(f.result == "applied" && f.generation != 0 && f.generation == resp->generation());
  }
  resp->set_auto_rollback_after_s((agent_.auto_rollback_after_ms() + 999) / 1000);
  return grpc::Status::OK;
}

// Streamed as the table is read: clovisd holds one kernel batch and one
// message (plus --last's N flows), whatever the table's size.
grpc::Status AgentService::ListFlows(grpc::ServerContext*, const v1::ListFlowsRequest* req,
                                     grpc::ServerWriter<v1::ListFlowsResponse>* writer) {
  if (auto st = check_request(*req); !st.ok()) return st;
  struct Running {
    std::atomic<int>& n;
    ~Running() { --n; }
  } running{listings_};
  if (++listings_ > kMaxListings)
    return {
        grpc::StatusCode::RESOURCE_EXHAUSTED,
        fmt::format("clovisd is serving {} flow listings at once already; try again when one has ended", kMaxListings)};
  auto filter = core::FlowFilter::parse(from_proto(req->filter()));
  if (!filter) return rpc::to_status(filter.error());
  size_t chunks = 0;
  grpc::Status st =
      stream_flows(telemetry_, FlowNamer(agent_.recent_rules(), opts_.sessions), *filter, req->last(), writer, &chunks);
  // A listing of many chunks leaves a few MB of small blocks (gRPC's
  // buffers, the batch's keys) freed in the heap once its buffers are gone:
  // give them back now rather than at clovisd's next periodic trim.
  if (chunks > 1) malloc_trim(0);
  return st;
}

grpc::Status AgentService::Simulate(grpc::ServerContext*, const v1::SimulateRequest* req, v1::SimulateResponse* resp) {
  if (auto st = check_request(*req); !st.ok()) return st;
  auto running = telemetry_.classifier(agent_.running());
  if (!running)
    return {grpc::StatusCode::FAILED_PRECONDITION,
            "clovisd runs no mapping yet: apply one (clovisctl apply -f FILE), or simulate offline with -f FILE"};
  const RulesPtr& rules = running->rules;
  auto q = from_proto(*req);
  if (!q) return rpc::to_status(q.error());
  auto st = telemetry_.link_state();
  if (!st) return kernel_status(st.error());
  // The qualities the agent programs the SLAs from, what-if values over them.
  core::LinkQualities quality = agent_.quality();
  using F = core::QualityField;
  for (const auto& [map, field] : {std::pair{&req->latency_ms(), F::kLatency}, std::pair{&req->jitter_ms(), F::kJitter},
                                   std::pair{&req->loss_pct(), F::kLoss}})
    for (const auto& [link, value] : *map) {
      const int slot = rules->link_slot(link);
      if (slot < 0)
        return {grpc::StatusCode::INVALID_ARGUMENT,
                fmt::format("{}: no link '{}' in the running mapping", core::to_string(field), link.substr(0, 64))};
      if (auto why = core::set_quality(&quality[static_cast<size_t>(slot)], field, value); !why.empty())
        return {grpc::StatusCode::INVALID_ARGUMENT, why};
    }
  const core::Decision d = running->classifier.decide(*q, *st, quality, agent_.sla_held_out(), agent_.over_budget());
  resp->set_decision_json(core::decision_json(core::DecisionView{*rules, *q, d, ""}).dump());
  resp->set_generation(rules->generation);
  return grpc::Status::OK;
}

grpc::Status AgentService::ListEvents(grpc::ServerContext*, const v1::ListEventsRequest*,
                                      v1::ListEventsResponse* resp) {
  for (const auto& e : agent_.events()) to_proto(e, resp->add_events());
  return grpc::Status::OK;
}

grpc::ServerWriteReactor<v1::LinkEventMsg>* AgentService::WatchEvents(grpc::CallbackServerContext*,
                                                                      const v1::WatchEventsRequest*) {
  using Stream = WatchStream<v1::LinkEventMsg>;
  if (!watches_.take_slot()) return Stream::refuse(watches_.refusal());
  auto* stream = new Stream([this] { watches_.give_slot(); });
  uint64_t seq = 0;
  (void)agent_.events(&seq);  // from now on
  // Tells the client the watch is on: what happens from here is streamed.
  // (Before the first event can be written.)
  stream->start();
  if (!events_.add(stream->outbox(), seq))
    stream->outbox()->finish({grpc::StatusCode::UNAVAILABLE, "clovisd is stopping"});
  return stream;
}

}  // namespace clovis::agent::service
