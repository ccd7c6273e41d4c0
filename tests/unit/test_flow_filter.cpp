// Flow filters, flow rows (core::flow_row, their JSON), the scan diff
// behind WatchFlows and link rates.
#include <algorithm>
#include <map>
#include <random>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include "core/flow_filter.hpp"
#include "core/json/flow_json.hpp"
#include "core/pipeline.hpp"
#include "fakes.hpp"
#include "telemetry/flow_scan.hpp"
#include "telemetry/flow_view.hpp"
#include "telemetry/link_sampler.hpp"

using namespace clovis;
using core::FlowFilter;
using core::FlowFilterSpec;
using test::make_flow;

namespace {

const char* kMapping = R"(version: 1
links:
  - {name: mpls, interface: wan0, gateway: 192.0.2.1, mode: route}
  - {name: bb, interface: wan1, gateway: [198.51.100.1, "2001:db8::1"], mode: redirect, snat: masquerade}
rules:
  - {name: web, priority: 1, match: {proto: tcp, dport: 443}, link: bb}
default: {link: mpls}
)";

std::shared_ptr<const core::CompiledRules> compiled(uint32_t generation = 1) {
  core::CompileOptions o;
  o.generation = generation;
  auto c = core::check_mapping(kMapping, o);
  REQUIRE(c.ok());
  return std::make_shared<const core::CompiledRules>(std::move(*c.compiled));
}

// A spec with the fields `set` sets.
template <typename F>
FlowFilterSpec spec(F set) {
  FlowFilterSpec s;
  set(s);
  return s;
}

FlowFilter filter(const FlowFilterSpec& s) {
  auto f = FlowFilter::parse(s);
  REQUIRE_MESSAGE(f, (f ? "" : f.error().what()));
  return *f;
}

}  // namespace

TEST_CASE("filter values are checked") {
  auto err = [](const FlowFilterSpec& s) {
    auto f = FlowFilter::parse(s);
    REQUIRE_FALSE(f);
    CHECK(f.error().code == core::ErrorCode::kInvalidArgument);
    return f.error().message;
  };
  CHECK(err(spec([](auto& s) { s.src = {"10.1.0.300"}; })) ==
        "src '10.1.0.300' is not an address or a CIDR (e.g. 10.1.0.0/16)");
  CHECK(err(spec([](auto& s) { s.ip = {"10.1.0.5/16"}; })) ==
        "ip 10.1.0.5/16 has host bits set; did you mean 10.1.0.0/16?");
  CHECK(err(spec([](auto& s) { s.dport = {70000}; })) == "dport 70000 is not a port (0-65535)");
  CHECK(err(spec([](auto& s) { s.proto = {"tcpp"}; })).find("proto 'tcpp' is not a protocol") == 0);
  CHECK(err(spec([](auto& s) { s.state = {"ESTABLISHED"}; })) ==
        "state 'ESTABLISHED' is not a connection state (syn-sent, syn-recv, established, fin-wait, time-wait, "
        "close, unreplied, replied)");
  CHECK(filter({}).empty());
  CHECK_FALSE(filter(spec([](auto& s) { s.link = {"bb"}; })).empty());
  CHECK_FALSE(filter(spec([](auto& s) { s.state = {"replied"}; })).empty());
  CHECK(filter(spec([](auto& s) { s.rule = {"web"}; })).needs_names());
  CHECK_FALSE(filter(spec([](auto& s) { s.port = {443}; })).needs_names());
}

TEST_CASE("the CLI's messages name its options; its request is the filter normalized") {
  auto f = FlowFilter::parse(spec([](auto& s) { s.dst = {"10.1.0.5/16"}; }), "--");
  REQUIRE_FALSE(f);
  CHECK(f.error().message == "--dst 10.1.0.5/16 has host bits set; did you mean 10.1.0.0/16?");
  f = FlowFilter::parse(spec([](auto& s) { s.state = {"up"}; }), "--");
  REQUIRE_FALSE(f);
  CHECK(f.error().message.find("--state 'up' is not a connection state") == 0);
  CHECK(*FlowFilter::parse_port("--port", "443") == 443);
  CHECK(*FlowFilter::parse_port("--port", "65535") == 65535);
  for (const char* bad : {"", "65536", "99999", "123456", "-1", "http", "4 3"}) {
    CAPTURE(bad);
    auto p = FlowFilter::parse_port("--sport", bad);
    REQUIRE_FALSE(p);
    CHECK(p.error().message == fmt::format("--sport '{}' is not a port (0-65535)", bad));
  }
  const auto n = filter(spec([](auto& s) {
                   s.src = {"10.1.0.5"};
                   s.ip = {"2001:db8::/32"};
                   s.proto = {"6", "UDP"};
                   s.dport = {443};
                   s.state = {"replied"};
                   s.rule = {"web"};
                 })).spec();
  CHECK(n.src == std::vector<std::string>{"10.1.0.5/32"});
  CHECK(n.ip == std::vector<std::string>{"2001:db8::/32"});
  CHECK(n.proto == std::vector<std::string>{"tcp", "udp"});
  CHECK(n.dport == std::vector<uint32_t>{443});
  CHECK(n.state == std::vector<std::string>{"replied"});
  CHECK(n.rule == std::vector<std::string>{"web"});
  // Parsing the normalized spec again gives the same spec: what clovisd parses.
  CHECK(filter(n).spec().src == n.src);
}

TEST_CASE("fields are ANDed, values of one field ORed") {
  auto f = make_flow("10.1.0.5", "203.0.113.10", 40000, 443);
  f.flow.state = CLV_CT_ESTABLISHED;
  auto match = [&](const FlowFilterSpec& s, core::FlowNames n = {"web", "bb"}) {
    return filter(s).matches(f.key, f.flow.state, n);
  };
  CHECK(match({}));
  CHECK(match(spec([](auto& s) { s.src = {"10.1.0.0/16"}; })));
  CHECK(match(spec([](auto& s) { s.src = {"192.168.0.0/16", "10.1.0.5"}; })));
  CHECK_FALSE(match(spec([](auto& s) { s.src = {"203.0.113.0/24"}; })));
  CHECK(match(spec([](auto& s) { s.dst = {"203.0.113.0/24"}; })));
  CHECK(match(spec([](auto& s) { s.ip = {"203.0.113.10"}; })));
  CHECK(match(spec([](auto& s) { s.ip = {"10.1.0.5/32"}; })));
  CHECK_FALSE(match(spec([](auto& s) { s.ip = {"10.2.0.0/16"}; })));
  CHECK_FALSE(match(spec([](auto& s) { s.ip = {"2001:db8::/32"}; })));  // another family never matches
  CHECK(match(spec([](auto& s) { s.port = {443}; })));
  CHECK(match(spec([](auto& s) { s.port = {40000}; })));
  CHECK_FALSE(match(spec([](auto& s) { s.port = {80}; })));
  CHECK(match(spec([](auto& s) {
    s.sport = {40000};
    s.dport = {80, 443};
  })));
  CHECK_FALSE(match(spec([](auto& s) { s.sport = {443}; })));
  CHECK(match(spec([](auto& s) { s.proto = {"tcp"}; })));
  CHECK(match(spec([](auto& s) { s.proto = {"udp", "6"}; })));
  CHECK_FALSE(match(spec([](auto& s) { s.proto = {"udp"}; })));
  CHECK(match(spec([](auto& s) {
    s.link = {"bb"};
    s.rule = {"web"};
  })));
  CHECK_FALSE(match(spec([](auto& s) { s.link = {"mpls"}; })));
  CHECK_FALSE(match(spec([](auto& s) { s.rule = {"web"}; }), {"", ""}));  // a local flow has no rule
  CHECK_FALSE(match(spec([](auto& s) {
    s.src = {"10.1.0.0/16"};
    s.proto = {"udp"};
  })));
  CHECK(match(spec([](auto& s) { s.state = {"established"}; })));
  CHECK(match(spec([](auto& s) {
    s.state = {"syn-sent", "established"};
    s.proto = {"tcp"};
  })));
  CHECK_FALSE(match(spec([](auto& s) { s.state = {"syn-sent", "fin-wait"}; })));
  // The names are the protocol's: a replied UDP flow is not "established".
  CHECK_FALSE(match(spec([](auto& s) { s.state = {"replied"}; })));
  auto u = make_flow("10.1.0.5", "203.0.113.10", 5000, 53, "udp");
  u.flow.state = CLV_CT_ESTABLISHED;
  CHECK(filter(spec([](auto& s) { s.state = {"replied"}; })).matches(u.key, u.flow.state, {}));
  CHECK_FALSE(filter(spec([](auto& s) { s.state = {"established"}; })).matches(u.key, u.flow.state, {}));
  CHECK(filter(spec([](auto& s) { s.state = {"unreplied"}; })).matches(u.key, CLV_CT_NEW, {}));
  auto v6 = make_flow("2001:db8:1::5", "2001:db8:cafe::10", 5000, 53, "udp");
  CHECK(filter(spec([](auto& s) { s.dst = {"2001:db8:cafe::/48"}; })).matches(v6.key, CLV_CT_NEW, {}));
  CHECK_FALSE(filter(spec([](auto& s) { s.dst = {"203.0.113.0/24"}; })).matches(v6.key, CLV_CT_NEW, {}));
}

TEST_CASE("a flow row names, counts and ages a flow; its JSON is the documented object") {
  auto rules = compiled(3);
  const int bb = rules->link_slot("bb");
  std::vector<agent::FlowEntry> flows;
  auto steered = make_flow("10.1.0.5", "203.0.113.10", 40000, 443);
  steered.flow.first_ns = 1'000'000'000;
  steered.flow.last_ns = 3'500'000'000;
  steered.flow.pkts_out = 10;
  steered.flow.rule_id = 0;
  steered.flow.generation = 3;
  steered.flow.link = static_cast<uint8_t>(bb);
  steered.flow.action = CLV_ACT_STEER;
  steered.flow.flags = CLV_FLOW_NAT | CLV_FLOW_MIGRATED;
  steered.flow.state = CLV_CT_FIN_WAIT;
  steered.flow.ct_flags = CLV_CT_ASSURED | CLV_CT_FIN_OUT;
  auto w = core::IpAddr::parse("198.51.100.2")->words();
  std::copy(w.begin(), w.end(), steered.flow.nat_addr);
  steered.flow.nat_port = 40001;
  flows.push_back(steered);
  auto old = steered;  // classified by a rule set the namer does not know
  old.flow.generation = 1;
  old.flow.rule_id = 1;
  flows.push_back(old);
  auto local = make_flow("10.1.0.5", "10.1.0.1", 5000, 22);
  local.flow.flags = CLV_FLOW_LOCAL;
  local.flow.action = CLV_ACT_STEER;
  flows.push_back(local);
  auto bypass = make_flow("2001:db8:1::5", "2001:db8:cafe::10", 5000, 53, "udp");
  bypass.flow.action = CLV_ACT_BYPASS;
  bypass.flow.generation = 3;
  bypass.flow.rule_id = 1;
  bypass.flow.state = CLV_CT_ESTABLISHED;
  bypass.flow.ct_flags = CLV_CT_ASSURED;
  flows.push_back(bypass);

  const core::FlowNaming naming({rules});
  const uint64_t now = 4'000'000'000;
  core::FlowRowText text;
  auto json_by = [&](const agent::FlowEntry& e, const core::FlowNaming& n) {
    return core::flow_json(core::flow_row(n, e.key, e.flow, now, text));
  };
  auto json = [&](const agent::FlowEntry& e) { return json_by(e, naming); };
  auto j = json(steered);
  CAPTURE(j.dump());
  CHECK(j == nlohmann::json::parse(R"({"action": "steer", "age_s": 3.0, "assured": true, "bytes_in": 0,
      "bytes_out": 0, "dport": 443, "dst": "203.0.113.10", "family": "ipv4", "flags": ["nat", "migrated"],
      "generation": 3, "idle_s": 0.5, "link": "bb", "nat": "198.51.100.2:40001", "packets_in": 0,
      "packets_out": 10, "proto": "tcp", "rule": "web", "sport": 40000, "src": "10.1.0.5",
      "state": "fin-wait"})"));
  j = json(local);
  CHECK(j["action"] == "local");
  CHECK(j["rule"].is_null());
  CHECK(j["link"].is_null());
  CHECK(j["flags"] == nlohmann::json::array({"local"}));
  CHECK(j["state"] == "syn-sent");
  CHECK_FALSE(j["assured"]);
  CHECK_FALSE(j.contains("nat"));
  j = json(bypass);
  CHECK(j["family"] == "ipv6");
  CHECK(j["src"] == "2001:db8:1::5");
  CHECK(j["action"] == "bypass");
  CHECK(j["rule"] == "default");
  CHECK(j["link"].is_null());
  CHECK(j["state"] == "replied");
  CHECK(json(old)["rule"] == "#1");
  CHECK(json(old)["link"] == "bb");  // the running set names the slot
  // Knowing the older rule set too, the agent names what --dump cannot.
  const core::FlowNaming both({rules, compiled(1)});
  CHECK(json_by(old, both)["rule"] == "default");
  CHECK(json_by(old, both)["link"] == "bb");
  // The text writer and nlohmann agree byte for byte.
  for (const auto& e : flows) {
    std::string out;
    core::append_flow_json(&out, core::flow_row(naming, e.key, e.flow, now, text), 0);
    CHECK(out == json(e).dump(2));
  }
}

TEST_CASE("a flow whose link slot is past the table is named #SLOT, with or without rule sets") {
  // clovisd --dump indexed link_info[f.link] without this check.
  auto rules = compiled(3);
  auto e = make_flow("10.1.0.5", "203.0.113.10", 40000, 443);
  e.flow.action = CLV_ACT_STEER;
  e.flow.generation = 3;
  e.flow.link = 200;
  core::FlowRowText text;
  for (const auto& sets : {std::vector<core::RulesPtr>{rules}, std::vector<core::RulesPtr>{nullptr, rules},
                           std::vector<core::RulesPtr>{}}) {
    const core::FlowNaming naming(sets);
    CHECK(core::flow_row(naming, e.key, e.flow, 0, text).link == "#200");
  }
}

TEST_CASE("a scan reports flows added, updated and expired") {
  auto rules = compiled();
  const agent::FlowNamer namer({rules});
  auto a = make_flow("10.1.0.5", "203.0.113.10", 40000, 443);
  auto b = make_flow("10.1.0.6", "203.0.113.10", 40001, 443);
  auto c = make_flow("10.1.0.7", "203.0.113.10", 40002, 80, "udp");
  agent::FlowScan scan;
  const FlowFilter all = filter({});
  auto ev = scan.update({a, b}, all, namer);
  REQUIRE(ev.size() == 2);
  CHECK(ev[0].change == agent::FlowChange::kAdded);
  CHECK(scan.update({a, b}, all, namer).empty());  // nothing moved
  b.flow.pkts_out = 5;
  ev = scan.update({b, c}, all, namer);
  REQUIRE(ev.size() == 3);
  CHECK(ev[0].change == agent::FlowChange::kUpdated);
  CHECK(ev[0].entry.key.sport == 40001);
  CHECK(ev[1].change == agent::FlowChange::kAdded);
  CHECK(ev[2].change == agent::FlowChange::kExpired);
  CHECK(ev[2].entry.key.sport == 40000);
  // A filter: only the flows it selects are followed.
  agent::FlowScan tcp;
  CHECK(tcp.update({a, b, c}, filter(spec([](auto& s) { s.proto = {"udp"}; })), namer).size() == 1);
  CHECK(tcp.update({a, b}, filter(spec([](auto& s) { s.proto = {"udp"}; })), namer).size() == 1);  // c expired
  CHECK(tcp.size() == 0);
}

TEST_CASE("a scan fed in batches agrees with a plain map, over many scans") {
  // Random tables: flows come, go and move between scans; each scan arrives
  // in random batches. The events must be exactly what a std::map diff says.
  auto rules = compiled();
  const agent::FlowNamer namer({rules});
  const FlowFilter tcp = filter(spec([](auto& s) { s.proto = {"tcp"}; }));
  std::mt19937_64 rng(0x7363616e);
  using Key = std::pair<uint16_t, uint8_t>;  // sport, proto
  std::map<Key, uint64_t> table;             // -> pkts_out
  std::map<Key, uint64_t> followed;          // the model's view: tcp flows last seen
  agent::FlowScan scan;
  size_t events = 0;
  for (int round = 0; round < 60; ++round) {
    CAPTURE(round);
    // Rounds 0-29 grow the table to a few thousand flows, 30-59 shrink it.
    const size_t adds = round < 30 ? rng() % 400 : rng() % 20, drops = round < 30 ? rng() % 50 : rng() % 800;
    for (size_t i = 0; i < adds; ++i) table[{static_cast<uint16_t>(rng() % 20000), rng() % 3 ? 6 : 17}] = 0;
    for (size_t i = 0; i < drops && !table.empty(); ++i) {
      auto it = table.begin();
      std::advance(it, static_cast<long>(rng() % table.size()));
      table.erase(it);
    }
    for (auto& [k, pkts] : table)
      if (rng() % 10 == 0) ++pkts;
    std::vector<agent::FlowEntry> entries;
    for (const auto& [k, pkts] : table) {
      auto e = make_flow("10.1.0.5", "203.0.113.10", k.first, 443, k.second == 6 ? "tcp" : "udp");
      e.flow.pkts_out = pkts;
      entries.push_back(e);
    }
    std::shuffle(entries.begin(), entries.end(), rng);  // the kernel's order is its own
    std::map<Key, agent::FlowChange> want, got;
    for (const auto& [k, pkts] : table) {
      if (k.second != 6) continue;
      auto it = followed.find(k);
      if (it == followed.end()) want[k] = agent::FlowChange::kAdded;
      else if (it->second != pkts) want[k] = agent::FlowChange::kUpdated;
    }
    for (const auto& [k, pkts] : followed)
      if (!table.count(k)) want[k] = agent::FlowChange::kExpired;
    auto sink = [&](agent::FlowChange c, const agent::FlowEntry& e) {
      CHECK(got.emplace(Key{e.key.sport, e.key.proto}, c).second);  // once per scan
      if (c == agent::FlowChange::kExpired) CHECK(e.flow.pkts_out == followed.at({e.key.sport, e.key.proto}));
      return true;
    };
    scan.begin();
    for (size_t i = 0; i < entries.size();) {
      const size_t n = std::min<size_t>(1 + rng() % 700, entries.size() - i);
      std::vector<clv_flow_key> keys;
      std::vector<clv_flow> vals;
      for (size_t j = i; j < i + n; ++j) keys.push_back(entries[j].key), vals.push_back(entries[j].flow);
      REQUIRE(scan.add(agent::FlowBatch{keys, vals}, tcp, namer, sink));
      i += n;
    }
    REQUIRE(scan.end(sink));
    CHECK(got == want);
    events += got.size();
    followed.clear();
    for (const auto& [k, pkts] : table)
      if (k.second == 6) followed[k] = pkts;
    CHECK(scan.size() == followed.size());
  }
  CHECK(events > 1000);
}

TEST_CASE("a scan stops when its sink says so") {
  auto rules = compiled();
  const agent::FlowNamer namer({rules});
  std::vector<agent::FlowEntry> t;
  for (uint16_t i = 0; i < 10; ++i)
    t.push_back(make_flow("10.1.0.5", "203.0.113.10", static_cast<uint16_t>(1000 + i), 443));
  std::vector<clv_flow_key> keys;
  std::vector<clv_flow> vals;
  for (const auto& e : t) keys.push_back(e.key), vals.push_back(e.flow);
  agent::FlowScan scan;
  int calls = 0;
  scan.begin();
  CHECK_FALSE(
      scan.add(agent::FlowBatch{keys, vals}, filter({}), namer, [&](auto, const auto&) { return ++calls < 3; }));
  CHECK(calls == 3);
}

TEST_CASE("link rates come from the last two samples") {
  agent::LinkSampler s;
  const auto t0 = agent::LinkSampler::Clock::now();
  agent::LinkCounters c{};
  c[2].tx_packets = 100;
  c[2].tx_bytes = 10000;
  s.add(c, t0);
  CHECK(s.rates()[2].tx_pps == 0);  // one sample: no rate yet
  c[2].tx_packets = 300;
  c[2].tx_bytes = 50000;
  c[2].rx_packets = 50;
  s.add(c, t0 + std::chrono::seconds(2));
  auto r = s.rates();
  CHECK(r[2].tx_pps == doctest::Approx(100));
  CHECK(r[2].tx_bps == doctest::Approx(20000));
  CHECK(r[2].rx_pps == doctest::Approx(25));
  c[2] = {};  // maps recreated: counters went back
  s.add(c, t0 + std::chrono::seconds(3));
  CHECK(s.rates()[2].tx_pps == 0);
}
