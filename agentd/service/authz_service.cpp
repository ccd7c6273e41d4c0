#include "authz_service.hpp"

#include <netinet/in.h>
#include <pthread.h>
#include <strings.h>
#include <time.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <exception>
#include <map>
#include <memory>

#include <fmt/format.h>

#include "core/net.hpp"
#include "request_limits.hpp"

namespace clovis::agent::service {

namespace {

using core::Verdict;

core::Unexpected<core::Error> bad(const std::string& m) {
  return core::fail(core::ErrorCode::kInvalidArgument, m, "ext_authz CheckRequest");
}

// ::ffff:a.b.c.d (an IPv4 client of a dual-stack listener) is IPv4 on the wire.
core::IpAddr unmap_v4(core::IpAddr a) {
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (a.family != core::Family::kV6 || std::memcmp(a.bytes.data(), kMapped, sizeof kMapped) != 0) return a;
  core::IpAddr v4;
  std::copy(a.bytes.begin() + 12, a.bytes.end(), v4.bytes.begin());
  return v4;
}

struct Endpoint {
  core::IpAddr addr;
  uint16_t port = 0;
  bool udp = false;
};

core::Result<Endpoint> endpoint(const authz::AttributeContext::Peer& peer, const char* which) {
  if (!peer.address().has_socket_address())
    return bad(fmt::format("{} has no IP socket address (a Unix socket peer cannot be steered)", which));
  const auto& sa = peer.address().socket_address();
  auto a = core::IpAddr::parse(sa.address());
  if (!a) return bad(fmt::format("{} address '{}' is not an IP address", which, sa.address().substr(0, 64)));
  if (sa.port_specifier_case() != ::envoy::config::core::v3::SocketAddress::kPortValue || sa.port_value() > 65535)
    return bad(fmt::format("{} has no port 0-65535", which));
  return Endpoint{unmap_v4(*a), static_cast<uint16_t>(sa.port_value()),
                  sa.protocol() == ::envoy::config::core::v3::SocketAddress::UDP};
}

clv_flow_key flow_key(const clv_tuple& t) {
  clv_flow_key k{};
  std::copy(std::begin(t.src), std::end(t.src), k.src);
  std::copy(std::begin(t.dst), std::end(t.dst), k.dst);
  k.sport = t.sport;
  k.dport = t.dport;
  k.proto = t.proto;
  k.family = t.family;
  return k;
}

uint64_t coarse_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::kSteer: return "steer";
    case Verdict::kBypass: return "bypass";
    case Verdict::kDrop: return "drop";
    case Verdict::kNotSteered: break;
  }
  return "none";
}

using HeaderOptions = google::protobuf::RepeatedPtrField<::envoy::config::core::v3::HeaderValueOption>;

// Sets (never appends: a client must not choose its own link) a header.
void set_header(HeaderOptions* headers, const std::string& key, const std::string& value) {
  auto* h = headers->Add();
  h->mutable_header()->set_key(key);
  h->mutable_header()->set_value(value);
  h->set_append_action(::envoy::config::core::v3::HeaderValueOption::OVERWRITE_IF_EXISTS_OR_ADD);
}

// Header values are one line of visible text; messages may quote input.
std::string header_safe(std::string s) {
  for (auto& c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  return s.substr(0, 256);
}

}  // namespace

core::Result<core::FlowQuery> query_from_check(const authz::CheckRequest& req) {
  const auto& attrs = req.attributes();
  auto src = endpoint(attrs.source(), "source");
  if (!src) return core::error_of(src);
  auto dst = endpoint(attrs.destination(), "destination");
  if (!dst) return core::error_of(dst);
  if (src->addr.family != dst->addr.family) return bad("source and destination are of different address families");
  core::FlowQuery q;
  clv_tuple& t = q.tuple;
  t.family = src->addr.family == core::Family::kV4 ? CLV_AF_INET : CLV_AF_INET6;
  auto sw = src->addr.words(), dw = dst->addr.words();
  std::copy(sw.begin(), sw.end(), t.src);
  std::copy(dw.begin(), dw.end(), t.dst);
  t.proto = dst->udp ? IPPROTO_UDP : IPPROTO_TCP;
  t.sport = src->port;
  t.dport = dst->port;
  if (!attrs.request().has_http()) return q;  // L3/L4 facts only
  const auto& http = attrs.request().http();
  core::L7Facts f{
      http.host(), http.path().empty() ? "/" : http.path(), http.method().empty() ? "GET" : http.method(), {}};
  for (auto& c : f.method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  f.headers.reserve(static_cast<size_t>(http.headers().size()));
  for (const auto& [k, v] : http.headers())
    if (!k.empty()) f.headers.emplace_back(k, v);
  if (http.headers().empty() && http.has_header_map()) {
    // encode_raw_headers: one entry per header line, the value in raw_value
    // (bytes); repeats are joined with ',' as Envoy does for `headers`.
    std::map<std::string, std::string> merged;
    for (const auto& h : http.header_map().headers()) {
      if (h.key().empty()) continue;
      std::string k = h.key();
      for (auto& c : k) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      const std::string& v = h.raw_value().empty() ? h.value() : h.raw_value();
      auto [it, fresh] = merged.emplace(std::move(k), v);
      if (!fresh) it->second += "," + v;
    }
    f.headers.assign(merged.begin(), merged.end());
  }
  std::sort(f.headers.begin(), f.headers.end());
  q.l7 = std::move(f);
  return q;
}

namespace {

// One Check in flight: asked for, then answered.
struct PendingCheck {
  grpc::ServerContext ctx;
  authz::CheckRequest req;
  grpc::ServerAsyncResponseWriter<authz::CheckResponse> writer{&ctx};
  bool answered = false;
};

// Calls each queue keeps requested from gRPC, so that requests arriving
// together never wait for the next one to be requested.
constexpr int kArmedPerQueue = 8;

}  // namespace

AsyncServing AuthzService::serving(unsigned threads) {
  return {threads, [this](grpc::ServerCompletionQueue* cq) { drain(cq); }, [this] { stop(); }};
}

void AuthzService::stop() {
  std::lock_guard lock(arm_mu_);
  stopping_ = true;
}

bool AuthzService::arm(grpc::ServerCompletionQueue* cq) {
  std::lock_guard lock(arm_mu_);
  if (stopping_) return false;
  auto* c = new PendingCheck;
  async_.RequestCheck(&c->ctx, &c->req, &c->writer, cq, cq, c);
  return true;
}

void AuthzService::drain(grpc::ServerCompletionQueue* cq) {
  pthread_setname_np(pthread_self(), "clovisd-authz");
  for (int i = 0; i < kArmedPerQueue; ++i) arm(cq);
  void* tag = nullptr;
  bool ok = false;
  while (cq->Next(&tag, &ok)) {
    std::unique_ptr<PendingCheck> c(static_cast<PendingCheck*>(tag));
    // The server is shutting down, or the answer has gone out.
    if (!ok || c->answered) continue;
    arm(cq);
    authz::CheckResponse resp;
    const auto t0 = std::chrono::steady_clock::now();
    try {
      check(c->req, &resp);
    } catch (const std::exception& e) {  // out of memory: still fail-open
      resp.Clear();
      resp.mutable_status()->set_code(0);
      set_header(resp.mutable_ok_response()->mutable_headers(), rpc::kErrorHeader, header_safe(e.what()));
    }
    if (observer_)
      observer_(outcome_of(resp), std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    c->answered = true;
    auto* p = c.release();
    p->writer.Finish(resp, grpc::Status::OK, p);
  }
}

AuthzService::Outcome AuthzService::outcome_of(const authz::CheckResponse& resp) {
  if (resp.has_denied_response()) return Outcome::kDenied;
  for (const auto& h : resp.ok_response().headers())
    if (h.header().key() == rpc::kErrorHeader) return Outcome::kError;
  return Outcome::kAllowed;
}

void AuthzService::check(const authz::CheckRequest& req, authz::CheckResponse* resp) {
  // OK whatever goes wrong below: only a drop verdict of a mapping that says
  // so (on-drop: deny) is answered with a denial.
  resp->mutable_status()->set_code(0);
  authz::OkHttpResponse* ok = resp->mutable_ok_response();
  // A client's own x-clovis-* headers never reach the upstream.
  std::vector<std::string> unset = {rpc::kLinkHeader, rpc::kRuleHeader, rpc::kErrorHeader};
  auto answer = [&](const std::string& error) {
    if (!error.empty()) set_header(ok->mutable_headers(), rpc::kErrorHeader, header_safe(error));
    for (const auto& h : ok->headers()) std::erase(unset, h.header().key());
    for (const auto& h : unset) ok->add_headers_to_remove(h);
  };

  if (auto why = check_limits(req); !why.empty()) return answer("not classified: " + why);
  auto q = query_from_check(req);
  if (!q) return answer(q.error().message);
  auto running = classifiers_.get(agent_.running());
  if (!running) return answer("clovisd runs no mapping");
  const RulesPtr& rules = running->rules;
  auto st = dp_.link_state();
  if (!st) return answer("link state: " + st.error().message);
  const core::Decision d = running->classifier.decide(*q, *st);

  std::string rule, policy, link;
  if (d.rule_id && *d.rule_id < rules->rules.size()) rule = rules->rules[*d.rule_id].name;
  if (d.policy >= 0 && static_cast<size_t>(d.policy) < rules->policy_info.size())
    policy = rules->policy_info[static_cast<size_t>(d.policy)].name;
  if (d.verdict == Verdict::kSteer && d.link >= 0 && d.link < CLV_MAX_LINKS)
    link = rules->link_info[static_cast<size_t>(d.link)].name;

  bool pinned = false;
  std::string error;
  if (d.verdict == Verdict::kDrop && rules->on_drop == core::OnDrop::kDeny) {
    // The client gets Envoy's local reply: 403 with the rule that dropped it.
    resp->mutable_status()->set_code(grpc::StatusCode::PERMISSION_DENIED);
    authz::DeniedHttpResponse* denied = resp->mutable_denied_response();  // replaces ok_response
    denied->mutable_status()->set_code(::envoy::type::v3::Forbidden);
    if (!rule.empty()) set_header(denied->mutable_headers(), rpc::kRuleHeader, rule);
  } else {
    if (!link.empty()) set_header(ok->mutable_headers(), rpc::kLinkHeader, link);
    if (!rule.empty()) set_header(ok->mutable_headers(), rpc::kRuleHeader, rule);
    error = pin(*rules, *q, d, &pinned);
  }
  if (sessions_) remember(*rules, *q, d);

  auto& fields =
      *(*resp->mutable_dynamic_metadata()->mutable_fields())["clovis"].mutable_struct_value()->mutable_fields();
  fields["action"].set_string_value(verdict_name(d.verdict));
  fields["link"].set_string_value(link);
  fields["rule"].set_string_value(rule);
  fields["policy"].set_string_value(policy);
  fields["generation"].set_number_value(rules->generation);
  fields["pinned"].set_bool_value(pinned);
  if (!resp->has_denied_response()) answer(error);
}

void AuthzService::remember(const core::CompiledRules& rules, const core::FlowQuery& q, const core::Decision& d) {
  SessionFacts s;
  if (d.rule_id && *d.rule_id < rules.rules.size()) s.rule = rules.rules[*d.rule_id].name;
  s.by_l7 = d.by_l7;
  if (q.l7) {
    s.host = q.l7->host;
    s.method = q.l7->method;
    s.path = q.l7->path;
    // The headers the deciding L7 rule matched on, with the values sent.
    if (d.by_l7 && d.rule_id) {
      auto rule = std::find_if(rules.l7.begin(), rules.l7.end(),
                               [&](const core::L7Rule& r) { return r.rule_id == *d.rule_id; });
      if (rule != rules.l7.end())
        for (const auto& [name, want] : rule->headers)
          for (const auto& [k, v] : q.l7->headers)
            if (strcasecmp(k.c_str(), name.c_str()) == 0) s.headers.emplace_back(name, v);
    }
  }
  s.seen_ns = coarse_ns();
  sessions_->record(flow_key(q.tuple), std::move(s));
}

std::string AuthzService::pin(const core::CompiledRules& rules, const core::FlowQuery& q, const core::Decision& d,
                              bool* pinned) {
  // A drop is never pinned for a proxy (the proxy lets the request through,
  // or denies it itself); no decision, nothing to pin.
  if (d.verdict != Verdict::kSteer && d.verdict != Verdict::kBypass) return {};
  if (is_local_) {
    const auto dst =
        core::IpAddr::from_words(q.tuple.family == CLV_AF_INET ? core::Family::kV4 : core::Family::kV6, q.tuple.dst);
    if (is_local_(dst)) return {};  // addressed to the edge host itself: delivered, not steered
  }
  clv_flow f{};
  f.rule_id = d.rule_id.value_or(0);
  f.generation = rules.generation;
  f.flags = CLV_FLOW_PROXY;
  if (d.verdict == Verdict::kSteer) {
    const clv_link& l = rules.links[static_cast<size_t>(d.link)];
    // The program claims the NAT port from the flow's next packet.
    if (l.mode == CLV_MODE_REDIRECT && l.snat != CLV_SNAT_NONE) f.flags |= CLV_FLOW_NAT_PENDING;
    auto active = dp_.active_rules();
    if (!active) return "flow table: " + active.error().message;
    // An apply between reading the rules and the bank: the program classifies it.
    if (active->generation != rules.generation) return {};
    const uint32_t bank = active->bank;
    f.action = CLV_ACT_STEER;
    f.policy = static_cast<uint16_t>(bank * CLV_MAX_POLICIES + static_cast<uint32_t>(d.policy));
    f.link = static_cast<uint8_t>(d.link);
    f.link_epoch = l.epoch;
    f.mode = l.mode;
  } else {
    f.action = CLV_ACT_BYPASS;
    if (d.last_resort) f.flags |= CLV_FLOW_LAST_RESORT;
  }
  f.first_ns = f.last_ns = coarse_ns();
  auto r = dp_.pin_flow(flow_key(q.tuple), f);
  if (!r) return "flow table: " + r.error().message;
  *pinned = *r;
  return {};
}

}  // namespace clovis::agent::service
