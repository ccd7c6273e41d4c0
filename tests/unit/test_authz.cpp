// The ext_authz Authorization service without root: a real gRPC server on a
// temporary Unix socket, the agent over fakes of the kernel and the host, and
// the generated C++ stub as the proxy.
#include <atomic>
#include <cstring>
#include <map>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <grpcpp/grpcpp.h>

#include <fmt/format.h>
#include "envoy/service/auth/v3/external_auth.grpc.pb.h"

#include "core/pipeline.hpp"
#include "fakes.hpp"
#include "service/authz_service.hpp"
#include "service/convert.hpp"
#include "service/server.hpp"
#include "telemetry/flow_view.hpp"

using namespace clovis;
namespace authz = envoy::service::auth::v3;

namespace {

const char* kMapping = R"(version: 1
links:
  - {name: mpls, interface: wan0, gateway: 192.0.2.1, mode: route}
  - {name: broadband, interface: wan1, gateway: 198.51.100.1, mode: route}
rules:
  - name: minions-video
    priority: 10
    match: {dst: 203.0.113.0/24, dport: 8000, proto: tcp, headers: {end-user: minions}}
    link: broadband
default: {link: mpls}
)";

// Drop verdicts of both kinds: a rule's action, and a policy's last resort
// when its only link is down. proxy: {on-drop: deny} asks for them to be denied.
const char* kDropMapping = R"(version: 1
links:
  - {name: mpls, interface: wan0, gateway: 192.0.2.1, mode: route}
  - {name: broadband, interface: wan1, gateway: 198.51.100.1, mode: route}
policies:
  - {name: broadband-only, failover: [broadband], last-resort: drop}
rules:
  - {name: minions-video, priority: 10, match: {headers: {end-user: minions}}, link: broadband}
  - {name: blocked, priority: 20, match: {headers: {end-user: mallory}}, action: drop}
  - {name: kevin, priority: 30, match: {headers: {end-user: kevin}}, policy: broadband-only}
default: {link: mpls}
)";

const std::string kDenyMapping = std::string(kDropMapping) + "proxy: {on-drop: deny}\n";

struct Authz {
  test::TempDir dir{"authz"};
  test::FakeDataplane dp;
  test::FakeHost host;
  agent::SessionTable sessions{64};
  std::unique_ptr<agent::Agent> agent;
  std::unique_ptr<agent::service::AuthzService> service;
  std::unique_ptr<agent::service::ApiServer> server;
  std::unique_ptr<authz::Authorization::Stub> stub;

  Authz() {
    host.set_interface("wan0", {4, true, core::IpAddr::parse("192.0.2.2"), std::nullopt});
    host.set_interface("wan1", {5, true, core::IpAddr::parse("198.51.100.2"), std::nullopt});
    agent = std::make_unique<agent::Agent>(agent::AgentOptions{dir.path + "/state", 10000}, dp, host);
    service = std::make_unique<agent::service::AuthzService>(*agent, dp, &sessions);
    const std::string path = dir.path + "/authz.sock";
    auto lock = agent::service::SocketLock::take(path);
    REQUIRE_MESSAGE(lock, (lock ? "" : lock.error().what()));
    auto s = agent::service::ApiServer::start({path, "", 1 << 20}, service->grpc_service(), service->serving(2),
                                              std::move(*lock));
    REQUIRE_MESSAGE(s, (s ? "" : s.error().what()));
    server = std::move(*s);
    stub = authz::Authorization::NewStub(grpc::CreateChannel("unix:" + path, grpc::InsecureChannelCredentials()));
  }
  ~Authz() {
    stub.reset();
    server.reset();
    service.reset();
    agent.reset();
  }
  void apply(const char* mapping = kMapping) {
    auto r = agent->apply(mapping, "wan.yaml");
    REQUIRE(r.ok());
  }
  authz::CheckResponse check(const authz::CheckRequest& req) {
    grpc::ClientContext cc;
    cc.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    authz::CheckResponse resp;
    auto st = stub->Check(&cc, req, &resp);
    REQUIRE_MESSAGE(st.ok(), st.error_message());
    return resp;
  }
};

authz::CheckRequest request(const std::string& user, uint16_t sport = 40000) {
  authz::CheckRequest r;
  auto* a = r.mutable_attributes();
  auto* src = a->mutable_source()->mutable_address()->mutable_socket_address();
  src->set_address("10.1.0.5");
  src->set_port_value(sport);
  auto* dst = a->mutable_destination()->mutable_address()->mutable_socket_address();
  dst->set_address("203.0.113.10");
  dst->set_port_value(8000);
  auto* http = a->mutable_request()->mutable_http();
  http->set_method("GET");
  http->set_host("video.example.com:8000");
  http->set_path("/stream?x=1");
  (*http->mutable_headers())["end-user"] = user;
  (*http->mutable_headers())["x-clovis-link"] = "forged";
  return r;
}

// Request headers the answer sets, by name.
std::map<std::string, std::string> headers(const authz::CheckResponse& r) {
  std::map<std::string, std::string> out;
  for (const auto& h : r.ok_response().headers()) {
    CHECK(h.append_action() == envoy::config::core::v3::HeaderValueOption::OVERWRITE_IF_EXISTS_OR_ADD);
    out[h.header().key()] = h.header().value();
  }
  return out;
}

const google::protobuf::Struct& clovis_metadata(const authz::CheckResponse& r) {
  return r.dynamic_metadata().fields().at("clovis").struct_value();
}

const agent::FlowEntry* find_flow(const std::vector<agent::FlowEntry>& flows, uint16_t sport) {
  for (const auto& f : flows)
    if (f.key.sport == sport) return &f;
  return nullptr;
}

}  // namespace

TEST_CASE("Check: a header-matched request gets its rule's link, and its connection is pinned") {
  Authz az;
  az.apply();
  auto resp = az.check(request("minions"));
  CHECK(resp.status().code() == 0);
  REQUIRE(resp.has_ok_response());
  auto h = headers(resp);
  CHECK(h["x-clovis-link"] == "broadband");
  CHECK(h["x-clovis-rule"] == "minions-video");
  CHECK(h.count("x-clovis-error") == 0);
  const auto& md = clovis_metadata(resp).fields();
  CHECK(md.at("link").string_value() == "broadband");
  CHECK(md.at("rule").string_value() == "minions-video");
  CHECK(md.at("action").string_value() == "steer");
  CHECK(md.at("generation").number_value() == 1);
  CHECK(md.at("pinned").bool_value());

  auto c = core::check_mapping(kMapping);
  REQUIRE(c.ok());
  auto flows = az.dp.flows();
  REQUIRE(flows);
  const agent::FlowEntry* f = find_flow(*flows, 40000);
  REQUIRE(f);
  CHECK(f->key.dport == 8000);
  CHECK(f->key.proto == 6);
  CHECK(f->key.family == CLV_AF_INET);
  CHECK(f->key.src[0] == core::IpAddr::parse("10.1.0.5")->words()[0]);
  CHECK(f->key.dst[0] == core::IpAddr::parse("203.0.113.10")->words()[0]);
  CHECK((f->flow.flags & CLV_FLOW_PROXY) != 0);
  CHECK(f->flow.action == CLV_ACT_STEER);
  CHECK(f->flow.link == c.compiled->link_slot("broadband"));
  CHECK(f->flow.generation == 1);
  CHECK(f->flow.rule_id == 0);
  // Absolute policy index: the active bank's.
  CHECK(f->flow.policy / CLV_MAX_POLICIES == *az.dp.active_bank());
  CHECK(f->flow.mode == CLV_MODE_ROUTE);
  CHECK(f->flow.first_ns > 0);
}

TEST_CASE("Check: concurrent callers on two serving threads, then a shutdown under load that ends every call") {
  Authz az;  // served by two threads, each with a completion queue of its own
  az.apply();
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0}, wrong{0}, refused{0}, odd{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t)
    callers.emplace_back([&, t] {
      for (uint16_t i = 0; !stop; ++i) {
        const bool minion = (i + t) % 2;
        grpc::ClientContext cc;
        cc.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
        authz::CheckResponse resp;
        auto st =
            az.stub->Check(&cc, request(minion ? "minions" : "boss", uint16_t(41000 + t * 1000 + i % 500)), &resp);
        if (st.ok()) {
          ++answered;
          if (headers(resp)["x-clovis-link"] != (minion ? "broadband" : "mpls")) ++wrong;
        } else if (st.error_code() == grpc::StatusCode::UNAVAILABLE || st.error_code() == grpc::StatusCode::CANCELLED) {
          ++refused;  // the server has gone: what a proxy sees, and fails open on
        } else {
          ++odd;
        }
      }
    });
  while (answered < 400) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  az.server->shutdown(std::chrono::milliseconds(200));  // returns: every call ended, the threads joined
  const int after_shutdown = answered;
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  stop = true;
  for (auto& c : callers) c.join();
  // Nothing is answered once shutdown() has returned: at most the answers
  // each caller had in hand but not yet counted.
  CHECK(answered - after_shutdown <= 4);
  CHECK(wrong == 0);
  CHECK(odd == 0);
  CHECK(refused > 0);
  CHECK(az.sessions.size() > 0);
}

TEST_CASE("Check: an unmatched request gets the default link") {
  Authz az;
  az.apply();
  auto resp = az.check(request("boss", 40001));
  auto h = headers(resp);
  CHECK(h["x-clovis-link"] == "mpls");
  CHECK(clovis_metadata(resp).fields().at("link").string_value() == "mpls");
  auto flows = az.dp.flows();
  const agent::FlowEntry* f = find_flow(*flows, 40001);
  REQUIRE(f);
  auto c = core::check_mapping(kMapping);
  CHECK(f->flow.link == c.compiled->link_slot("mpls"));
  // No error: a client's own x-clovis-error never reaches the upstream.
  const auto& rm = resp.ok_response().headers_to_remove();
  CHECK(std::find(rm.begin(), rm.end(), "x-clovis-error") != rm.end());
}

TEST_CASE("Check: a link that is down is not chosen") {
  Authz az;
  az.apply();
  auto c = core::check_mapping(kMapping);
  clv_link_state st = az.dp.state();
  st.up &= ~(1ull << c.compiled->link_slot("broadband"));
  REQUIRE(az.dp.set_link_state(st));
  auto h = headers(az.check(request("minions", 40002)));
  CHECK(h["x-clovis-link"] != "broadband");
}

TEST_CASE("Check fails open: no mapping, no addresses, a local flow") {
  Authz az;
  auto resp = az.check(request("minions"));
  CHECK(resp.status().code() == 0);
  auto h = headers(resp);
  CHECK(h["x-clovis-error"] == "clovisd runs no mapping");
  CHECK(h.count("x-clovis-link") == 0);
  const auto& rm = resp.ok_response().headers_to_remove();
  CHECK(std::find(rm.begin(), rm.end(), "x-clovis-link") != rm.end());

  az.apply();
  auto req = request("minions");
  req.mutable_attributes()->clear_source();
  h = headers(az.check(req));
  CHECK(h["x-clovis-error"].find("source has no IP socket address") != std::string::npos);
  req = request("minions");
  req.mutable_attributes()->mutable_source()->mutable_address()->mutable_socket_address()->set_address("nonsense\n");
  h = headers(az.check(req));
  CHECK(h["x-clovis-error"] == "source address 'nonsense ' is not an IP address");
  CHECK(az.dp.flows()->empty());

  // The client's connection to the proxy itself: the kernel marked it local.
  auto local = test::make_flow("10.1.0.5", "203.0.113.10", 40003, 8000);
  local.flow.flags = CLV_FLOW_LOCAL;
  az.dp.set_flows({local});
  auto resp2 = az.check(request("minions", 40003));
  CHECK(headers(resp2)["x-clovis-link"] == "broadband");
  CHECK_FALSE(clovis_metadata(resp2).fields().at("pinned").bool_value());
  CHECK(az.dp.flows()->at(0).flow.flags == CLV_FLOW_LOCAL);
}

TEST_CASE("Check: an IPv4 client of a dual-stack listener is pinned as IPv4") {
  Authz az;
  az.apply();
  auto req = request("minions", 40004);
  req.mutable_attributes()->mutable_source()->mutable_address()->mutable_socket_address()->set_address(
      "::ffff:10.1.0.5");
  CHECK(headers(az.check(req))["x-clovis-link"] == "broadband");
  const auto flows1 = *az.dp.flows();
  const agent::FlowEntry* f = find_flow(flows1, 40004);
  REQUIRE(f);
  CHECK(f->key.family == CLV_AF_INET);
}

TEST_CASE("Check: the session's L7 facts are kept and shown with its flow") {
  Authz az;
  az.apply();
  az.check(request("minions", 40100));
  auto flows = az.dp.flows();
  REQUIRE(flows);
  const agent::FlowEntry* f = find_flow(*flows, 40100);
  REQUIRE(f);
  auto s = az.sessions.find(f->key);
  REQUIRE(s);
  CHECK(s->rule == "minions-video");
  CHECK(s->by_l7);
  CHECK(s->host == "video.example.com:8000");
  CHECK(s->method == "GET");
  CHECK(s->path == "/stream?x=1");
  // Only the header the rule matched on, with the value sent; not the forged one.
  REQUIRE(s->headers.size() == 1);
  CHECK(s->headers[0] == std::pair<std::string, std::string>{"end-user", "minions"});
  CHECK(s->checks == 1);

  // The listing joins the facts into the flow's view.
  const agent::FlowNamer names(az.agent->recent_rules(), &az.sessions);
  v1::Flow v;
  agent::service::to_proto(names, f->key, f->flow, f->flow.first_ns + 2'000'000'000ull, &v);
  REQUIRE(v.has_l7());
  CHECK(v.l7().rule() == "minions-video");
  CHECK(v.link() == "broadband");

  // The same connection, another request (HTTP keep-alive): the latest facts
  // win and the count goes on. The flow keeps its pinned link.
  az.check(request("boss", 40100));
  s = az.sessions.find(f->key);
  REQUIRE(s);
  CHECK(s->rule == "default");
  CHECK_FALSE(s->by_l7);
  CHECK(s->headers.empty());
  CHECK(s->checks == 2);

  // Without the table, flows show no L7 facts.
  agent::service::to_proto(agent::FlowNamer(az.agent->recent_rules()), f->key, f->flow, 0, &v);
  CHECK_FALSE(v.has_l7());
}

TEST_CASE("ext_authz over loopback TCP: served beside the socket, never beyond the host") {
  using agent::service::loopback_listen_address;
  CHECK(*loopback_listen_address("127.0.0.1:9191") == "127.0.0.1:9191");
  CHECK(*loopback_listen_address("127.0.0.53:0") == "127.0.0.53:0");
  CHECK(*loopback_listen_address("[::1]:9191") == "[::1]:9191");
  for (const char* bad : {"0.0.0.0:9191", "10.1.0.1:9191", "[::]:9191", "localhost:9191", "127.0.0.1",
                          "127.0.0.1:65536", "127.0.0.1:x", "::1:9191", "[::1]9191", ""}) {
    auto r = loopback_listen_address(bad);
    CHECK_MESSAGE(!r, bad);
    if (!r) CHECK(r.error().message.find("127.0.0.1:PORT") != std::string::npos);
  }

  Authz az;  // its own server on the socket; a second one here with TCP too
  az.apply();
  const std::string path = az.dir.path + "/authz-tcp.sock";
  auto lock = agent::service::SocketLock::take(path);
  REQUIRE(lock);
  // gRPC serves an async service on one server only: a second service.
  agent::service::AuthzService tcp_service(*az.agent, az.dp, &az.sessions);
  auto s = agent::service::ApiServer::start({path, "", 1 << 20, "127.0.0.1:0"}, tcp_service.grpc_service(),
                                            tcp_service.serving(1), std::move(*lock));
  REQUIRE_MESSAGE(s, (s ? "" : s.error().what()));
  REQUIRE((*s)->tcp_port() > 0);
  auto stub = authz::Authorization::NewStub(
      grpc::CreateChannel(fmt::format("127.0.0.1:{}", (*s)->tcp_port()), grpc::InsecureChannelCredentials()));
  grpc::ClientContext cc;
  cc.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  authz::CheckResponse resp;
  REQUIRE(stub->Check(&cc, request("minions", 40200), &resp).ok());
  CHECK(headers(resp)["x-clovis-link"] == "broadband");
}

namespace {

// The local reply's headers, by name.
std::map<std::string, std::string> denied_headers(const authz::CheckResponse& r) {
  std::map<std::string, std::string> out;
  for (const auto& h : r.denied_response().headers()) {
    CHECK(h.append_action() == envoy::config::core::v3::HeaderValueOption::OVERWRITE_IF_EXISTS_OR_ADD);
    out[h.header().key()] = h.header().value();
  }
  return out;
}

void check_denied(const authz::CheckResponse& resp, const std::string& rule, const std::string& policy) {
  CHECK(resp.status().code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(resp.status().code() == 7);
  REQUIRE(resp.has_denied_response());
  CHECK_FALSE(resp.has_ok_response());
  CHECK(resp.denied_response().status().code() == envoy::type::v3::Forbidden);
  CHECK(resp.denied_response().status().code() == 403);
  auto h = denied_headers(resp);
  CHECK(h.size() == 1);
  CHECK(h["x-clovis-rule"] == rule);
  const auto& md = clovis_metadata(resp).fields();
  CHECK(md.at("action").string_value() == "drop");
  CHECK(md.at("rule").string_value() == rule);
  CHECK(md.at("policy").string_value() == policy);
  CHECK(md.at("link").string_value() == "");
  CHECK(md.at("generation").number_value() == 1);
  CHECK_FALSE(md.at("pinned").bool_value());
}

}  // namespace

TEST_CASE("Check with on-drop deny: a drop rule's request is denied with 403, and nothing is pinned") {
  Authz az;
  az.apply(kDenyMapping.c_str());
  check_denied(az.check(request("mallory", 41000)), "blocked", "");
  CHECK(az.dp.flows()->empty());

  // Only drop verdicts: a steered request is answered as ever.
  auto ok = az.check(request("minions", 41001));
  CHECK(ok.status().code() == 0);
  REQUIRE(ok.has_ok_response());
  CHECK(headers(ok)["x-clovis-link"] == "broadband");
  CHECK(clovis_metadata(ok).fields().at("pinned").bool_value());
  CHECK(az.dp.flows()->size() == 1);
}

TEST_CASE("Check with on-drop deny: a policy whose links are all down and whose last resort is drop denies") {
  Authz az;
  az.apply(kDenyMapping.c_str());
  auto c = core::check_mapping(kDenyMapping);
  REQUIRE(c.ok());
  // Up: kevin's policy steers.
  CHECK(headers(az.check(request("kevin", 41010)))["x-clovis-link"] == "broadband");
  clv_link_state st = az.dp.state();
  st.up &= ~(1ull << c.compiled->link_slot("broadband"));
  REQUIRE(az.dp.set_link_state(st));
  auto resp = az.check(request("kevin", 41011));
  check_denied(resp, "kevin", "broadband-only");
  CHECK(find_flow(*az.dp.flows(), 41011) == nullptr);
}

TEST_CASE("Check with on-drop allow, the default: a drop verdict is still answered OK") {
  Authz az;
  az.apply(kDropMapping);
  auto resp = az.check(request("mallory", 41020));
  CHECK(resp.status().code() == 0);
  REQUIRE(resp.has_ok_response());
  CHECK_FALSE(resp.has_denied_response());
  auto h = headers(resp);
  CHECK(h.count("x-clovis-link") == 0);
  CHECK(h["x-clovis-rule"] == "blocked");
  const auto& md = clovis_metadata(resp).fields();
  CHECK(md.at("action").string_value() == "drop");
  CHECK_FALSE(md.at("pinned").bool_value());
  CHECK(az.dp.flows()->empty());

  // The same with on-drop: allow written out.
  az.apply((std::string(kDropMapping) + "proxy:\n  on-drop: allow\n").c_str());
  resp = az.check(request("mallory", 41021));
  CHECK(resp.status().code() == 0);
  CHECK(resp.has_ok_response());
}

TEST_CASE("Check with on-drop deny still fails open on clovis's own errors") {
  Authz az;
  // No mapping yet.
  auto resp = az.check(request("mallory", 41030));
  CHECK(resp.status().code() == 0);
  CHECK(headers(resp)["x-clovis-error"] == "clovisd runs no mapping");

  az.apply(kDenyMapping.c_str());
  // A request clovis cannot read.
  auto req = request("mallory", 41031);
  req.mutable_attributes()->clear_destination();
  resp = az.check(req);
  CHECK(resp.status().code() == 0);
  REQUIRE(resp.has_ok_response());
  CHECK(headers(resp)["x-clovis-error"].find("destination has no IP socket address") != std::string::npos);

  // The link state cannot be read: no verdict, so no denial.
  az.dp.fail_link_state(true);
  resp = az.check(request("mallory", 41032));
  CHECK(resp.status().code() == 0);
  REQUIRE(resp.has_ok_response());
  CHECK(headers(resp)["x-clovis-error"].find("link state: ") == 0);
  CHECK(az.dp.flows()->empty());
  az.dp.fail_link_state(false);
  check_denied(az.check(request("mallory", 41033)), "blocked", "");
}

TEST_CASE("Check: applying on-drop deny, then allow, switches the answer without a restart") {
  Authz az;
  az.apply(kDropMapping);
  CHECK(az.check(request("mallory", 41040)).status().code() == 0);
  az.apply(kDenyMapping.c_str());
  auto resp = az.check(request("mallory", 41041));
  CHECK(resp.status().code() == 7);
  CHECK(clovis_metadata(resp).fields().at("generation").number_value() == 2);
  az.apply(kDropMapping);
  CHECK(az.check(request("mallory", 41042)).status().code() == 0);
}

TEST_CASE("Check never moves a live connection the kernel steered, and only adds its L7 facts") {
  Authz az;
  az.apply();
  auto c = core::check_mapping(kMapping);
  REQUIRE(c.ok());
  // The kernel pinned 10.1.0.5:40100 -> 203.0.113.10:8000 to mpls from its
  // packets (no proxy flag): a live, forwarded connection.
  auto live = test::make_flow("10.1.0.5", "203.0.113.10", 40100, 8000);
  live.flow.action = CLV_ACT_STEER;
  live.flow.link = static_cast<uint8_t>(c.compiled->link_slot("mpls"));
  live.flow.pkts_out = 42;
  az.dp.set_flows({live});
  auto resp = az.check(request("minions", 40100));  // would steer to broadband
  CHECK(resp.status().code() == 0);
  CHECK_FALSE(clovis_metadata(resp).fields().at("pinned").bool_value());
  auto flows = az.dp.flows();
  REQUIRE(flows);
  const agent::FlowEntry* f = find_flow(*flows, 40100);
  REQUIRE(f);
  CHECK(f->flow.link == c.compiled->link_slot("mpls"));  // not moved: moving it would reset it
  CHECK((f->flow.flags & CLV_FLOW_PROXY) == 0);
  CHECK(f->flow.pkts_out == 42);
  CHECK(az.sessions.find(f->key));  // its L7 facts are kept all the same
  // A tuple the proxy pinned before may be pinned again.
  REQUIRE(az.check(request("minions", 40101)).status().code() == 0);
  auto again = az.check(request("kevin", 40101));
  CHECK(clovis_metadata(again).fields().at("pinned").bool_value());
}

TEST_CASE("Check never pins a connection addressed to the edge host itself") {
  Authz az;
  // The host's own addresses, as the daemon's LocalAddresses tells them.
  agent::service::AuthzService s(*az.agent, az.dp, &az.sessions,
                                 [](const core::IpAddr& a) { return a == *core::IpAddr::parse("203.0.113.10"); });
  az.apply();
  authz::CheckResponse resp;
  s.check(request("minions", 40200), &resp);
  CHECK(resp.status().code() == 0);
  CHECK_FALSE(clovis_metadata(resp).fields().at("pinned").bool_value());
  auto flows = az.dp.flows();
  REQUIRE(flows);
  CHECK(find_flow(*flows, 40200) == nullptr);
}
