// The agent API's test fixture: a real gRPC server on a temporary Unix
// socket, backed by the agent over fakes of the kernel and the host, and a
// real client stub (test_service.cpp, test_service_flows.cpp).
#pragma once
#include <arpa/inet.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <thread>

#include <doctest/doctest.h>
#include <grpcpp/grpcpp.h>

#include "clovis/v1/agent.grpc.pb.h"
#include "core/classifier.hpp"
#include "core/json/decision_json.hpp"
#include "fakes.hpp"
#include "service/agent_service.hpp"
#include "service/convert.hpp"
#include "service/server.hpp"

namespace clovis::service_test {

using namespace clovis;

inline const char* const kMapping = R"(version: 1
links:
  - {name: mpls, interface: wan0, gateway: 192.0.2.1, mode: route}
  - {name: bb, interface: wan1, gateway: 198.51.100.1, mode: redirect, snat: masquerade}
  - {name: lte, interface: wwan0, gateway: 100.64.0.1, mode: redirect}
rules:
  - {name: web, priority: 10, match: {proto: tcp, dport: 443}, link: bb}
  - {name: voice, priority: 20, match: {proto: udp, dport: 5060}, link: lte}
default: {link: mpls}
)";

inline std::string edit(std::string text, const std::string& from, const std::string& to) {
  auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

struct Api {
  test::TempDir dir{"service"};
  test::FakeDataplane dp;
  test::FakeHost host;
  std::unique_ptr<agent::Agent> agent;
  agent::Telemetry telemetry{dp};  // as the daemon owns it
  std::unique_ptr<agent::service::AgentService> service;
  std::unique_ptr<agent::service::ApiServer> server;
  std::unique_ptr<v1::Agent::Stub> stub;
  size_t max_watchers = agent::service::kDefaultMaxWatchers;  // for the next start()
  std::chrono::milliseconds slow_reader{10000};               // for the next start()

  Api() {
    host.set_interface("wan0", {4, true, core::IpAddr::parse("192.0.2.2"), std::nullopt});
    host.set_interface("wan1", {5, true, core::IpAddr::parse("198.51.100.2"), std::nullopt});
    start();
  }
  ~Api() { stop(); }
  std::string socket() const { return dir.path + "/api/clovisd.sock"; }
  std::string state_dir() const { return dir.path + "/state"; }

  void start() {
    agent = std::make_unique<agent::Agent>(agent::AgentOptions{state_dir(), 10000}, dp, host);
    (void)agent->restore();
    agent::service::ServiceOptions so{"/pins", {}};
    so.max_watchers = max_watchers;
    so.slow_reader = slow_reader;
    service = std::make_unique<agent::service::AgentService>(*agent, telemetry, so);
    auto s = agent::service::ApiServer::start({socket(), ""}, *service);
    REQUIRE_MESSAGE(s, (s ? "" : s.error().what()));
    server = std::move(*s);
    stub = v1::Agent::NewStub(grpc::CreateChannel("unix:" + socket(), grpc::InsecureChannelCredentials()));
  }
  void stop() {
    stub.reset();
    server.reset();
    service.reset();
    agent.reset();
  }

  template <class Req, class Resp>
  using Unary = grpc::Status (v1::Agent::Stub::*)(grpc::ClientContext*, const Req&, Resp*);

  template <class Req, class Resp>
  grpc::Status call(Unary<Req, Resp> m, const Req& req, Resp* resp, grpc::ClientContext* cc = nullptr) {
    grpc::ClientContext own;
    if (!cc) cc = &own;
    cc->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return (stub.get()->*m)(cc, req, resp);
  }

  grpc::Status apply(const std::string& text, v1::ApplyResponse* resp, bool dry = false, uint32_t confirm = 0,
                     grpc::ClientContext* cc = nullptr) {
    v1::ApplyRequest req;
    req.set_mapping_yaml(text);
    req.set_source("wan.yaml");
    req.set_dry_run(dry);
    req.set_confirm_timeout_s(confirm);
    return call(&v1::Agent::Stub::Apply, req, resp, cc);
  }
  v1::ApplyResponse apply_ok(const std::string& text) {
    v1::ApplyResponse r;
    auto st = apply(text, &r);
    REQUIRE_MESSAGE(st.ok(), st.error_message());
    return r;
  }
  // A ListFlows stream read to its end: its chunks and how it ended.
  struct Listing {
    grpc::Status status;
    std::vector<v1::ListFlowsResponse> chunks;
    std::vector<v1::Flow> flows() const {
      std::vector<v1::Flow> out;
      for (const auto& c : chunks) out.insert(out.end(), c.flows().begin(), c.flows().end());
      return out;
    }
    uint64_t total() const { return chunks.empty() ? 0 : chunks.back().total(); }
  };
  Listing list(const v1::ListFlowsRequest& req) {
    grpc::ClientContext cc;
    cc.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    auto reader = stub->ListFlows(&cc, req);
    Listing out;
    for (v1::ListFlowsResponse r; reader->Read(&r);) out.chunks.push_back(r);
    out.status = reader->Finish();
    return out;
  }
  v1::GetMappingResponse mapping() {
    v1::GetMappingResponse r;
    REQUIRE(call(&v1::Agent::Stub::GetMapping, v1::GetMappingRequest(), &r).ok());
    return r;
  }
};

inline const v1::DiffItem* find(const v1::ApplyResponse& r, const std::string& kind, const std::string& name) {
  for (const auto& d : r.diff())
    if (d.kind() == kind && d.name() == name) return &d;
  return nullptr;
}

// Three flows of kMapping's rules, on bb, lte and mpls, with distinct recency.
inline std::vector<agent::FlowEntry> seeded_flows(const core::CompiledRules& c) {
  auto web = test::make_flow("10.1.0.5", "203.0.113.10", 40000, 443);
  web.flow.action = CLV_ACT_STEER;
  web.flow.link = static_cast<uint8_t>(c.link_slot("bb"));
  web.flow.rule_id = 0;
  web.flow.generation = c.generation;
  web.flow.pkts_out = 10;
  web.flow.bytes_out = 1500;
  web.flow.last_ns = agent::monotonic_ns() - 1'000'000'000;
  auto voice = test::make_flow("10.1.0.6", "198.51.100.7", 5060, 5060, "udp");
  voice.flow = web.flow;
  voice.flow.rule_id = 1;
  voice.flow.link = static_cast<uint8_t>(c.link_slot("lte"));
  voice.flow.last_ns = agent::monotonic_ns();
  auto other = test::make_flow("10.2.0.9", "192.0.2.77", 33000, 22);
  other.flow = web.flow;
  other.flow.rule_id = 2;  // the default
  other.flow.link = static_cast<uint8_t>(c.link_slot("mpls"));
  other.flow.last_ns = agent::monotonic_ns() - 5'000'000'000;
  return {web, voice, other};
}

}  // namespace clovis::service_test
