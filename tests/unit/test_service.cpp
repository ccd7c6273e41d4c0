// The agent API end to end without root: a real gRPC server on a temporary
// Unix socket, backed by the agent over fakes of the kernel and the host, and
// a real client stub.
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

#include "classifier.hpp"
#include "clovis/v1/agent.grpc.pb.h"
#include "fakes.hpp"
#include "json/decision_json.hpp"
#include "service/agent_service.hpp"
#include "service/convert.hpp"
#include "service/server.hpp"

using namespace clovis;
using test::make_flow;

namespace {

const char* kMapping = R"(version: 1
links:
  - {name: mpls, interface: wan0, gateway: 192.0.2.1, mode: route}
  - {name: bb, interface: wan1, gateway: 198.51.100.1, mode: redirect, snat: masquerade}
  - {name: lte, interface: wwan0, gateway: 100.64.0.1, mode: redirect}
rules:
  - {name: web, priority: 10, match: {proto: tcp, dport: 443}, link: bb}
  - {name: voice, priority: 20, match: {proto: udp, dport: 5060}, link: lte}
default: {link: mpls}
)";

std::string edit(std::string text, const std::string& from, const std::string& to) {
  auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

struct Api {
  test::TempDir dir{"service"};
  test::FakeDataplane dp;
  test::FakeHost host;
  std::unique_ptr<agent::Agent> agent;
  std::unique_ptr<agent::service::AgentService> service;
  std::unique_ptr<agent::service::ApiServer> server;
  std::unique_ptr<v1::Agent::Stub> stub;
  std::vector<agent::service::LinkHealth> health;  // the checker's view the service gets

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
    so.health = [this] { return health; };
    service = std::make_unique<agent::service::AgentService>(*agent, dp, so);
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

const v1::DiffItem* find(const v1::ApplyResponse& r, const std::string& kind, const std::string& name) {
  for (const auto& d : r.diff())
    if (d.kind() == kind && d.name() == name) return &d;
  return nullptr;
}

}  // namespace

TEST_CASE("Apply returns the new generation and what changed") {
  Api api;
  auto first = api.apply_ok(kMapping);
  CHECK(first.generation() == 1);
  CHECK(first.previous_generation() == 0);
  CHECK_FALSE(first.dry_run());
  CHECK(first.diff_size() == 3 + 2 + 1);
  CHECK(find(first, "link", "mpls")->change() == "added");
  REQUIRE(first.notes_size() == 1);  // wwan0 does not exist
  CHECK(first.notes(0).find("interface wwan0 does not exist") != std::string::npos);
  CHECK(first.confirm_deadline_s() == 0);

  auto second = api.apply_ok(edit(kMapping, "priority: 20", "priority: 25"));
  CHECK(second.generation() == 2);
  CHECK(second.previous_generation() == 1);
  REQUIRE(second.diff_size() == 1);
  CHECK(second.diff(0).kind() == "rule");
  CHECK(second.diff(0).name() == "voice");
  CHECK(second.diff(0).change() == "changed");
  CHECK(second.diff(0).detail() == "priority 20 -> 25");
  CHECK(api.dp.applies() == 2);
}

TEST_CASE("a rejected mapping: INVALID_ARGUMENT with located diagnostics, nothing changes") {
  Api api;
  api.apply_ok(kMapping);
  v1::ApplyResponse r;
  grpc::ClientContext cc;
  auto st = api.apply(edit(kMapping, "gateway: 192.0.2.1", "gatway: 192.0.2.1"), &r, false, 0, &cc);
  REQUIRE(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(st.error_message().find("wan.yaml:3:") == 0);
  CHECK(st.error_message().find("unknown key 'gatway'") != std::string::npos);
  const auto& trailers = cc.GetServerTrailingMetadata();
  auto it = trailers.find(agent::service::kDiagnosticsTrailer);
  REQUIRE(it != trailers.end());
  v1::Diagnostics diags;
  REQUIRE(diags.ParseFromArray(it->second.data(), static_cast<int>(it->second.size())));
  REQUIRE(diags.items_size() >= 1);
  const auto& d = diags.items(0);
  CHECK(d.severity() == v1::SEVERITY_ERROR);
  CHECK(d.file() == "wan.yaml");
  CHECK(d.line() == 3);
  CHECK(d.col() > 0);
  CHECK(d.message() == "unknown key 'gatway'");
  CHECK(api.dp.applies() == 1);
  CHECK(api.mapping().generation() == 1);
  CHECK(api.mapping().mapping_yaml() == kMapping);
}

TEST_CASE("hundreds of errors still fit gRPC's metadata limit") {
  Api api;
  std::string text = "version: 1\nlinks:\n";
  for (int i = 0; i < 400; ++i) text += "  - {name: l" + std::to_string(i) + ", bogus: 1}\n";
  v1::ApplyResponse r;
  grpc::ClientContext cc;
  auto st = api.apply(text, &r, false, 0, &cc);
  REQUIRE(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(st.error_message().size() < 2000);
  auto it = cc.GetServerTrailingMetadata().find(agent::service::kDiagnosticsTrailer);
  REQUIRE(it != cc.GetServerTrailingMetadata().end());
  v1::Diagnostics diags;
  REQUIRE(diags.ParseFromArray(it->second.data(), static_cast<int>(it->second.size())));
  CHECK(diags.items_size() > 5);
  CHECK(diags.items(diags.items_size() - 1).message().find("more diagnostics not shown") != std::string::npos);
}

TEST_CASE("a dry run diffs and touches nothing") {
  Api api;
  api.apply_ok(kMapping);
  v1::ApplyResponse r;
  auto st = api.apply(edit(kMapping, "link: bb}", "link: mpls}"), &r, true);
  REQUIRE(st.ok());
  CHECK(r.dry_run());
  CHECK(r.generation() == 1);  // the running one
  REQUIRE(r.diff_size() == 1);
  CHECK(r.diff(0).detail() == "target link bb -> link mpls");
  CHECK(api.dp.applies() == 1);
  CHECK(api.mapping().mapping_yaml() == kMapping);
  v1::HistoryResponse h;
  REQUIRE(api.call(&v1::Agent::Stub::History, v1::HistoryRequest(), &h).ok());
  CHECK(h.entries_size() == 1);
  CHECK_FALSE(std::filesystem::exists(api.state_dir() + "/history/2.yaml"));
  // A dry run with a confirmation makes no sense: refused.
  CHECK(api.apply(kMapping, &r, true, 10).error_code() == grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_CASE("GetMapping, History and Rollback") {
  Api api;
  CHECK(api.mapping().generation() == 0);  // nothing yet
  const std::string t2 = edit(kMapping, "priority: 20", "priority: 21");
  const std::string t3 = edit(kMapping, "dport: 443", "dport: 8443");
  api.apply_ok(kMapping);
  api.apply_ok(t2);
  api.apply_ok(t3);
  auto m = api.mapping();
  CHECK(m.generation() == 3);
  CHECK(m.mapping_yaml() == t3);
  CHECK(m.applied_unix_ms() > 0);

  v1::HistoryResponse h;
  REQUIRE(api.call(&v1::Agent::Stub::History, v1::HistoryRequest(), &h).ok());
  REQUIRE(h.entries_size() == 3);
  CHECK(h.entries(0).generation() == 3);  // newest first
  CHECK(h.entries(0).running());
  CHECK_FALSE(h.entries(1).running());
  CHECK(h.entries(2).mapping_yaml() == kMapping);
  CHECK(h.entries(2).source() == "wan.yaml");

  v1::RollbackRequest rb;
  rb.set_generation(1);
  v1::ApplyResponse r;
  REQUIRE(api.call(&v1::Agent::Stub::Rollback, rb, &r).ok());
  CHECK(r.generation() == 4);  // a rollback is a new apply
  CHECK(r.previous_generation() == 3);
  CHECK(find(r, "rule", "web")->detail() == "match.dport 8443 -> 443");
  CHECK(api.mapping().mapping_yaml() == kMapping);

  rb.set_generation(0);  // the one before the running one: 3
  REQUIRE(api.call(&v1::Agent::Stub::Rollback, rb, &r).ok());
  CHECK(api.mapping().mapping_yaml() == t3);
  REQUIRE(api.call(&v1::Agent::Stub::History, v1::HistoryRequest(), &h).ok());
  CHECK(h.entries(0).source() == "rollback to generation 3 (wan.yaml)");

  rb.set_generation(99);
  auto st = api.call(&v1::Agent::Stub::Rollback, rb, &r);
  CHECK(st.error_code() == grpc::StatusCode::NOT_FOUND);
  CHECK(st.error_message().find("generation 99 is not in the history") == 0);

  // The history survives a restart, and keeps 10 entries.
  api.stop();
  api.start();
  REQUIRE(api.call(&v1::Agent::Stub::History, v1::HistoryRequest(), &h).ok());
  CHECK(h.entries(0).generation() == 6);  // the restart re-applied the mapping
  CHECK(h.entries(0).mapping_yaml() == t3);
  for (int i = 0; i < 8; ++i) api.apply_ok(edit(kMapping, "priority: 20", "priority: " + std::to_string(30 + i)));
  REQUIRE(api.call(&v1::Agent::Stub::History, v1::HistoryRequest(), &h).ok());
  CHECK(h.entries_size() == 10);
  CHECK(h.entries(9).generation() == 5);
  CHECK_FALSE(std::filesystem::exists(api.state_dir() + "/history/4.yaml"));
}

TEST_CASE("commit-confirm: unconfirmed applies revert, Confirm keeps them") {
  Api api;
  v1::ApplyResponse r;
  // Nothing runs yet, so there would be nothing to revert to.
  CHECK(api.apply(kMapping, &r, false, 5).error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  api.apply_ok(kMapping);
  const std::string t2 = edit(kMapping, "priority: 20", "priority: 22");
  REQUIRE(api.apply(t2, &r, false, 1).ok());
  CHECK(r.generation() == 2);
  CHECK(r.confirm_deadline_s() == 1);
  v1::StatusResponse s;
  REQUIRE(api.call(&v1::Agent::Stub::Status, v1::StatusRequest(), &s).ok());
  CHECK(s.confirm_deadline_s() == 1);
  // A second try replaces the first but keeps what runs before both.
  REQUIRE(api.apply(edit(kMapping, "priority: 20", "priority: 23"), &r, false, 1).ok());
  CHECK(r.generation() == 3);
  CHECK_FALSE(api.agent->check_confirm(agent::now_unix_ms()));  // not yet due
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  auto reverted = api.agent->check_confirm(agent::now_unix_ms());  // what the resident loop does
  REQUIRE(reverted);
  REQUIRE(*reverted);
  CHECK(api.mapping().mapping_yaml() == kMapping);
  CHECK(api.mapping().generation() == 4);
  v1::ConfirmResponse c;
  auto st = api.call(&v1::Agent::Stub::Confirm, v1::ConfirmRequest(), &c);
  CHECK(st.error_code() == grpc::StatusCode::FAILED_PRECONDITION);

  REQUIRE(api.apply(t2, &r, false, 1).ok());
  REQUIRE(api.call(&v1::Agent::Stub::Confirm, v1::ConfirmRequest(), &c).ok());
  CHECK(c.generation() == 5);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  CHECK_FALSE(api.agent->check_confirm(agent::now_unix_ms()));
  CHECK(api.mapping().mapping_yaml() == t2);

  // A pending confirmation survives a restart, deadline and fallback.
  REQUIRE(api.apply(kMapping, &r, false, 1).ok());
  api.stop();
  api.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  REQUIRE(api.agent->check_confirm(agent::now_unix_ms()));
  CHECK(api.mapping().mapping_yaml() == t2);
}

TEST_CASE("Simulate is the local classifier's decision with the live link state") {
  Api api;
  v1::SimulateRequest req;
  req.set_src("10.1.0.5");
  req.set_dst("203.0.113.10");
  req.set_proto("tcp");
  req.set_dport(443);
  v1::SimulateResponse resp;
  CHECK(api.call(&v1::Agent::Stub::Simulate, req, &resp).error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  api.apply_ok(kMapping);
  for (bool bb_down : {false, true}) {
    auto c = core::check_mapping(kMapping);
    REQUIRE(c.ok());
    clv_link_state st = api.dp.state();
    if (bb_down) {
      st.up &= ~(1ull << c.compiled->link_slot("bb"));
      REQUIRE(api.dp.set_link_state(st));
    }
    REQUIRE(api.call(&v1::Agent::Stub::Simulate, req, &resp).ok());
    core::FlowQuery q;
    q.tuple.family = CLV_AF_INET;
    q.tuple.src[0] = core::IpAddr::parse("10.1.0.5")->words()[0];
    q.tuple.dst[0] = core::IpAddr::parse("203.0.113.10")->words()[0];
    q.tuple.proto = 6;
    q.tuple.dport = 443;
    const core::Classifier cls(*c.compiled);
    auto d = cls.decide(q, st);
    auto expected = core::decision_json(core::DecisionView{*c.compiled, q, d, ""});
    CHECK(nlohmann::json::parse(resp.decision_json()) == expected);
    CHECK(resp.generation() == 1);
    if (!bb_down) CHECK(expected["link"]["name"] == "bb");
    else CHECK((expected["link"].is_null() || expected["link"]["name"] != "bb"));
  }
  req.set_src("10.1.0.500");
  auto st = api.call(&v1::Agent::Stub::Simulate, req, &resp);
  CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(st.error_message() == "src '10.1.0.500' is not an IP address");
}

namespace {

std::vector<agent::FlowEntry> seeded_flows(const core::CompiledRules& c) {
  auto web = make_flow("10.1.0.5", "203.0.113.10", 40000, 443);
  web.flow.action = CLV_ACT_STEER;
  web.flow.link = static_cast<uint8_t>(c.link_slot("bb"));
  web.flow.rule_id = 0;
  web.flow.generation = c.generation;
  web.flow.pkts_out = 10;
  web.flow.bytes_out = 1500;
  web.flow.last_ns = agent::service::monotonic_ns() - 1'000'000'000;
  auto voice = make_flow("10.1.0.6", "198.51.100.7", 5060, 5060, "udp");
  voice.flow = web.flow;
  voice.flow.rule_id = 1;
  voice.flow.link = static_cast<uint8_t>(c.link_slot("lte"));
  voice.flow.last_ns = agent::service::monotonic_ns();
  auto other = make_flow("10.2.0.9", "192.0.2.77", 33000, 22);
  other.flow = web.flow;
  other.flow.rule_id = 2;  // the default
  other.flow.link = static_cast<uint8_t>(c.link_slot("mpls"));
  other.flow.last_ns = agent::service::monotonic_ns() - 5'000'000'000;
  return {web, voice, other};
}

}  // namespace

TEST_CASE("ListFlows filters the flow table") {
  Api api;
  api.apply_ok(kMapping);
  api.dp.set_flows(seeded_flows(*api.agent->running()));
  auto list = [&](auto&& fill, uint32_t last = 0) {
    v1::ListFlowsRequest req;
    fill(req.mutable_filter());
    req.set_last(last);
    auto l = api.list(req);
    REQUIRE_MESSAGE(l.status.ok(), l.status.error_message());
    CHECK(l.chunks.size() == 1);
    CHECK(l.total() == 3);
    std::vector<std::string> rules;
    for (const auto& f : l.flows()) rules.push_back(f.rule());
    return rules;
  };
  using V = std::vector<std::string>;
  CHECK(list([](v1::FlowFilter*) {}).size() == 3);
  CHECK(list([](v1::FlowFilter* f) { f->add_src("10.1.0.0/16"); }) == V{"web", "voice"});
  CHECK(list([](v1::FlowFilter* f) { f->add_proto("udp"); }) == V{"voice"});
  CHECK(list([](v1::FlowFilter* f) { f->add_link("mpls"); }) == V{"default"});
  CHECK(list([](v1::FlowFilter* f) { f->add_rule("web"); f->add_port(443); }) == V{"web"});
  CHECK(list([](v1::FlowFilter* f) { f->add_ip("192.0.2.0/24"); }) == V{"default"});
  CHECK(list([](v1::FlowFilter* f) { f->add_ip("192.0.3.0/24"); }).empty());  // one message, no flows
  CHECK(list([](v1::FlowFilter*) {}, 2) == V{"voice", "web"});  // most recently active first

  v1::ListFlowsRequest req;
  req.mutable_filter()->add_ip("10.1.0.5/8");
  auto bad = api.list(req);
  CHECK(bad.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(bad.status.error_message() == "ip 10.1.0.5/8 has host bits set; did you mean 10.0.0.0/8?");
  CHECK(bad.chunks.empty());

  req.Clear();
  req.mutable_filter()->add_rule("web");
  auto l = api.list(req);
  REQUIRE(l.status.ok());
  REQUIRE(l.flows().size() == 1);
  const auto f = l.flows()[0];
  CHECK(f.src() == "10.1.0.5");
  CHECK(f.dst() == "203.0.113.10");
  CHECK(f.sport() == 40000);
  CHECK(f.proto() == "tcp");
  CHECK(f.action() == "steer");
  CHECK(f.link() == "bb");
  CHECK(f.packets_out() == 10);
  CHECK(f.bytes_out() == 1500);
  CHECK(f.idle_s() >= 1.0);
  CHECK(f.idle_s() < 10.0);
}

namespace {

// n flows on link bb by rule web: sport 10000 + i, every other one udp, and
// a last_ns that puts them in a scrambled order of recency (i * 7919 mod n:
// distinct for n not a multiple of 7919).
std::vector<agent::FlowEntry> many_flows(const core::CompiledRules& c, size_t n) {
  std::vector<agent::FlowEntry> out;
  const uint64_t now = agent::service::monotonic_ns();
  for (size_t i = 0; i < n; ++i) {
    auto e = make_flow("10.1.0.5", "203.0.113.10", static_cast<uint16_t>(10000 + i), 443, i % 2 ? "udp" : "tcp");
    e.flow.action = CLV_ACT_STEER;
    e.flow.link = static_cast<uint8_t>(c.link_slot("bb"));
    e.flow.generation = c.generation;
    e.flow.first_ns = now - 60'000'000'000;
    e.flow.last_ns = now - 50'000'000'000 + (i * 7919 % n) * 1000;
    e.flow.pkts_out = i;
    out.push_back(e);
  }
  return out;
}

std::vector<uint32_t> sports(const std::vector<v1::Flow>& flows) {
  std::vector<uint32_t> out;
  for (const auto& f : flows) out.push_back(f.sport());
  return out;
}

std::vector<size_t> chunk_sizes(const Api::Listing& l) {
  std::vector<size_t> out;
  for (const auto& c : l.chunks) out.push_back(static_cast<size_t>(c.flows_size()));
  return out;
}

}  // namespace

TEST_CASE("ListFlows streams a table larger than one message in chunks, in the table's order") {
  Api api;
  api.apply_ok(kMapping);
  const auto table = many_flows(*api.agent->running(), 10000);
  api.dp.set_flows(table);
  api.dp.set_flow_batch(1000);  // batches and chunks fall differently
  auto l = api.list(v1::ListFlowsRequest());
  REQUIRE_MESSAGE(l.status.ok(), l.status.error_message());
  CHECK(chunk_sizes(l) == std::vector<size_t>{4096, 4096, 1808});
  for (size_t i = 0; i + 1 < l.chunks.size(); ++i) CHECK(l.chunks[i].total() == 0);  // only the last has it
  CHECK(l.total() == 10000);
  std::vector<uint32_t> want;
  for (const auto& e : table) want.push_back(e.key.sport);
  CHECK(sports(l.flows()) == want);
  // Every flow fully converted, the reused messages included.
  const auto flows = l.flows();
  for (size_t i : {size_t{0}, size_t{4095}, size_t{4096}, size_t{9999}}) {
    CAPTURE(i);
    CHECK(flows[i].proto() == (i % 2 ? "udp" : "tcp"));
    CHECK(flows[i].rule() == "web");
    CHECK(flows[i].link() == "bb");
    CHECK(flows[i].packets_out() == i);
    CHECK(flows[i].flags_size() == 0);
  }

  SUBCASE("a filter across batches and chunks") {
    v1::ListFlowsRequest req;
    req.mutable_filter()->add_proto("udp");
    auto u = api.list(req);
    REQUIRE(u.status.ok());
    CHECK(chunk_sizes(u) == std::vector<size_t>{4096, 904});
    CHECK(u.total() == 10000);
    std::vector<uint32_t> odd;
    for (uint32_t i = 1; i < 10000; i += 2) odd.push_back(10000 + i);
    CHECK(sports(u.flows()) == odd);
  }
  SUBCASE("--last across batches and chunks: the N most recent, most recent first") {
    std::vector<agent::FlowEntry> udp;
    for (const auto& e : table)
      if (e.key.proto == 17) udp.push_back(e);
    std::sort(udp.begin(), udp.end(), [](const auto& a, const auto& b) { return a.flow.last_ns > b.flow.last_ns; });
    for (uint32_t n : {1u, 7u, 4097u, 5000u, 6000u}) {
      CAPTURE(n);
      v1::ListFlowsRequest req;
      req.mutable_filter()->add_proto("udp");
      req.set_last(n);
      auto r = api.list(req);
      REQUIRE(r.status.ok());
      CHECK(r.total() == 10000);
      std::vector<uint32_t> want_last;
      for (size_t i = 0; i < std::min<size_t>(n, udp.size()); ++i) want_last.push_back(udp[i].key.sport);
      CHECK(sports(r.flows()) == want_last);
      CHECK(r.chunks.size() == (want_last.size() + 4095) / 4096);
    }
  }
  SUBCASE("a kernel read that fails midway ends the stream with UNAVAILABLE, without a last chunk") {
    api.dp.fail_scan_at(5);  // after 5000 flows: one full chunk went out
    auto f = api.list(v1::ListFlowsRequest());
    CHECK(f.status.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(f.status.error_message() == "kernel: read clv_flows: Input/output error");
    CHECK(chunk_sizes(f) == std::vector<size_t>{4096});
    CHECK(f.total() == 0);
    v1::ListFlowsRequest req;
    req.set_last(10);  // nothing is sent before the table is read
    f = api.list(req);
    CHECK(f.status.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(f.chunks.empty());
    api.dp.fail_scan_at(0);
    f = api.list(v1::ListFlowsRequest());
    CHECK(f.status.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(f.chunks.empty());
  }
}

TEST_CASE("a flow written straight into a message is the one its FlowView makes") {
  Api api;
  api.apply_ok(kMapping);
  const auto rules = api.agent->running();
  const agent::FlowNamer names({rules});
  const uint64_t now = agent::service::monotonic_ns();
  auto v4 = make_flow("10.1.0.5", "203.0.113.10", 40000, 443);
  v4.flow.action = CLV_ACT_STEER;
  v4.flow.link = static_cast<uint8_t>(rules->link_slot("bb"));
  v4.flow.generation = rules->generation;
  v4.flow.flags = CLV_FLOW_NAT | CLV_FLOW_MIGRATED;
  v4.flow.nat_addr[0] = htonl(0xc6120002);
  v4.flow.nat_port = 40001;
  v4.flow.first_ns = now - 5'000'000'000;
  v4.flow.last_ns = now - 1'500'000;
  v4.flow.pkts_out = 3, v4.flow.bytes_out = 4500, v4.flow.pkts_in = 2, v4.flow.bytes_in = 120;
  auto v6 = make_flow("2001:db8::1", "2001:db8:100::9", 51000, 443);
  v6.flow = v4.flow;
  std::memcpy(v6.flow.nat_addr, v6.key.src, sizeof v6.flow.nat_addr);
  auto local = make_flow("10.1.0.6", "10.1.0.1", 0, 0, "icmp");
  local.flow.flags = CLV_FLOW_LOCAL;
  auto unknown = make_flow("0.0.0.0", "255.255.255.255", 1, 65535, "udp");  // an older rule set, a dead slot
  unknown.flow = v4.flow;
  unknown.flow.generation = 99;
  unknown.flow.rule_id = 12345;
  unknown.flow.link = 63;
  unknown.flow.flags = CLV_FLOW_PROXY | CLV_FLOW_LAST_RESORT;
  auto proto = make_flow("192.168.100.200", "8.8.8.8", 0, 0, "132");
  proto.flow.action = CLV_ACT_DROP;
  v1::Flow reused;
  for (const auto* e : {&v4, &v6, &local, &unknown, &proto, &v4, &local}) {
    v1::Flow want;
    agent::service::to_proto(names.view(e->key, e->flow, now), e->flow, &want);
    reused.Clear();
    agent::service::to_proto(names, e->key, e->flow, now, &reused);
    CHECK(reused.DebugString() == want.DebugString());
    CHECK(reused.SerializeAsString() == want.SerializeAsString());
  }
  v1::Flow f;
  agent::service::to_proto(names, v6.key, v6.flow, now, &f);
  CHECK(f.src() == "2001:db8::1");
  CHECK(f.nat() == "[2001:db8::1]:40001");
  agent::service::to_proto(names, unknown.key, unknown.flow, now, &f);
  CHECK(f.rule() == "#12345");
  CHECK(f.link() == "#63");
  CHECK(f.src() == "0.0.0.0");
  CHECK(f.dst() == "255.255.255.255");
}

TEST_CASE("WatchFlows streams added, expired and counters") {
  Api api;
  api.apply_ok(kMapping);
  auto flows = seeded_flows(*api.agent->running());
  api.dp.set_flows({flows[0]});
  v1::WatchFlowsRequest req;
  req.set_interval_ms(100);
  req.mutable_filter()->add_proto("tcp");
  grpc::ClientContext cc;
  auto reader = api.stub->WatchFlows(&cc, req);
  v1::FlowEvent ev;
  REQUIRE(reader->Read(&ev));
  CHECK(ev.kind() == v1::FlowEvent::ADDED);
  CHECK(ev.flow().rule() == "web");
  REQUIRE(reader->Read(&ev));
  CHECK(ev.kind() == v1::FlowEvent::COUNTERS);
  CHECK(ev.links_size() == 3);
  // The tcp flow goes, a udp one (filtered out) and another tcp one come.
  auto later = make_flow("10.1.0.8", "203.0.113.10", 40100, 443);
  later.flow = flows[0].flow;
  api.dp.set_flows({flows[1], later});
  std::vector<std::pair<v1::FlowEvent::Kind, uint32_t>> seen;
  while (seen.size() < 2 && reader->Read(&ev))
    if (ev.kind() != v1::FlowEvent::COUNTERS) seen.emplace_back(ev.kind(), ev.flow().sport());
  CHECK(seen == std::vector<std::pair<v1::FlowEvent::Kind, uint32_t>>{{v1::FlowEvent::ADDED, 40100},
                                                                        {v1::FlowEvent::EXPIRED, 40000}});
  cc.TryCancel();
  while (reader->Read(&ev)) {
  }
  CHECK(reader->Finish().error_code() == grpc::StatusCode::CANCELLED);
}

TEST_CASE("a stopping server ends its streams") {
  Api api;
  grpc::ClientContext cc;
  auto reader = api.stub->WatchFlows(&cc, v1::WatchFlowsRequest());
  v1::FlowEvent ev;
  REQUIRE(reader->Read(&ev));  // COUNTERS: the stream runs
  const auto t0 = std::chrono::steady_clock::now();
  api.server->shutdown();
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(1));
  while (reader->Read(&ev)) {
  }
  CHECK(reader->Finish().error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK_FALSE(std::filesystem::exists(api.socket()));
}

TEST_CASE("Status and ListLinks") {
  Api api;
  api.apply_ok(kMapping);
  const auto& c = *api.agent->running();
  api.dp.set_flows(seeded_flows(c));
  api.dp.set_counter(CLV_STAT_NEW_FLOW, 42);
  agent::LinkCounters lc{};
  lc[static_cast<size_t>(c.link_slot("bb"))].tx_bytes = 1000;
  api.dp.set_link_counters(lc);
  api.service->sample_links();
  lc[static_cast<size_t>(c.link_slot("bb"))].tx_bytes = 5000;
  api.dp.set_link_counters(lc);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  api.service->sample_links();

  v1::StatusResponse s;
  REQUIRE(api.call(&v1::Agent::Stub::Status, v1::StatusRequest(), &s).ok());
  CHECK(s.version() == CLOVIS_VERSION);
  CHECK(s.generation() == 1);
  CHECK(s.uptime_s() >= 0);
  CHECK(s.counters().at("new_flow") == 42);
  CHECK(s.counters().size() == CLV_STAT_MAX);
  REQUIRE(s.maps_size() == 1);
  CHECK(s.maps(0).entries() == 3);
  CHECK(s.pin_dir() == "/pins");
  CHECK(s.links_size() == 3);

  v1::ListLinksResponse l;
  REQUIRE(api.call(&v1::Agent::Stub::ListLinks, v1::ListLinksRequest(), &l).ok());
  REQUIRE(l.links_size() == 3);
  std::map<std::string, v1::Link> by_name;
  for (const auto& x : l.links()) by_name[x.name()] = x;
  CHECK(by_name["bb"].state() == "up");
  CHECK(by_name["bb"].mode() == "redirect");
  CHECK(by_name["bb"].interface() == "wan1");
  CHECK(by_name["bb"].tx_bytes() == 5000);
  // 4000 B between two samples at least 0.2 s apart.
  CHECK(by_name["bb"].tx_bps() > 400);
  CHECK(by_name["bb"].tx_bps() <= 20000 * 1.01);
  CHECK(by_name["bb"].flows() == 1);
  CHECK(by_name["lte"].state() == "down");  // wwan0 does not exist
  const int64_t since = by_name["mpls"].since_unix_ms();
  CHECK(since > 0);
  // A state change moves `since`.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  api.host.set_interface("wan0", {4, false, core::IpAddr::parse("192.0.2.2"), std::nullopt});
  REQUIRE(api.agent->refresh_link_state());
  REQUIRE(api.call(&v1::Agent::Stub::ListLinks, v1::ListLinksRequest(), &l).ok());
  for (const auto& x : l.links())
    if (x.name() == "mpls") {
      CHECK(x.state() == "down");
      CHECK(x.since_unix_ms() > since);
    }
}

TEST_CASE("a kernel failure is UNAVAILABLE and changes nothing") {
  Api api;
  api.apply_ok(kMapping);
  api.dp.fail_next();
  v1::ApplyResponse r;
  auto st = api.apply(edit(kMapping, "priority: 20", "priority: 22"), &r);
  CHECK(st.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK(st.error_message() == "kernel: clv_rules: map update failed; the running rule set is unchanged");
  CHECK(api.mapping().generation() == 1);
}

TEST_CASE("one server per socket") {
  Api api;
  auto second = agent::service::ApiServer::start({api.socket(), ""}, *api.service);
  REQUIRE_FALSE(second);
  CHECK(second.error().what().find("another clovisd (pid ") != std::string::npos);
  v1::GetMappingResponse m;
  CHECK(api.call(&v1::Agent::Stub::GetMapping, v1::GetMappingRequest(), &m).ok());  // the first one still serves
  struct stat st {};
  REQUIRE(::stat(api.socket().c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0660);
}

TEST_CASE("links carry the checker's reason, quality and transitions") {
  Api api;
  api.apply_ok(kMapping);
  const int bb = api.agent->running()->link_slot("bb");
  api.health = {{bb, "3 probe rounds failed", 23.5, 1.25, 40, true, 2}, {99, "no such slot", 0, 0, 0, false, 0}};
  v1::ListLinksResponse l;
  REQUIRE(api.call(&v1::Agent::Stub::ListLinks, v1::ListLinksRequest(), &l).ok());
  REQUIRE(l.links_size() == 3);
  for (const auto& x : l.links()) {
    CAPTURE(x.name());
    if (x.name() == "bb") {
      CHECK(x.reason() == "3 probe rounds failed");
      CHECK(x.latency_ms() == 23.5);
      CHECK(x.jitter_ms() == 1.25);
      CHECK(x.loss_pct() == 40);
      CHECK(x.measured());
      CHECK(x.transitions() == 2);
    } else {
      CHECK(x.reason().empty());  // no verdict from the checker: no quality
      CHECK_FALSE(x.measured());
    }
  }
  v1::StatusResponse s;
  REQUIRE(api.call(&v1::Agent::Stub::Status, v1::StatusRequest(), &s).ok());
  bool found = false;
  for (const auto& x : s.links())
    if (x.name() == "bb") found = x.reason() == "3 probe rounds failed" && x.transitions() == 2;
  CHECK(found);
}

namespace {

agent::LinkEvent link_event(int64_t t, const char* link, const char* from, const char* to, const char* why) {
  return {t, link, from, to, why, 12.5, 0.5, t % 2 ? 100.0 : 0.0};
}

}  // namespace

TEST_CASE("ListEvents: the agent's link events, oldest first") {
  Api api;
  api.apply_ok(kMapping);
  v1::ListEventsResponse r;
  REQUIRE(api.call(&v1::Agent::Stub::ListEvents, v1::ListEventsRequest(), &r).ok());
  CHECK(r.events_size() == 0);
  const uint64_t all = 7;
  auto down = link_event(1001, "bb", "up", "down", "3 probe rounds failed");
  auto up = link_event(2000, "bb", "down", "up", "3 probe rounds answered");
  REQUIRE(api.agent->set_health(all & ~2ull, 0, all, &down));
  REQUIRE(api.agent->set_health(all, 0, all, &up));
  REQUIRE(api.call(&v1::Agent::Stub::ListEvents, v1::ListEventsRequest(), &r).ok());
  REQUIRE(r.events_size() == 2);
  CHECK(r.events(0).time_unix_ms() == 1001);
  CHECK(r.events(0).link() == "bb");
  CHECK(r.events(0).from() == "up");
  CHECK(r.events(0).to() == "down");
  CHECK(r.events(0).reason() == "3 probe rounds failed");
  CHECK(r.events(0).latency_ms() == 12.5);
  CHECK(r.events(0).jitter_ms() == 0.5);
  CHECK(r.events(0).loss_pct() == 100);
  CHECK(r.events(1).to() == "up");
  CHECK(r.events(1).loss_pct() == 0);
}

TEST_CASE("WatchEvents streams the events after it started, until cancelled") {
  Api api;
  api.apply_ok(kMapping);
  const uint64_t all = 7;
  auto old = link_event(1000, "lte", "up", "down", "carrier lost");
  REQUIRE(api.agent->set_health(all, 0, all, &old));
  grpc::ClientContext cc;
  auto reader = api.stub->WatchEvents(&cc, v1::WatchEventsRequest());
  reader->WaitForInitialMetadata();  // the watch is on
  auto a = link_event(2001, "bb", "up", "degraded", "loss 40% over 20%");
  auto b = link_event(2002, "bb", "degraded", "down", "3 probe rounds failed");
  REQUIRE(api.agent->set_health(all, 2, all, &a));
  REQUIRE(api.agent->set_health(all & ~2ull, 0, all, &b));  // a burst: both arrive
  v1::LinkEventMsg ev;
  REQUIRE(reader->Read(&ev));
  CHECK(ev.time_unix_ms() == 2001);  // not the one from before the watch
  CHECK(ev.to() == "degraded");
  REQUIRE(reader->Read(&ev));
  CHECK(ev.time_unix_ms() == 2002);
  CHECK(ev.reason() == "3 probe rounds failed");
  auto c = link_event(3000, "bb", "down", "up", "3 probe rounds answered");
  REQUIRE(api.agent->set_health(all, 0, all, &c));
  REQUIRE(reader->Read(&ev));
  CHECK(ev.to() == "up");
  const auto t0 = std::chrono::steady_clock::now();
  cc.TryCancel();
  while (reader->Read(&ev)) {
  }
  CHECK(reader->Finish().error_code() == grpc::StatusCode::CANCELLED);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(1));
}

TEST_CASE("a stopping server ends WatchEvents") {
  Api api;
  grpc::ClientContext cc;
  auto reader = api.stub->WatchEvents(&cc, v1::WatchEventsRequest());
  reader->WaitForInitialMetadata();
  const auto t0 = std::chrono::steady_clock::now();
  api.server->shutdown();
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(1));
  v1::LinkEventMsg ev;
  while (reader->Read(&ev)) {
  }
  CHECK(reader->Finish().error_code() == grpc::StatusCode::UNAVAILABLE);
}
