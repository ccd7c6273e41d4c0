// Live flows and link quality (#17 items 2 and 3): which links a policy's
// pinned flows must leave (core/sla_moves.hpp) as SLA standing, hold-down,
// hysteresis, return-after and force decide; the mapping keys and their
// errors; and the agent programming those decisions (Dataplane::set_leave).
#include <doctest/doctest.h>
#include <fmt/format.h>

#include "agent/agent.hpp"
#include "core/sla_moves.hpp"
#include "fakes.hpp"
#include "helpers.hpp"

using namespace clovis;
using test::check;
using test::has;

namespace {

// fiber (tier 1) and cable (tier 2) for voice (SLA voice); bulk on both
// without an SLA. @VOICE@ takes voice's extra keys.
const char* kMovesMapping = R"(version: 1
sla:
  voice: {latency: 150ms, loss: 1%}
links:
  - name: fiber
    interface: wan0
    gateway: 192.0.2.1
    health: {probes: [{icmp: 192.0.2.1}]}
  - name: cable
    interface: wan1
    gateway: 198.51.100.1
    masquerade: true
    health: {probes: [{icmp: 198.51.100.1}]}
policies:
  - name: voice
    failover: [fiber, cable]
    sla: voice
@VOICE@
  - name: bulk
    failover: [fiber, cable]
rules:
  - {name: bulk, priority: 10, match: {dport: 873, proto: tcp}, policy: bulk}
default: {policy: voice}
)";

core::CompiledRules compiled(const std::string& voice_keys) {
  std::string m = kMovesMapping;
  m.replace(m.find("@VOICE@"), 7, voice_keys);
  auto c = check(m);
  INFO(test::dump(c));
  REQUIRE(c.ok());
  return *c.compiled;
}

// A clock in ms and the qualities of both links, evaluated step by step.
struct Site {
  core::CompiledRules c;
  core::SlaMoves moves;
  core::LinkQualities q{};
  uint64_t up = 0, now = 1000;
  core::MoveDecision last;
  explicit Site(const std::string& voice_keys) : c(compiled(voice_keys)) {
    up = bit("fiber") | bit("cable");
    latency("fiber", 20);
    latency("cable", 40);
  }
  uint64_t bit(const std::string& link) const { return 1ull << c.link_slot(link); }
  void latency(const std::string& link, double ms) { q[static_cast<size_t>(c.link_slot(link))] = {ms, 1, 0, true}; }
  // Evaluates `ms` later; the voice policy's leave masks.
  core::MoveDecision& at(uint64_t ms) {
    now += ms;
    last = moves.evaluate(c, q, up, now);
    return last;
  }
  uint64_t leave(int reason, const std::string& policy = "voice") const {
    return last.leave.at(static_cast<size_t>(c.policy_index(policy))).links[reason];
  }
  uint64_t force(const std::string& policy = "voice") const {
    return last.leave.at(static_cast<size_t>(c.policy_index(policy))).force;
  }
};

}  // namespace

TEST_CASE("sla moves: policy keys, their defaults and errors") {
  auto c = compiled("    on-sla-violation: force\n    hold-down: 10s\n    on-link-up: return\n    return-after: 2m\n");
  CHECK(c.policy_sla[0].on_violation == core::OnSlaViolation::kForce);
  CHECK(c.policy_sla[0].hold_down_ms == 10000u);
  CHECK(c.policy_sla[0].on_up == core::OnLinkUp::kReturn);
  CHECK(c.policy_sla[0].return_after_ms == 120000u);
  // Defaults: SLA flows migrate (only those keeping their addresses: see
  // clovis-wan.yaml(5)), 30 s hold-down; failback stays, as before.
  CHECK(c.policy_sla[1].on_violation == core::OnSlaViolation::kMigrate);
  CHECK(c.policy_sla[1].hold_down_ms == 30000u);
  CHECK(c.policy_sla[1].on_up == core::OnLinkUp::kStay);
  CHECK((c.links[static_cast<size_t>(c.link_slot("cable"))].flags & CLV_LINK_MASQ) != 0);
  CHECK((c.links[static_cast<size_t>(c.link_slot("fiber"))].flags & CLV_LINK_MASQ) == 0);

  std::string m = kMovesMapping;
  m.replace(m.find("@VOICE@"), 7, "    on-sla-violaton: keep\n    on-link-up: back\n    return-after: soon\n");
  auto bad = check(m);
  INFO(test::dump(bad));
  CHECK_FALSE(bad.ok());
  CHECK(has(bad, 18, "on-sla-violation"));  // did you mean, at its line
  CHECK(has(bad, 19, "back"));
  CHECK(has(bad, 20, "'soon' is not a duration"));
}

TEST_CASE("sla moves: masquerade belongs to route mode; on-sla-violation without sla: is a warning") {
  std::string m = kMovesMapping;
  m.replace(m.find("@VOICE@"), 7, "");
  m.replace(m.find("    failover: [fiber, cable]\nrules"), 0, "    on-sla-violation: keep\n");
  auto w = check(m);
  REQUIRE(w.ok());
  CHECK(has(w, 0, "says what its flows do on an SLA violation but has no sla:", core::Severity::kWarning));
  m.replace(m.find("    masquerade: true"), 0, "    mode: redirect\n    gateway-mac: aa:bb:cc:dd:ee:ff\n");
  auto e = check(m);
  CHECK_FALSE(e.ok());
  CHECK(has(e, 0, "masquerade: says the host masquerades on a route-mode link"));
}

TEST_CASE("sla moves: a link out of SLA is left by the SLA policy's flows, with the reason; bulk stays") {
  Site s("    hold-down: 30s\n");
  CHECK(s.at(100).changed);  // the first decision is written: it clears an earlier clovisd's
  CHECK_FALSE(s.at(100).changed);
  CHECK(s.leave(CLV_MOVE_SLA) == 0);
  s.latency("fiber", 182);
  auto& d = s.at(100);
  CHECK(d.changed);
  CHECK(s.leave(CLV_MOVE_SLA) == s.bit("fiber"));
  CHECK(s.leave(CLV_MOVE_SLA, "bulk") == 0);  // no SLA: its flows stay
  CHECK(s.force() == 0);                      // migrate: translated flows stay
  REQUIRE(d.events.size() == 1);
  CHECK(d.events[0].policy == "voice");
  CHECK(d.events[0].leave);
  CHECK(d.events[0].why == "latency 182 ms > voice 150 ms");
  CHECK(s.moves.decisions(static_cast<size_t>(s.c.policy_index("voice")))[CLV_MOVE_SLA] == 1);
  CHECK(s.last.leave[0].generation == s.c.generation);
  // Nowhere better to go (cable out too): flows stay where they are.
  s.latency("cable", 400);
  s.at(100);
  CHECK(s.leave(CLV_MOVE_SLA) == 0);
}

TEST_CASE("sla moves: hysteresis: back in SLA only 10% under the limit") {
  Site s("");
  s.latency("fiber", 160);
  s.at(100);
  CHECK(s.leave(CLV_MOVE_SLA) == s.bit("fiber"));
  s.latency("fiber", 140);  // under 150 ms but not under 135 ms: still out
  auto& d = s.at(100);
  CHECK_FALSE(d.changed);
  CHECK(s.moves.out_of_sla(0) == s.bit("fiber"));
  s.latency("fiber", 130);
  auto& back = s.at(100);
  CHECK(back.changed);
  CHECK(s.leave(CLV_MOVE_SLA) == 0);
  REQUIRE(back.events.size() == 1);
  CHECK_FALSE(back.events[0].leave);
  CHECK(back.events[0].why == "back within voice");
  CHECK(core::sla_reentry_block(*s.c.policy_sla[0].sla, {140, 1, 0, true}) ==
        "latency 140 ms > 135 ms, 90% of voice 150 ms");
}

TEST_CASE("sla moves: a link oscillating around the threshold is left at most once per hold-down") {
  Site s("    hold-down: 30s\n");
  int leaves = 0;
  // +-5% around 150 ms every second for 60 s: 157.5 is out, 142.5 is not
  // back in (hysteresis) -- and 120 ms dips that are back in.
  for (int t = 0; t < 60; ++t) {
    s.latency("fiber", t % 4 == 3 ? 120 : t % 2 ? 142.5 : 157.5);
    for (const auto& e : s.at(1000).events)
      if (e.leave) ++leaves;
  }
  CHECK(leaves == 2);  // at 0 s and once the hold-down passed (30 s)
  Site once("    hold-down: 2m\n");
  leaves = 0;
  for (int t = 0; t < 60; ++t) {
    once.latency("fiber", t % 4 == 3 ? 120 : t % 2 ? 142.5 : 157.5);
    for (const auto& e : once.at(1000).events)
      if (e.leave) ++leaves;
  }
  CHECK(leaves == 1);
}

TEST_CASE("sla moves: keep leaves nothing; force also moves translated flows") {
  Site keep("    on-sla-violation: keep\n");
  keep.latency("fiber", 300);
  keep.at(100);
  CHECK(keep.leave(CLV_MOVE_SLA) == 0);
  Site force("    on-sla-violation: force\n");
  force.latency("fiber", 300);
  force.at(100);
  CHECK(force.leave(CLV_MOVE_SLA) == force.bit("fiber"));
  CHECK(force.force() == force.bit("fiber"));
}

TEST_CASE("sla moves: on-link-up: return moves flows back once the primary was healthy for return-after") {
  Site s("    on-link-up: return\n    return-after: 10s\n");
  s.at(100);
  s.up &= ~s.bit("fiber");  // fiber down: flows fail over to cable (the kernel)
  s.at(5000);
  CHECK(s.leave(CLV_MOVE_RETURN) == 0);
  s.up |= s.bit("fiber");
  s.at(5000);
  CHECK(s.leave(CLV_MOVE_RETURN) == 0);  // up 0 s
  s.at(9000);
  CHECK(s.leave(CLV_MOVE_RETURN) == 0);  // up 9 s
  s.up &= ~s.bit("fiber");               // flaps: the count starts again
  s.at(500);
  s.up |= s.bit("fiber");
  s.at(500);
  s.at(9999);
  CHECK(s.leave(CLV_MOVE_RETURN) == 0);
  auto& d = s.at(1);
  CHECK(s.leave(CLV_MOVE_RETURN) == s.bit("cable"));
  CHECK(s.leave(CLV_MOVE_RETURN, "bulk") == 0);  // on-link-up: stay (default)
  CHECK(s.force() == 0);                         // cable masquerades: its flows stay unless force
  REQUIRE(d.events.size() == 1);
  CHECK(d.events[0].reason == CLV_MOVE_RETURN);
  CHECK(d.events[0].why == "fiber up and within voice for 10 s (return-after)");
  s.at(core::kReturnWindowMs - 1);
  CHECK(s.leave(CLV_MOVE_RETURN) == s.bit("cable"));
  s.at(1);
  CHECK(s.leave(CLV_MOVE_RETURN) == 0);  // the window is over: no standing mark
  s.at(60000);
  CHECK(s.leave(CLV_MOVE_RETURN) == 0);
}

TEST_CASE("sla moves: a link back in SLA is returned to after return-after; force marks translated flows") {
  Site s("    on-link-up: force\n    return-after: 5s\n    hold-down: 1s\n");
  s.at(100);
  s.at(4999);
  CHECK(s.leave(CLV_MOVE_RETURN) == 0);
  s.at(1);  // both healthy since the first decision: flows on cable go to fiber
  CHECK(s.leave(CLV_MOVE_RETURN) == s.bit("cable"));
  s.at(core::kReturnWindowMs);
  CHECK(s.leave(CLV_MOVE_RETURN) == 0);
  s.latency("fiber", 200);
  s.at(100);
  CHECK(s.leave(CLV_MOVE_SLA) == s.bit("fiber"));
  s.latency("fiber", 100);
  s.at(100);
  CHECK(s.leave(CLV_MOVE_SLA) == 0);
  s.at(4900);
  CHECK(s.leave(CLV_MOVE_RETURN) == 0);
  s.at(100);
  CHECK(s.leave(CLV_MOVE_RETURN) == s.bit("cable"));
  CHECK(s.force() == s.bit("cable"));
}

TEST_CASE("sla moves: a return window ends when the member flows return to leaves its SLA") {
  // The window leaves cable; fiber then goes out of SLA: the flows must
  // leave fiber for cable, so cable must stop being left in the same
  // decision (the kernel avoids every link any reason leaves).
  Site s("    on-link-up: return\n    return-after: 2s\n");
  s.at(100);
  s.at(2000);
  REQUIRE(s.leave(CLV_MOVE_RETURN) == s.bit("cable"));
  s.latency("fiber", 200);
  auto& d = s.at(1000);
  CHECK(s.leave(CLV_MOVE_SLA) == s.bit("fiber"));
  CHECK(s.leave(CLV_MOVE_RETURN) == 0);
  REQUIRE(d.events.size() == 2);
  CHECK(d.events[1].reason == CLV_MOVE_RETURN);
  CHECK_FALSE(d.events[1].leave);
  CHECK(d.events[1].why == "fiber no longer up and within voice");
  // Back within voice for return-after: flows return again.
  s.latency("fiber", 20);
  s.at(1000);
  CHECK(s.leave(CLV_MOVE_RETURN) == 0);
  s.at(2000);
  CHECK(s.leave(CLV_MOVE_RETURN) == s.bit("cable"));
}

TEST_CASE("sla moves: a new rule set starts afresh") {
  Site s("    hold-down: 10m\n");
  s.latency("fiber", 200);
  s.at(100);
  CHECK(s.leave(CLV_MOVE_SLA) == s.bit("fiber"));
  s.latency("fiber", 20);
  s.at(100);
  s.latency("fiber", 200);
  s.at(100);
  CHECK(s.leave(CLV_MOVE_SLA) == 0);  // within the hold-down
  s.c.generation++;
  s.at(100);
  CHECK(s.leave(CLV_MOVE_SLA) == s.bit("fiber"));
  CHECK(s.last.leave[0].generation == s.c.generation);
}

TEST_CASE("sla moves: the agent writes the leave masks when a probe round changes them, for the running rule set") {
  test::TempDir dir("sla-moves-agent");
  test::FakeDataplane dp;
  test::FakeHost host;
  host.set_interface("wan0", {4, true, core::IpAddr::parse("192.0.2.2"), std::nullopt});
  host.set_interface("wan1", {5, true, core::IpAddr::parse("198.51.100.2"), std::nullopt});
  agent::Agent a(agent::AgentOptions{dir.path + "/state", 10000}, dp, host);
  std::string m = kMovesMapping;
  m.replace(m.find("@VOICE@"), 7, "");
  REQUIRE(a.apply(m, "wan.yaml"));
  const auto running = a.running();
  const size_t voice = static_cast<size_t>(running->policy_index("voice"));
  const uint64_t fiber = 1ull << running->link_slot("fiber");
  // The apply wrote the rule set's first decision: nothing to leave, of its generation.
  REQUIRE(dp.leave().size() == running->policies.size());
  CHECK(dp.leave()[voice].links[CLV_MOVE_SLA] == 0);
  CHECK(dp.leave()[voice].generation == running->generation);
  const size_t writes = dp.leave_writes();
  core::LinkQualities q{};
  q[static_cast<size_t>(running->link_slot("fiber"))] = {20, 1, 0, true};
  q[static_cast<size_t>(running->link_slot("cable"))] = {40, 1, 0, true};
  REQUIRE(a.set_quality(q));
  CHECK(dp.leave_writes() == writes);  // unchanged: not written again
  q[static_cast<size_t>(running->link_slot("fiber"))] = {182, 1, 0, true};
  REQUIRE(a.set_quality(q));
  CHECK(dp.leave_writes() == writes + 1);
  CHECK(dp.leave()[voice].links[CLV_MOVE_SLA] == fiber);
  CHECK(dp.leave()[static_cast<size_t>(running->policy_index("bulk"))].links[CLV_MOVE_SLA] == 0);
  CHECK(a.sla_held_out().at(voice) == fiber);
  // 140 ms: under the limit, not under 135 ms: still left, and still last
  // for new flows (the programmed policy puts cable first).
  q[static_cast<size_t>(running->link_slot("fiber"))] = {140, 1, 0, true};
  REQUIRE(a.set_quality(q));
  CHECK(dp.leave()[voice].links[CLV_MOVE_SLA] == fiber);
  const auto pols = dp.policies();
  const clv_policy& vp = pols.at(voice);
  CHECK(vp.members[0].tier > vp.members[1].tier);  // fiber after cable
  q[static_cast<size_t>(running->link_slot("fiber"))] = {100, 1, 0, true};
  REQUIRE(a.set_quality(q));
  CHECK(dp.leave()[voice].links[CLV_MOVE_SLA] == 0);
}
