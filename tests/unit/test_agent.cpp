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
#include "agent_env.hpp"
#include "fakes.hpp"
#include "helpers.hpp"

using namespace clovis;

using namespace clovis::test::agent_env;

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
