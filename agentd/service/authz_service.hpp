// envoy.service.auth.v3.Authorization: session reports from a proxy (Envoy's
// ext_authz filter). Each Check is classified with the running mapping's
// L7 + L3/L4 rules and the live link state (the simulator's code path), the
// reported connection is pinned in the kernel flow table, and the answer
// tells the proxy the link: request headers and dynamic metadata.
//
// Fail-open: whatever goes wrong inside clovisd (no mapping, no addresses, a
// kernel error) still answers OK, with the reason in x-clovis-error, and so
// does a drop verdict by default. Only a mapping with proxy: {on-drop: deny}
// has its drop verdicts answered PERMISSION_DENIED with a 403 for the client.
// See docs/ENVOY.md.
#pragma once

#include <functional>

#include <mutex>
#include <string>

#include "agent/agent.hpp"
#include "clovis/rpc/wire.hpp"
#include "core/classifier.hpp"
#include "core/result.hpp"
#include "envoy/service/auth/v3/external_auth.grpc.pb.h"
#include "ports/dataplane.hpp"
#include "server.hpp"
#include "telemetry/classifier_cache.hpp"
#include "telemetry/sessions.hpp"

namespace clovis::agent::service {

namespace authz = ::envoy::service::auth::v3;

// The flow a CheckRequest reports: the downstream connection's addresses and
// ports, and the HTTP request's host, path, method and headers.
core::Result<core::FlowQuery> query_from_check(const authz::CheckRequest& req);

class AuthzService {
 public:
  // `sessions`, when given, keeps each reported connection's L7 facts for
  // `clovisctl flows`.
  // `is_local`, when given, tells the host's own addresses: a connection to
  // one of them is the host's to deliver, never pinned.
  using IsLocal = std::function<bool(const core::IpAddr&)>;
  AuthzService(Agent& agent, Dataplane& dp, SessionTable* sessions = nullptr, IsLocal is_local = {})
      : agent_(agent), dp_(dp), sessions_(sessions), is_local_(std::move(is_local)) {}

  // The answer to one request. Safe to call from several threads at once.
  void check(const authz::CheckRequest& req, authz::CheckResponse* resp);

  // What an answer was: the flow allowed (steered or passed), denied (a drop
  // verdict under on-drop: deny), or an error inside clovisd (fail-open:
  // allowed, with x-clovis-error).
  enum class Outcome { kAllowed, kDenied, kError };
  static Outcome outcome_of(const authz::CheckResponse& resp);
  // Told of each Check answered, with how long check() took (the metrics'
  // counters). Set before serving starts; it runs on the answering thread.
  using Observer = std::function<void(Outcome, double seconds)>;
  void set_observer(Observer o) { observer_ = std::move(o); }

  // The gRPC service, and how ApiServer serves it: `threads` threads each
  // answering Checks inline from a completion queue of their own.
  grpc::Service& grpc_service() { return async_; }
  AsyncServing serving(unsigned threads);

 private:
  // Asks gRPC for the next Check on `cq` (unless stopping); false if not.
  bool arm(grpc::ServerCompletionQueue* cq);
  void drain(grpc::ServerCompletionQueue* cq);
  void stop();

  // Pins the flow as the program would have on its first packet; an error
  // message, or empty.
  std::string pin(const core::CompiledRules& rules, const core::FlowQuery& q, const core::Decision& d, bool* pinned);

  void remember(const core::CompiledRules& rules, const core::FlowQuery& q, const core::Decision& d);

  Agent& agent_;
  Dataplane& dp_;
  SessionTable* sessions_;
  IsLocal is_local_;
  ClassifierCache classifiers_;
  Observer observer_;
  authz::Authorization::AsyncService async_;
  std::mutex arm_mu_;
  bool stopping_ = false;  // under arm_mu_
};

}  // namespace clovis::agent::service
