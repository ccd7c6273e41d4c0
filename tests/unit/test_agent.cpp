// The agent's apply path against fakes of the kernel and the host network:
// what reaches the dataplane, policy routing, rejection without side effects,
// persistence and restore.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include "agent/agent.hpp"
#include "fakes.hpp"
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
    if (on_apply) on_apply();
    applied.push_back(r);
    rules.push_back(*r.rules);
    state = r.state;
    if (ops) ops->push_back("flip " + std::to_string(r.rules->generation));
    return agent::ApplyStats{static_cast<uint32_t>(applied.size() & 1), r.rules->entries.size(), 0, 0.1};
  }
  core::Status set_link_state(const clv_link_state& st) override {
    state = st;
    if (ops) ops->push_back("state");
    return core::Ok{};
  }
  std::vector<std::string>* ops = nullptr;
  std::function<void()> on_apply;  // runs as the kernel write begins
  core::Result<clv_link_state> link_state() override { return state; }
  core::Status scan_flows(const agent::FlowVisitor&, agent::FlowBuffer&) override { return core::Ok{}; }
  core::Result<agent::LinkCounters> link_counters() override { return agent::LinkCounters{}; }
  core::Result<agent::GlobalCounters> counters() override { return agent::GlobalCounters{}; }
  core::Result<agent::LinkDrops> link_drops() override { return agent::LinkDrops{}; }
  core::Result<agent::LinkMigrations> link_migrations() override { return agent::LinkMigrations{}; }
  core::Status set_leave(const std::vector<clv_leave>& l) override {
    leave = l;  // not in ops: the order tests follow the rule writes
    return core::Ok{};
  }
  std::vector<clv_leave> leave;
  core::Result<std::vector<agent::LinkMigrations>> link_moves() override {
    return std::vector<agent::LinkMigrations>(CLV_MOVE_REASONS);
  }
  core::Result<ActiveRules> active_rules() override {
    return ActiveRules{static_cast<uint32_t>(rules.size() & 1), rules.empty() ? 0u : rules.back().generation};
  }
  core::Result<bool> pin_flow(const clv_flow_key&, const clv_flow&) override { return true; }
  core::Result<size_t> expire_flows(uint64_t, const core::FlowTimeouts&) override { return size_t{0}; }
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
  // As the kernel does: a gateway needs an address of its family on an
  // interface that is up ("Nexthop has invalid gateway").
  core::Status install_route_link(const agent::RouteLink& r) override {
    if (fail_routes) return core::fail(core::ErrorCode::kIo, "Network is unreachable", r.interface, 101);
    auto it = std::find_if(ifs.begin(), ifs.end(), [&](const auto& i) { return i.second.ifindex == r.ifindex; });
    if (it == ifs.end() || !it->second.up || (r.gw4 && !it->second.addr4) || (r.gw6 && !it->second.addr6))
      return core::fail(core::ErrorCode::kIo, "Nexthop has invalid gateway", r.interface, 22);
    routes[r.table] = r;
    if (ops) ops->push_back("route " + r.interface);
    return core::Ok{};
  }
  core::Status remove_route_link(const agent::RouteLink& r) override {
    routes.erase(r.table);
    return core::Ok{};
  }
  std::vector<std::string>* ops = nullptr;
  core::Status set_neighbor(const core::IpAddr&, const std::array<uint8_t, 6>&, int) override { return core::Ok{}; }
  core::Result<core::CounterSample> interface_counters(const std::string& name) override {
    return core::fail(core::ErrorCode::kNotFound, "No such device", name, 19);
  }
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
  std::unique_ptr<agent::Agent> make() {
    return std::make_unique<agent::Agent>(agent::AgentOptions{dir, 10000}, dp, host);
  }
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
  CHECK(res.links[lte].ifindex == 0);                                             // wwan0 does not exist (yet)
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

// 64 links on interfaces if0..if63, the one in `swap` named `name`.
std::string full_mapping(int swap = -1, const std::string& name = "") {
  std::string m = "version: 1\nlinks:\n";
  for (int i = 0; i < CLV_MAX_LINKS; ++i)
    m += fmt::format("  - {{name: {}, interface: if{}, gateway: 10.{}.0.1, mode: route}}\n",
                     i == swap ? name : fmt::format("l{}", i), i, i);
  return m + "default: {link: l0}\n";
}

TEST_CASE("a new link takes a slot no link held, and a slot changes hands only after the flip") {
  Env e;
  for (int i = 0; i < CLV_MAX_LINKS; ++i)
    e.host.ifs[fmt::format("if{}", i)] = {100 + i, true, core::IpAddr::parse(fmt::format("10.{}.0.2", i)),
                                          std::nullopt};
  const std::string two = R"(version: 1
links:
  - {name: mpls, interface: if0, gateway: 10.0.0.1, mode: route}
  - {name: bb, interface: if1, gateway: 10.1.0.1, mode: route}
default: {link: mpls}
)";
  const std::string swapped = R"(version: 1
links:
  - {name: mpls, interface: if0, gateway: 10.0.0.1, mode: route}
  - {name: fiber, interface: if2, gateway: 10.2.0.1, mode: route}
default: {link: mpls}
)";
  REQUIRE(e.a->apply(two, "wan.yaml"));
  const int bb = e.dp.rules[0].link_slot("bb");
  REQUIRE(e.a->apply(swapped, "wan.yaml"));
  CHECK(e.dp.rules[1].link_slot("fiber") != bb);  // a slot nobody held
  CHECK(e.dp.applied[1].handover == 0);
  CHECK(e.host.routes.size() == 2);

  // Every slot held: the new link can only take the removed one's.
  REQUIRE(e.a->apply(full_mapping(), "wan.yaml"));
  std::vector<std::string> ops;
  e.dp.ops = &ops;
  e.host.ops = &ops;
  REQUIRE(e.a->apply(full_mapping(5, "fiber"), "wan.yaml"));
  const auto c = e.dp.rules.back();
  const int fiber = c.link_slot("fiber");
  const auto prev = e.dp.rules[e.dp.rules.size() - 2];
  REQUIRE(fiber == prev.link_slot("l5"));
  const auto sent = e.dp.applied.back();
  CHECK(sent.handover == 1ull << fiber);
  // Down while the flip happens (the old rule set knows l5 by that slot),
  // its routing after the flip, then up.
  CHECK_FALSE((sent.state.up >> fiber & 1));
  const auto flip = std::find(ops.begin(), ops.end(), "flip " + std::to_string(c.generation));
  const auto route = std::find(ops.begin(), ops.end(), "route if5");
  REQUIRE(flip != ops.end());
  REQUIRE(route != ops.end());
  CHECK(flip < route);
  CHECK(ops.back() == "state");
  CHECK((e.dp.state.up >> fiber & 1));
  REQUIRE(e.host.routes.count(c.links[fiber].table));
  const auto& rl = e.host.routes.at(c.links[fiber].table);
  CHECK(rl.mark == c.links[fiber].mark);
  CHECK(rl.gw4 == core::IpAddr::parse("10.5.0.1"));
  CHECK(rl.ifindex == 105);
  e.dp.ops = nullptr;
  e.host.ops = nullptr;
}

TEST_CASE("links the host cannot use yet are applied down with their reason, and the others steer") {
  Env e;
  // wan1 exists without an address (DHCP not done), wwan0 does not exist.
  e.host.ifs["wan1"].addr4.reset();
  const char* m = R"(version: 1
links:
  - {name: mpls, interface: wan0, gateway: 192.0.2.1, mode: route}
  - {name: bb, interface: wan1, gateway: 198.51.100.1, mode: redirect}
  - {name: lte, interface: wwan0, gateway: 100.64.0.1, mode: redirect}
default: {policy: any}
policies:
  - {name: any, failover: [bb, mpls, lte]}
)";
  auto r = e.a->apply(m, "wan.yaml");
  REQUIRE(r);
  const auto c = e.dp.rules.back();  // a copy: the fake's list grows with each write below
  const int mpls = c.link_slot("mpls"), bb = c.link_slot("bb"), lte = c.link_slot("lte");
  CHECK(e.dp.state.up == 1ull << mpls);
  REQUIRE(e.host.routes.size() == 1);
  CHECK(e.host.routes.count(c.links[mpls].table));
  auto links = e.a->links();
  REQUIRE(links);
  std::map<std::string, std::string> reason;
  for (const auto& l : *links) reason[l.name] = l.host_reason;
  CHECK(reason["mpls"] == "");
  CHECK(reason["bb"] == "interface wan1 has no IPv4 address");
  CHECK(reason["lte"] == "interface wwan0 does not exist");

  // DHCP answers: routing goes in, the link is up; same generation, no
  // history entry, an event with the reason.
  e.host.ifs["wan1"].addr4 = core::IpAddr::parse("198.51.100.2");
  REQUIRE(e.a->refresh_link_state());
  CHECK((e.dp.state.up >> bb & 1));
  CHECK(e.host.routes.count(c.links[bb].table));
  CHECK(e.a->generation() == 1);
  CHECK(e.a->history().size() == 1);
  REQUIRE_FALSE(e.a->events().empty());
  CHECK(e.a->events().back().link == "bb");
  CHECK(e.a->events().back().to == agent::LinkState::kUp);

  // The modem attaches: the interface appears (an index of its own).
  e.host.ifs["wwan0"] = {9, true, core::IpAddr::parse("100.64.0.2"), std::nullopt};
  REQUIRE(e.a->refresh_link_state());
  CHECK((e.dp.state.up >> lte & 1));
  CHECK(e.dp.applied.back().links[lte].ifindex == 9);
  CHECK(e.dp.applied.back().rules->generation == 1);
  CHECK(e.a->history().size() == 1);

  // Deleted and re-created with another index: followed, still generation 1.
  e.host.ifs["wwan0"].ifindex = 12;
  REQUIRE(e.a->refresh_link_state());
  CHECK(e.dp.applied.back().links[lte].ifindex == 12);
  CHECK(e.host.routes.at(c.links[lte].table).ifindex == 12);
  CHECK(e.a->generation() == 1);

  // The address goes away again: down with the reason, routing claim given up.
  e.host.ifs["wan1"].addr4.reset();
  REQUIRE(e.a->refresh_link_state());
  CHECK_FALSE((e.dp.state.up >> bb & 1));
  CHECK(e.a->events().back().reason == "interface wan1 has no IPv4 address");
  // A gateway the kernel refuses downs that link only.
  e.host.ifs["wan1"].addr4 = core::IpAddr::parse("198.51.100.2");
  e.host.fail_routes = true;
  REQUIRE(e.a->refresh_link_state());
  CHECK_FALSE((e.dp.state.up >> bb & 1));
  CHECK((e.dp.state.up >> mpls & 1));
  e.host.fail_routes = false;
  REQUIRE(e.a->refresh_link_state());
  CHECK((e.dp.state.up >> bb & 1));
}

TEST_CASE("a restarted agent restores the last mapping with the same slots") {
  Env e;
  REQUIRE(e.a->apply(kMapping, "wan.yaml"));
  const auto first = e.dp.rules[0];
  auto restarted = e.make();
  auto r = restarted->restore();
  REQUIRE(r);
  REQUIRE(r->has_value());
  CHECK((*r)->generation == 1);  // the generation it was: its history entry stays the running one
  CHECK(restarted->history().size() == 1);
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
  agent::LinkChange ev{1,
                       bb,
                       "bb",
                       agent::LinkState::kUp,
                       agent::LinkState::kDown,
                       "3 probe rounds failed",
                       agent::LinkChange::Source::kHealth,
                       agent::Quality{0, 0, 100, true},
                       {}};
  REQUIRE(e.a->set_health(test::verdicts(all & ~(1ull << bb), 1ull << mpls, all), &ev));
  CHECK_FALSE((e.dp.state.up >> bb & 1));
  CHECK((e.dp.state.degraded >> mpls & 1));
  REQUIRE(e.a->events().size() == 1);
  CHECK(e.a->events()[0].reason == "3 probe rounds failed");
  auto views = e.a->links();  // with the verdicts they were given
  REQUIRE(views);
  for (const auto& v : *views) {
    REQUIRE(v.verdict);
    CHECK(v.verdict->slot == v.slot);
    CHECK(v.verdict->state == (v.slot == bb     ? agent::LinkState::kDown
                               : v.slot == mpls ? agent::LinkState::kDegraded
                                                : agent::LinkState::kUp));
  }
  e.host.ifs["wan0"].up = false;
  e.host.ifs["wwan0"] = {9, true, core::IpAddr::parse("100.64.0.2"), std::nullopt};
  REQUIRE(e.a->refresh_link_state());
  CHECK_FALSE((e.dp.state.up >> mpls & 1));  // carrier gone
  CHECK((e.dp.state.up >> lte & 1));         // interface appeared: re-applied
  CHECK((e.dp.state.degraded >> mpls & 1));
  CHECK_FALSE((e.dp.state.up >> bb & 1));  // still down by its probes
  REQUIRE(e.a->set_health(test::verdicts(all, 0, all), nullptr));
  CHECK((e.dp.state.up >> bb & 1));
  CHECK_FALSE((e.dp.state.up >> mpls & 1));  // health cannot bring up a link without carrier
}

namespace {

void write(const std::string& path, const std::string& body) {
  std::ofstream(path, std::ios::trunc) << body;
}

size_t set_aside_count(const std::string& dir, const std::string& name) {
  size_t n = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir))
    if (f.path().filename().string().rfind(name + ".corrupt-", 0) == 0) ++n;
  return n;
}

}  // namespace

TEST_CASE("corrupt or type-confused state files are set aside, and the agent carries on") {
  Env e;
  REQUIRE(e.a->apply(kMapping, "wan.yaml"));
  REQUIRE(e.a->submit(kMapping, "again", agent::ApplyOptions{false, 60}));
  write(e.dir + "/state.json", R"({"links": {"a": 1}})");  // once: fatal: [json.exception.type_error.306]
  write(e.dir + "/history.json", R"([{"generation": "two"}])");
  write(e.dir + "/confirm.json", R"({"deadline_unix_ms": "soon", "fallback_text": 7})");
  auto restarted = e.make();
  CHECK(restarted->confirm_deadline_unix_ms() == 0);
  CHECK(restarted->history().empty());
  auto r = restarted->restore();
  REQUIRE(r);
  REQUIRE(r->has_value());
  CHECK(set_aside_count(e.dir, "state.json") == 1);
  CHECK(set_aside_count(e.dir, "history.json") == 1);
  CHECK(set_aside_count(e.dir, "confirm.json") == 1);
  CHECK(restarted->history().size() == 1);  // what this run applied
  // The files it writes now are whole again.
  auto again = e.make()->restore();
  REQUIRE(again);
  REQUIRE(again->has_value());
  CHECK(set_aside_count(e.dir, "state.json") == 1);

  // A persisted mapping this clovisd rejects: set aside, no mapping (the
  // daemon then starts from its config file).
  write(e.dir + "/mapping.yaml", "version: 1\nlinks: [\n");
  auto broken = e.make()->restore();
  REQUIRE(broken);
  CHECK_FALSE(broken->has_value());
  CHECK(set_aside_count(e.dir, "mapping.yaml") == 1);
}

TEST_CASE("an unconfirmed mapping is on disk with its deadline before the kernel runs it") {
  Env e;
  REQUIRE(e.a->apply(kMapping, "wan.yaml"));
  const std::string next = std::string(kMapping) + "# next\n";
  bool checked = false;
  e.dp.on_apply = [&] {
    auto p = agent::load_pending_confirm(e.dir);
    REQUIRE(p);
    CHECK(p->generation == 2);
    CHECK(p->fallback_generation == 1);
    CHECK(p->fallback_text == kMapping);
    CHECK(p->deadline_unix_ms > agent::now_unix_ms());
    CHECK(core::read_file(e.dir + "/mapping.yaml").value() == next);
    checked = true;
  };
  REQUIRE(e.a->submit(next, "api", agent::ApplyOptions{false, 30}));
  CHECK(checked);
  e.dp.on_apply = nullptr;
  // Killed now, the restarted agent still reverts at the deadline.
  auto restarted = e.make();
  REQUIRE(restarted->restore());
  const int64_t deadline = restarted->confirm_deadline_unix_ms();
  CHECK(deadline > 0);
  auto reverted = restarted->check_confirm(deadline + 1);
  REQUIRE(reverted);
  REQUIRE(*reverted);
  CHECK(restarted->running_mapping().text == kMapping);
}

TEST_CASE("a full disk refuses the apply plainly and changes nothing") {
  Env e;
  REQUIRE(e.a->apply(kMapping, "wan.yaml"));
  const auto applies = e.dp.applied.size();
  // /dev/full answers every write with ENOSPC, as a full state partition does.
  std::filesystem::create_symlink("/dev/full", e.dir + "/mapping.yaml.tmp");
  auto r = e.a->submit(std::string(kMapping) + "# bigger\n", "api", {});
  REQUIRE_FALSE(r);
  CHECK(r.error().kind == agent::ApplyFailure::kHost);
  CHECK(r.error().message().find("No space left on device") != std::string::npos);
  CHECK(r.error().message().find("nothing was applied") != std::string::npos);
  CHECK(e.dp.applied.size() == applies);
  CHECK(e.a->generation() == 1);
  CHECK(core::read_file(e.dir + "/mapping.yaml").value() == kMapping);
  // Confirm-applies too: the deadline can't be saved, so nothing runs.
  std::filesystem::create_symlink("/dev/full", e.dir + "/confirm.json.tmp");
  auto c = e.a->submit(std::string(kMapping) + "# bigger\n", "api", agent::ApplyOptions{false, 30});
  REQUIRE_FALSE(c);
  CHECK(c.error().message().find("confirmation deadline") != std::string::npos);
  CHECK(e.dp.applied.size() == applies);
  CHECK(e.a->confirm_deadline_unix_ms() == 0);
}

TEST_CASE("the agent's link changes: the newest 256, numbered, and a reader waits for the next") {
  agent::LinkChanges q;
  uint64_t seq = 1;
  CHECK(q.list(&seq).empty());
  CHECK(seq == 0);
  for (int i = 0; i < 300; ++i) {
    agent::LinkChange c;
    c.time_unix_ms = i;
    q.push(c);
  }
  auto all = q.list(&seq);
  CHECK(seq == 300);
  REQUIRE(all.size() == agent::LinkChanges::kMax);
  CHECK(all.front().time_unix_ms == 300 - static_cast<int64_t>(agent::LinkChanges::kMax));  // the oldest went
  CHECK(all.back().time_unix_ms == 299);
  CHECK_FALSE(q.wait(seq, std::chrono::milliseconds(10)));  // nothing newer
  CHECK(q.wait(seq - 1, std::chrono::milliseconds(0)));     // newer than that: at once
}

namespace {

// A mapping whose only link's interface does not exist: applied, it leaves
// the host no usable link.
const char* kNoLinkMapping = R"(version: 1
auto-rollback: {after: 5s}
links:
  - {name: gone, interface: nosuch0, gateway: 192.0.2.1, mode: route}
default: {link: gone}
)";

}  // namespace

TEST_CASE("auto-rollback: a mapping that leaves no usable link for its 'after' is rolled back to the one before") {
  Env e;
  REQUIRE(e.a->apply(kMapping, "wan.yaml"));
  REQUIRE(e.dp.state.up != 0);
  auto r = e.a->submit(kNoLinkMapping, "/etc/clovis/wan.yaml", {});
  REQUIRE(r);
  CHECK(e.dp.state.up == 0);
  CHECK(e.a->auto_rollback_after_ms() == 5000);
  CHECK(e.a->confirm_deadline_unix_ms() == 0);  // no operator's deadline
  const int64_t t0 = agent::now_unix_ms();
  CHECK_FALSE(e.a->check_confirm(t0 + 4000));  // not yet: 4 s without a link
  auto rolled = e.a->check_confirm(t0 + 5500);
  REQUIRE(rolled);
  REQUIRE(*rolled);
  CHECK(e.a->running_mapping().text == kMapping);
  CHECK(e.a->running_mapping().source.starts_with("rollback to generation 1 (wan.yaml): auto-rollback: generation 2"));
  CHECK(e.a->generation() == 3);
  CHECK(e.a->auto_rolled_back() == 2);
  CHECK(e.dp.state.up != 0);
  CHECK(e.a->auto_rollback_after_ms() == 0);
  auto events = e.a->events();
  REQUIRE_FALSE(events.empty());
  CHECK(events.back().source == agent::LinkChange::Source::kConfig);
  CHECK(events.back().what == "rolled back");
  CHECK(events.back().reason.find("no usable link for 5 s") != std::string::npos);
  // The rolled-back-to mapping is not guarded again, and nothing more happens.
  CHECK_FALSE(e.a->check_confirm(t0 + 60000));
}

TEST_CASE("auto-rollback: a usable link for 'after' keeps the mapping and ends the guard; none before: not armed") {
  Env e;
  // The first mapping: nothing to roll back to.
  auto first = e.a->submit(std::string(kMapping) + "auto-rollback: {after: 2s}\n", "wan.yaml", {});
  REQUIRE(first);
  CHECK(e.a->auto_rollback_after_ms() == 0);
  CHECK(first->report.notes.back().find("none to roll back to") != std::string::npos);
  auto second = e.a->submit(std::string(kMapping) + "auto-rollback: {after: 2s}\n# 2\n", "wan.yaml", {});
  REQUIRE(second);
  CHECK(e.a->auto_rollback_after_ms() == 2000);
  const int64_t t0 = agent::now_unix_ms();
  CHECK_FALSE(e.a->check_confirm(t0 + 2500));  // a link was usable for 2 s: kept
  CHECK(e.a->auto_rollback_after_ms() == 0);
  CHECK(e.a->generation() == 2);
  CHECK(e.a->events().back().what == "kept");
  // Every link lost later (an outage, not the mapping): no rollback.
  e.dp.state.up = 0;
  CHECK_FALSE(e.a->check_confirm(t0 + 60000));
  CHECK(e.a->generation() == 2);
}

TEST_CASE("auto-rollback: the guard survives a restart, and is not armed when the mapping before had no link either") {
  Env e;
  REQUIRE(e.a->apply(kMapping, "wan.yaml"));
  REQUIRE(e.a->submit(kNoLinkMapping, "file", {}));
  auto restarted = e.make();
  REQUIRE(restarted->restore());
  CHECK(restarted->auto_rollback_after_ms() == 5000);
  const int64_t t0 = agent::now_unix_ms();
  CHECK_FALSE(restarted->check_confirm(t0));  // its clock starts again
  auto rolled = restarted->check_confirm(t0 + 5000);
  REQUIRE(rolled);
  CHECK(restarted->running_mapping().text == kMapping);

  Env none;
  REQUIRE(none.a->apply(kNoLinkMapping, "file"));  // no link usable
  auto again = none.a->submit(std::string(kNoLinkMapping) + "# again\n", "file", {});
  REQUIRE(again);
  CHECK(none.a->auto_rollback_after_ms() == 0);
  CHECK(again->report.notes.back().find("no link was usable under generation 1 either") != std::string::npos);
}

TEST_CASE("the apply hook is told what started each apply (clovis_applies_total counts by it)") {
  Env e;
  std::vector<std::tuple<agent::ApplyCause, std::string, bool>> seen;
  e.a->set_apply_hook([&](agent::ApplyCause cause, const std::string& source, const agent::ApplyResult& r,
                          const core::CompiledRules*) { seen.emplace_back(cause, source, r.ok()); });
  using C = agent::ApplyCause;
  REQUIRE(e.a->submit(kMapping, "wan.yaml", {}));
  REQUIRE_FALSE(e.a->submit("version: 1\nlinks: []\n", "api", {}));
  REQUIRE(e.a->submit(std::string(kMapping) + "# 2\n", "api", agent::ApplyOptions{false, 30}));
  REQUIRE(e.a->check_confirm(e.a->confirm_deadline_unix_ms() + 1));
  REQUIRE(e.a->rollback(2, false, 0));
  e.host.ifs["wan0"].ifindex = 40;  // re-created with another index
  REQUIRE(e.a->refresh_link_state(true));
  e.a->set_apply_hook({});
  REQUIRE(seen.size() == 6);
  CHECK(seen[0] == std::tuple{C::kSubmit, std::string("wan.yaml"), true});
  CHECK(seen[1] == std::tuple{C::kSubmit, std::string("api"), false});
  CHECK(seen[2] == std::tuple{C::kSubmit, std::string("api"), true});
  CHECK(std::get<0>(seen[3]) == C::kRevert);
  CHECK(std::get<1>(seen[3]).starts_with("revert to generation 1"));
  CHECK(std::get<0>(seen[4]) == C::kRollback);
  CHECK(std::get<1>(seen[4]).starts_with("rollback to generation 2 (api)"));
  CHECK(seen[5] == std::tuple{C::kReapply, std::string("interface change"), true});
}
