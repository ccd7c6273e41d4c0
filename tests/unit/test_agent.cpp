// The agent's apply path against fakes of the kernel and the host network:
// what reaches the dataplane, policy routing, rejection without side effects,
// persistence and restore.
#include <filesystem>
#include <map>

#include <doctest/doctest.h>

#include "agent.hpp"
#include "helpers.hpp"

using namespace clovis;

namespace {

class FakeDataplane : public agent::Dataplane {
 public:
  std::vector<agent::ResolvedRules> applied;
  std::vector<core::CompiledRules> rules;  // copies: ResolvedRules points into the agent
  clv_link_state state{};
  bool fail_next = false;

  core::Result<agent::ApplyStats> apply(const agent::ResolvedRules& r) override {
    if (fail_next) {
      fail_next = false;
      return core::fail(core::ErrorCode::kIo, "map update failed", "clv_rules", 12);
    }
    applied.push_back(r);
    rules.push_back(*r.rules);
    state = r.state;
    return agent::ApplyStats{static_cast<uint32_t>(applied.size() & 1), r.rules->entries.size(), 0, 0.1};
  }
  core::Status set_link_state(const clv_link_state& st) override {
    state = st;
    return core::Ok{};
  }
  core::Result<clv_link_state> link_state() override { return state; }
  core::Status scan_flows(const agent::FlowVisitor&, agent::FlowBuffer&) override { return core::Ok{}; }
  core::Result<agent::LinkCounters> link_counters() override { return agent::LinkCounters{}; }
  core::Result<agent::GlobalCounters> counters() override { return agent::GlobalCounters{}; }
  core::Result<ActiveRules> active_rules() override {
    return ActiveRules{static_cast<uint32_t>(rules.size() & 1), rules.empty() ? 0u : rules.back().generation};
  }
  core::Result<bool> pin_flow(const clv_flow_key&, const clv_flow&) override { return true; }
  core::Result<size_t> expire_flows(uint64_t, uint64_t) override { return size_t{0}; }
};

class FakeHost : public agent::HostNetwork {
 public:
  std::map<std::string, agent::InterfaceState> ifs;
  std::map<uint32_t, agent::RouteLink> routes;  // by table
  bool fail_routes = false;

  core::Result<agent::InterfaceState> interface(const std::string& name) override {
    auto it = ifs.find(name);
    if (it == ifs.end()) return core::fail(core::ErrorCode::kNotFound, "No such device", name, 19);
    return it->second;
  }
  core::Status install_route_link(const agent::RouteLink& r) override {
    if (fail_routes) return core::fail(core::ErrorCode::kIo, "Network is unreachable", r.interface, 101);
    routes[r.table] = r;
    return core::Ok{};
  }
  core::Status remove_route_link(const agent::RouteLink& r) override {
    routes.erase(r.table);
    return core::Ok{};
  }
  core::Status set_neighbor(const core::IpAddr&, const std::array<uint8_t, 6>&, int) override { return core::Ok{}; }
};

const char* kMapping = R"(version: 1
links:
  - {name: mpls, interface: wan0, gateway: 192.0.2.1, mode: route}
  - {name: bb, interface: wan1, gateway: 198.51.100.1, mode: redirect, snat: masquerade}
  - {name: lte, interface: wwan0, gateway: 100.64.0.1, mode: redirect}
rules:
  - {name: r1, priority: 1, match: {proto: tcp, dport: 443}, link: bb}
default: {link: mpls}
)";

struct Env {
  std::string dir = "/tmp/clovis-unit-agent-" + std::to_string(::getpid());
  FakeDataplane dp;
  FakeHost host;
  std::unique_ptr<agent::Agent> a;
  Env() {
    std::filesystem::remove_all(dir);
    host.ifs["wan0"] = {4, true, core::IpAddr::parse("192.0.2.2"), std::nullopt};
    host.ifs["wan1"] = {5, true, core::IpAddr::parse("198.51.100.2"), std::nullopt};
    a = make();
  }
  ~Env() { std::filesystem::remove_all(dir); }
  std::unique_ptr<agent::Agent> make() { return std::make_unique<agent::Agent>(agent::AgentOptions{dir, 10000}, dp, host); }
};

}  // namespace

TEST_CASE("apply resolves what only the host knows and programs policy routing") {
  Env e;
  auto r = e.a->apply(kMapping, "wan.yaml");
  REQUIRE(r);
  CHECK(r->generation == 1);
  REQUIRE(e.dp.applied.size() == 1);
  const auto& res = e.dp.applied[0];
  const auto& c = e.dp.rules[0];
  const int mpls = c.link_slot("mpls"), bb = c.link_slot("bb"), lte = c.link_slot("lte");
  CHECK(res.links[mpls].ifindex == 4);
  CHECK(res.links[bb].ifindex == 5);
  CHECK(res.links[bb].snat4 == core::IpAddr::parse("198.51.100.2")->words()[0]);  // masquerade
  CHECK(res.links[lte].ifindex == 0);  // wwan0 does not exist (yet)
  CHECK((res.state.up >> mpls & 1));
  CHECK((res.state.up >> bb & 1));
  CHECK_FALSE((res.state.up >> lte & 1));
  REQUIRE(r->notes.size() == 1);
  CHECK(r->notes[0].find("interface wwan0 does not exist") != std::string::npos);
  // Every link with an interface gets its table and fwmark rule (route mode
  // steers data by it; probes and marked sockets use it for every link).
  REQUIRE(e.host.routes.size() == 2);
  REQUIRE(e.host.routes.count(c.links[mpls].table));
  CHECK(e.host.routes.count(c.links[bb].table));
  const auto& rl = e.host.routes.at(c.links[mpls].table);
  CHECK(rl.ifindex == 4);
  CHECK(rl.mark == c.links[mpls].mark);
  CHECK(rl.pref == 10000u + static_cast<uint32_t>(mpls));
  CHECK(rl.gw4 == core::IpAddr::parse("192.0.2.1"));
  CHECK(std::filesystem::exists(e.dir + "/mapping.yaml"));
  CHECK(std::filesystem::exists(e.dir + "/state.json"));
}

TEST_CASE("a rejected mapping changes nothing") {
  Env e;
  REQUIRE(e.a->apply(kMapping, "wan.yaml"));
  const auto routes = e.host.routes.size();
  auto bad = e.a->apply(std::string(kMapping) + "bogus: 1\n", "wan.yaml");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().items()[0].message == "unknown key 'bogus'");
  CHECK(e.dp.applied.size() == 1);
  CHECK(e.host.routes.size() == routes);
  CHECK(e.a->generation() == 1);
  CHECK(core::read_file(e.dir + "/mapping.yaml").value() == kMapping);
  // A kernel failure: same, and the error says the running set is unchanged.
  e.dp.fail_next = true;
  auto k = e.a->apply(kMapping, "wan.yaml");
  REQUIRE_FALSE(k);
  CHECK(k.error().items()[0].hint == "the running rule set is unchanged");
  CHECK(e.a->generation() == 1);
  // Policy routing failure: nothing reaches the kernel.
  e.host.fail_routes = true;
  auto rt = e.a->apply(kMapping, "wan.yaml");
  REQUIRE_FALSE(rt);
  CHECK(rt.error().items()[0].message.find("policy routing for wan0") != std::string::npos);
  CHECK(e.dp.applied.size() == 1);
}

TEST_CASE("re-apply keeps link slots, and removed route links lose their tables") {
  Env e;
  REQUIRE(e.a->apply(kMapping, "wan.yaml"));
  const int bb = e.dp.rules[0].link_slot("bb");
  const std::string without_mpls = R"(version: 1
links:
  - {name: bb, interface: wan1, gateway: 198.51.100.1, mode: redirect, snat: masquerade}
default: {link: bb}
)";
  auto r = e.a->apply(without_mpls, "wan.yaml");
  REQUIRE(r);
  CHECK(r->generation == 2);
  CHECK(e.dp.rules[1].link_slot("bb") == bb);
  CHECK(e.dp.rules[1].links[bb].epoch == e.dp.rules[0].links[bb].epoch);
  REQUIRE(e.host.routes.size() == 1);  // mpls's table and rule are gone, bb's stay
  CHECK(e.host.routes.begin()->first == e.dp.rules[1].links[bb].table);
}

TEST_CASE("a new link that takes a removed link's slot in the same apply keeps its policy routing") {
  Env e;
  const std::string two = R"(version: 1
links:
  - {name: mpls, interface: wan0, gateway: 192.0.2.1, mode: route}
  - {name: bb, interface: wan1, gateway: 198.51.100.1, mode: route}
default: {link: mpls}
)";
  const std::string swapped = R"(version: 1
links:
  - {name: mpls, interface: wan0, gateway: 192.0.2.1, mode: route}
  - {name: fiber, interface: wan1, gateway: 198.51.100.9, mode: route}
default: {link: mpls}
)";
  REQUIRE(e.a->apply(two, "wan.yaml"));
  const int bb = e.dp.rules[0].link_slot("bb");
  REQUIRE(e.a->apply(swapped, "wan.yaml"));
  const auto& c = e.dp.rules[1];
  const int fiber = c.link_slot("fiber");
  REQUIRE(fiber == bb);  // the case at hand: same slot, so same mark, table and rule preference
  REQUIRE(e.host.routes.size() == 2);
  REQUIRE(e.host.routes.count(c.links[fiber].table));
  const auto& rl = e.host.routes.at(c.links[fiber].table);
  CHECK(rl.mark == c.links[fiber].mark);
  CHECK(rl.gw4 == core::IpAddr::parse("198.51.100.9"));  // the new link's, not bb's
}

TEST_CASE("a restarted agent restores the last mapping with the same slots") {
  Env e;
  REQUIRE(e.a->apply(kMapping, "wan.yaml"));
  const auto first = e.dp.rules[0];
  auto restarted = e.make();
  auto r = restarted->restore();
  REQUIRE(r);
  REQUIRE(r->has_value());
  CHECK((*r)->generation == 2);
  const auto& again = e.dp.rules.back();
  for (const char* l : {"mpls", "bb", "lte"}) {
    CHECK(again.link_slot(l) == first.link_slot(l));
    CHECK(again.links[again.link_slot(l)].epoch == first.links[first.link_slot(l)].epoch);
  }
  auto empty = Env().make()->restore();  // nothing persisted: nothing to do
  REQUIRE(empty);
  CHECK_FALSE(empty->has_value());
}

TEST_CASE("link state follows the interfaces, and the health checker's verdicts hold") {
  Env e;
  REQUIRE(e.a->apply(kMapping, "wan.yaml"));
  const int mpls = e.dp.rules[0].link_slot("mpls"), lte = e.dp.rules[0].link_slot("lte"),
            bb = e.dp.rules[0].link_slot("bb");
  // The checker: mpls degraded, bb down (probes failing with carrier up).
  const uint64_t all = (1ull << mpls) | (1ull << lte) | (1ull << bb);
  agent::LinkEvent ev{1, "bb", "up", "down", "3 probe rounds failed", 0, 0, 100};
  REQUIRE(e.a->set_health(all & ~(1ull << bb), 1ull << mpls, all, &ev));
  CHECK_FALSE((e.dp.state.up >> bb & 1));
  CHECK((e.dp.state.degraded >> mpls & 1));
  REQUIRE(e.a->events().size() == 1);
  CHECK(e.a->events()[0].reason == "3 probe rounds failed");
  e.host.ifs["wan0"].up = false;
  e.host.ifs["wwan0"] = {9, true, core::IpAddr::parse("100.64.0.2"), std::nullopt};
  REQUIRE(e.a->refresh_link_state());
  CHECK_FALSE((e.dp.state.up >> mpls & 1));  // carrier gone
  CHECK((e.dp.state.up >> lte & 1));          // interface appeared: re-applied
  CHECK((e.dp.state.degraded >> mpls & 1));
  CHECK_FALSE((e.dp.state.up >> bb & 1));     // still down by its probes
  REQUIRE(e.a->set_health(all, 0, all, nullptr));
  CHECK((e.dp.state.up >> bb & 1));
  CHECK_FALSE((e.dp.state.up >> mpls & 1));  // health cannot bring up a link without carrier
}
