// The agent API's flow table: ListFlows (filters, chunked streaming, the
// direct conversion) and WatchFlows, against the fake dataplane.
#include "render/flow_json.hpp"
#include "service_api.hpp"

using namespace clovis;
using namespace clovis::service_test;
using test::make_flow;

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
  CHECK(list([](v1::FlowFilter* f) {
          f->add_rule("web");
          f->add_port(443);
        }) == V{"web"});
  CHECK(list([](v1::FlowFilter* f) { f->add_ip("192.0.2.0/24"); }) == V{"default"});
  CHECK(list([](v1::FlowFilter* f) { f->add_ip("192.0.3.0/24"); }).empty());  // one message, no flows
  CHECK(list([](v1::FlowFilter*) {}, 2) == V{"voice", "web"});                // most recently active first

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
  const uint64_t now = agent::monotonic_ns();
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

TEST_CASE("a flow written into a reused message is the one a fresh message gets") {
  Api api;
  api.apply_ok(kMapping);
  const auto rules = api.agent->running();
  const agent::FlowNamer names({rules});
  const uint64_t now = agent::monotonic_ns();
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
  v4.flow.state = CLV_CT_ESTABLISHED;
  v4.flow.ct_flags = CLV_CT_ASSURED;
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
  unknown.flow.state = CLV_CT_NEW;
  unknown.flow.ct_flags = 0;
  auto proto = make_flow("192.168.100.200", "8.8.8.8", 0, 0, "132");
  proto.flow.action = CLV_ACT_DROP;
  v1::Flow reused;
  for (const auto* e : {&v4, &v6, &local, &unknown, &proto, &v4, &local}) {
    v1::Flow want;
    agent::service::to_proto(names, e->key, e->flow, now, &want);
    reused.Clear();
    agent::service::to_proto(names, e->key, e->flow, now, &reused);
    CHECK(reused.DebugString() == want.DebugString());
    CHECK(reused.SerializeAsString() == want.SerializeAsString());
  }
  v1::Flow f;
  agent::service::to_proto(names, v6.key, v6.flow, now, &f);
  CHECK(f.src() == "2001:db8::1");
  CHECK(f.nat() == "[2001:db8::1]:40001");
  CHECK(f.state() == "established");
  CHECK(f.assured());
  agent::service::to_proto(names, unknown.key, unknown.flow, now, &f);
  CHECK(f.rule() == "#12345");
  CHECK(f.link() == "#63");
  CHECK(f.src() == "0.0.0.0");
  CHECK(f.dst() == "255.255.255.255");
  CHECK(f.state() == "unreplied");  // written over the v6 flow's
  CHECK_FALSE(f.assured());
}

// A field of FlowRow is written in three places: to_proto (the agent's
// clovis.v1.Flow), render::flow_row (clovisctl reads it back) and
// core::append_flow_json. A row with every field set must survive the wire
// unchanged; the size check makes a new field fail here until it is added
// to both converters and to this row.
TEST_CASE("every flow row field crosses the wire: to_proto, then the CLI's flow_row") {
  static_assert(sizeof(core::FlowRow) == 216,
                "FlowRow changed: write the new field in service/convert.cpp's to_proto, "
                "cli/render/flow_json.cpp's flow_row and core/json/flow_json.cpp, then set it below");
  core::FlowRow r;
  r.family = "ipv6";
  r.src = "2001:db8::1";
  r.dst = "2001:db8:100::9";
  r.sport = 51000;
  r.dport = 443;
  r.proto = "tcp";
  r.action = "steer";
  r.rule = "web";
  r.link = "bb";
  r.generation = 7;
  r.flags = CLV_FLOW_NAT | CLV_FLOW_MIGRATED | CLV_FLOW_PROXY | CLV_FLOW_LOCAL | CLV_FLOW_LAST_RESORT;
  r.state = "established";
  r.assured = true;
  r.packets_out = 3, r.bytes_out = 4500, r.packets_in = 2, r.bytes_in = 120;
  r.age_s = 5.25, r.idle_s = 0.5;
  r.nat = "[2001:db8::1]:40001";
  v1::Flow wire;
  agent::service::to_proto(r, &wire);
  v1::Flow parsed;
  REQUIRE(parsed.ParseFromString(wire.SerializeAsString()));
  CHECK(cli::render::flow_row(parsed) == r);
  core::FlowRow other = r;
  other.idle_s = 0.75;  // the comparison sees a single field
  CHECK_FALSE(cli::render::flow_row(parsed) == other);
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
