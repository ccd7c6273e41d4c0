// The clovis.v1.Agent gRPC service: a thin adapter that checks requests,
// calls the Agent (and Telemetry for flows, counters, rates and link
// state) and translates the answers; it keeps no domain state. Errors are real status codes; see
// proto/clovis/v1/agent.proto.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "agent/agent.hpp"
#include "agent/config_follow.hpp"
#include "clovis/v1/agent.grpc.pb.h"
#include "event_fanout.hpp"
#include "telemetry/flow_view.hpp"
#include "telemetry/sessions.hpp"
#include "telemetry/telemetry.hpp"
#include "watch_hub.hpp"
#include "watch_stream.hpp"

namespace clovis::agent::service {

struct ServiceOptions {
  std::string pin_dir;
  // What is attached, "interface@ifindex-program" (TcAttacher::pinned).
  std::function<std::vector<std::string>()> attachments;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();  // for uptime
  // Proxies' session facts (ext_authz), shown with their flows; may be null.
  const SessionTable* sessions = nullptr;
  // WatchFlows and WatchEvents streams open at once (clovisd --max-watchers);
  // the next is refused with RESOURCE_EXHAUSTED.
  size_t max_watchers = kDefaultMaxWatchers;
  // A flow watch whose client reads none of 1 MiB of waiting events for this
  // long is ended (RESOURCE_EXHAUSTED), so that it does not hold a scan
  // thread the other watches need.
  std::chrono::milliseconds slow_reader{10000};
  std::string metrics_url{};  // where Prometheus metrics are served (Status); empty: not served
  // The followed config file's last outcome (clovisd --follow-config); empty: not followed.
  std::function<FileState()> config_file{};
};

// The most ListFlows served at once: a listing runs on one of the sync
// server's threads for as long as its client takes to read it, and the
// threads are the unary calls' (status, apply, confirm...).
inline constexpr int kMaxListings = 16;

// The unary calls and ListFlows on gRPC's sync server (its threads); the
// watch streams on the callback API, holding no thread (watch_stream.hpp).
class AgentService final
    : public v1::Agent::WithCallbackMethod_WatchFlows<v1::Agent::WithCallbackMethod_WatchEvents<v1::Agent::Service>> {
 public:
  AgentService(Agent& agent, Telemetry& telemetry, ServiceOptions opts);

  grpc::Status Apply(grpc::ServerContext* ctx, const v1::ApplyRequest* req, v1::ApplyResponse* resp) override;
  grpc::Status GetMapping(grpc::ServerContext* ctx, const v1::GetMappingRequest* req,
                          v1::GetMappingResponse* resp) override;
  grpc::Status Status(grpc::ServerContext* ctx, const v1::StatusRequest* req, v1::StatusResponse* resp) override;
  grpc::Status ListLinks(grpc::ServerContext* ctx, const v1::ListLinksRequest* req,
                         v1::ListLinksResponse* resp) override;
  grpc::Status ListFlows(grpc::ServerContext* ctx, const v1::ListFlowsRequest* req,
                         grpc::ServerWriter<v1::ListFlowsResponse>* writer) override;
  grpc::ServerWriteReactor<v1::FlowEvent>* WatchFlows(grpc::CallbackServerContext* ctx,
                                                      const v1::WatchFlowsRequest* req) override;
  grpc::Status Simulate(grpc::ServerContext* ctx, const v1::SimulateRequest* req, v1::SimulateResponse* resp) override;
  grpc::Status History(grpc::ServerContext* ctx, const v1::HistoryRequest* req, v1::HistoryResponse* resp) override;
  grpc::Status Rollback(grpc::ServerContext* ctx, const v1::RollbackRequest* req, v1::ApplyResponse* resp) override;
  grpc::Status Confirm(grpc::ServerContext* ctx, const v1::ConfirmRequest* req, v1::ConfirmResponse* resp) override;
  grpc::Status ListEvents(grpc::ServerContext* ctx, const v1::ListEventsRequest* req,
                          v1::ListEventsResponse* resp) override;
  grpc::ServerWriteReactor<v1::LinkEventMsg>* WatchEvents(grpc::CallbackServerContext* ctx,
                                                          const v1::WatchEventsRequest* req) override;

  // Ends the WatchFlows and WatchEvents streams (before the server shuts
  // down) and stops their threads. Idempotent.
  void stop();

 private:
  friend class FlowWatch;
  using Links = google::protobuf::RepeatedPtrField<v1::Link>;
  // Links with counters, rates and the flows pinned to each. `counters`,
  // `rates`: null to read them (rates from Telemetry's sampler).
  grpc::Status fill_links(Links* out, const PinnedFlows& pinned, const LinkCounters* counters = nullptr,
                          const std::array<LinkRates, CLV_MAX_LINKS>* rates = nullptr);
  grpc::Status apply_response(const ApplyResult& r, const std::string& source, std::optional<uint32_t> max_diff_items,
                              grpc::ServerContext* ctx, v1::ApplyResponse* resp);

  Agent& agent_;
  Telemetry& telemetry_;
  ServiceOptions opts_;
  std::atomic<int> listings_{0};  // ListFlows running
  // Last: stopped (their threads joined) before the rest goes.
  WatchHub watches_;
  EventFanout events_;
};

}  // namespace clovis::agent::service
