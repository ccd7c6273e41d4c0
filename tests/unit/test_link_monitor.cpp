// Link health as a state machine: thresholds with hysteresis, carrier,
// reliability, quality (latency / jitter / loss) and degraded.
#include <doctest/doctest.h>

#include "health/link_monitor.hpp"

using namespace clovis;
using agent::LinkState;
using agent::health::Clock;
using agent::health::LinkMonitor;
using agent::health::ProbeResult;

namespace {

core::Health health(uint32_t down = 3, uint32_t up = 2, uint32_t reliability = 1, int targets = 2) {
  core::Health h;
  for (int i = 0; i < targets; ++i)
    h.probes.push_back({core::ProbeKind::kIcmp, *core::IpAddr::parse("192.0.2.1"), 0, {}, {}, {}});
  h.interval_ms = 200;
  h.timeout_ms = 150;
  h.down_after = down;
  h.up_after = up;
  h.reliability = reliability;
  return h;
}

std::vector<ProbeResult> results(int ok, int total, double rtt = 10) {
  std::vector<ProbeResult> r;
  for (int i = 0; i < total; ++i) r.push_back({"icmp t" + std::to_string(i), i < ok, i < ok ? rtt : 0, {}, {}});
  return r;
}

struct Timeline {
  Clock::time_point now = Clock::time_point{} + std::chrono::hours(1);
  Clock::time_point tick() { return now += std::chrono::milliseconds(200); }
};

}  // namespace

TEST_CASE("down after N failed rounds, up after M good ones (hysteresis)") {
  Timeline t;
  LinkMonitor m(health(3, 2), true, t.now);
  CHECK(m.state() == LinkState::kUp);
  CHECK_FALSE(m.round(results(0, 2), t.tick()));
  CHECK_FALSE(m.round(results(0, 2), t.tick()));
  auto down = m.round(results(0, 2), t.tick());
  REQUIRE(down);
  CHECK(down->to == LinkState::kDown);
  CHECK(down->reason == "3 probe rounds failed (icmp t0, icmp t1 unanswered)");
  CHECK(m.since() == t.now);
  // One good round is not enough; a bad one resets the count.
  CHECK_FALSE(m.round(results(2, 2), t.tick()));
  CHECK_FALSE(m.round(results(0, 2), t.tick()));
  CHECK_FALSE(m.round(results(2, 2), t.tick()));
  auto up = m.round(results(2, 2), t.tick());
  REQUIRE(up);
  CHECK(up->to == LinkState::kUp);
  CHECK(m.transitions() == 2);
}

TEST_CASE("reliability: how many targets must answer for a good round") {
  Timeline t;
  LinkMonitor m(health(1, 1, 2, 3), true, t.now);
  CHECK_FALSE(m.round(results(2, 3), t.tick()));
  auto d = m.round(results(1, 3), t.tick());
  REQUIRE(d);
  CHECK(d->to == LinkState::kDown);
}

TEST_CASE("carrier loss is believed at once, its return waits for the probes") {
  Timeline t;
  LinkMonitor m(health(3, 2), true, t.now);
  auto lost = m.carrier(false, t.tick());
  REQUIRE(lost);
  CHECK(lost->to == LinkState::kDown);
  CHECK(lost->reason == "carrier lost");
  CHECK_FALSE(m.round(results(2, 2), t.tick()));  // no carrier: probes do not count
  CHECK_FALSE(m.carrier(true, t.tick()));         // back, but not trusted yet
  CHECK(m.state() == LinkState::kDown);
  CHECK_FALSE(m.round(results(2, 2), t.tick()));
  REQUIRE(m.round(results(2, 2), t.tick()));
  CHECK(m.state() == LinkState::kUp);
  // Without probes the carrier alone decides, both ways.
  LinkMonitor plain(std::nullopt, false, t.now);
  CHECK(plain.state() == LinkState::kDown);
  REQUIRE(plain.carrier(true, t.tick()));
  CHECK(plain.state() == LinkState::kUp);
}

TEST_CASE("quality thresholds make a link degraded, and healthy again") {
  Timeline t;
  auto h = health(3, 2, 1, 1);
  h.max_latency_ms = 50;
  h.max_loss_pct = 30;
  LinkMonitor m(h, true, t.now);
  CHECK_FALSE(m.round(results(1, 1, 10), t.tick()));
  CHECK(m.quality().latency_ms == doctest::Approx(10));
  std::optional<agent::health::Transition> deg;
  for (int i = 0; i < 20 && !deg; ++i) deg = m.round(results(1, 1, 120), t.tick());
  REQUIRE(deg);
  CHECK(deg->to == LinkState::kDegraded);
  CHECK(deg->reason.find("latency") == 0);
  std::optional<agent::health::Transition> ok;
  for (int i = 0; i < 30 && !ok; ++i) ok = m.round(results(1, 1, 5), t.tick());
  REQUIRE(ok);
  CHECK(ok->to == LinkState::kUp);
  // Loss: one lost probe in two rounds pushes the EWMA over 30% only when sustained.
  LinkMonitor l(h, true, t.now);
  CHECK_FALSE(l.round(results(0, 1), t.tick()));  // 20% after one loss: still fine
  auto lossy = l.round(results(0, 1), t.tick());  // 36%: degraded (down needs 3 rounds)
  REQUIRE(lossy);
  CHECK(lossy->to == LinkState::kDegraded);
  CHECK(l.quality().loss_pct == doctest::Approx(36.0));
}

TEST_CASE("jitter is the smoothed change between successive round trips") {
  Timeline t;
  auto h = health(3, 2, 1, 1);
  h.max_jitter_ms = 20;
  LinkMonitor m(h, true, t.now);
  std::optional<agent::health::Transition> tr;
  for (int i = 0; i < 30 && !tr; ++i) tr = m.round(results(1, 1, i % 2 ? 10 : 60), t.tick());
  REQUIRE(tr);
  CHECK(tr->to == LinkState::kDegraded);
  CHECK(tr->reason.find("jitter") == 0);
  CHECK(m.quality().jitter_ms > 20);
}

TEST_CASE("a probe this host cannot send is neither answered nor lost: the link is judged by its carrier") {
  Timeline t;
  auto unsendable = [](std::vector<ProbeResult> r, size_t from) {
    for (size_t i = from; i < r.size(); ++i) r[i].cannot_probe = "raw ICMP socket: Operation not permitted";
    return r;
  };
  LinkMonitor m(health(1, 1, 1, 2), true, t.now);
  // No socket at all: down_after is 1, yet the link stays up, and says why.
  for (int i = 0; i < 5; ++i) CHECK_FALSE(m.round(unsendable(results(0, 2), 0), t.tick()));
  CHECK(m.state() == LinkState::kUp);
  CHECK(m.reason().find("cannot probe (icmp t0: raw ICMP socket: Operation not permitted; icmp t1") == 0);
  CHECK(m.reason().find("judged by carrier only") != std::string::npos);
  CHECK(m.quality().loss_pct == 0);
  CHECK_FALSE(m.quality().measured);
  // The carrier still decides.
  REQUIRE(m.carrier(false, t.tick()));
  CHECK(m.state() == LinkState::kDown);
  m.carrier(true, t.tick());
  auto up = m.round(unsendable(results(0, 2), 0), t.tick());
  REQUIRE(up);
  CHECK(up->to == LinkState::kUp);
  // One target can be probed, one cannot: reliability 2 asks for what can answer.
  LinkMonitor r(health(1, 1, 2, 2), true, t.now);
  CHECK_FALSE(r.round(unsendable(results(1, 2), 1), t.tick()));
  CHECK(r.quality().loss_pct == 0);
  auto down = r.round(unsendable(results(0, 2), 1), t.tick());  // the probeable one is lost: a real failure
  REQUIRE(down);
  CHECK(down->to == LinkState::kDown);
  CHECK(down->reason == "1 probe rounds failed (icmp t0 unanswered)");
}
