#include <algorithm>
#include <cstring>

#include <doctest/doctest.h>

#include "core/abi.hpp"
#include "helpers.hpp"

using namespace clovis;
using test::check;
using test::has;

namespace {
std::string with(const std::string& tail) {
  return std::string(test::kLinks) + tail;
}
}  // namespace

TEST_CASE("duplicate names and priorities point at the first definition") {
  auto c = check(with(R"(rules:
  - {name: r1, priority: 10, link: a}
  - {name: r1, priority: 10, link: b}
)"));
  INFO(test::dump(c));
  CHECK(has(c, 15, "duplicate rule name 'r1'"));
  CHECK(has(c, 15, "first defined at line 14"));
  CHECK(has(c, 15, "priority 10 is also used by rule 'r1' (line 14)"));
  auto l = check(with("  - name: p\n    failover: [a]\n"));
  CHECK(has(l, 13, "duplicate policy name 'p'"));
}

TEST_CASE("dangling references suggest the intended name") {
  auto c = check(with("rules:\n  - {name: r, priority: 1, policy: q}\ndefault: {link: bb}\n"));
  INFO(test::dump(c));
  CHECK(has(c, 14, "unknown policy 'q'"));
  CHECK(has(c, 15, "unknown link 'bb'"));
  CHECK(has(c, 15, "did you mean 'b'?"));
  auto m = check(
      "version: 1\nlinks:\n  - {name: mpls, interface: w0, gateway: 192.0.2.1}\n"
      "policies:\n  - {name: p, failover: [mlps, mpls, mpls]}\n");
  CHECK(has(m, 5, "unknown link 'mlps'"));
  CHECK(has(m, 5, "did you mean 'mpls'?"));
  CHECK(has(m, 5, "appears twice"));
}

TEST_CASE("links need a next hop usable by their mode") {
  auto c = check("version: 1\nlinks:\n  - {name: a, interface: w0, mode: redirect}\n");
  CHECK(has(c, 3, "no next hop for mode redirect"));
  CHECK(has(c, 3, "point-to-point: true"));
  CHECK(check("version: 1\nlinks:\n  - {name: t, interface: tun0, point-to-point: true}\n").ok());
  auto mac = check(
      "version: 1\nlinks:\n  - {name: a, interface: w0, gateway: 192.0.2.1, gateway-mac: "
      "'02:00:00:00:00:01'}\n");
  CHECK(has(mac, 3, "gateway-mac is used only by mode: redirect"));
}

TEST_CASE("snat is rejected where the mode cannot do it") {
  auto c = check("version: 1\nlinks:\n  - {name: a, interface: w0, gateway: 192.0.2.1, snat: masquerade}\n");
  CHECK(has(c, 3, "snat is done by clovis only in mode: redirect"));
  CHECK(has(c, 3, "oifname \"w0\" masquerade"));
  auto fam = check(
      "version: 1\nlinks:\n  - {name: a, interface: w0, gateway: 192.0.2.1, mode: redirect, "
      "snat: '2001:db8::5'}\n");
  CHECK(has(fam, 3, "IPv6 snat address on a link without an IPv6 gateway"));
  CHECK(check("version: 1\nlinks:\n  - {name: a, interface: w0, gateway: 192.0.2.1, mode: redirect, "
              "snat: 192.0.2.9}\n")
            .ok());
}

TEST_CASE("marks and tables must be distinct and not the kernel's") {
  auto c = check(
      "version: 1\nlinks:\n  - {name: a, interface: w0, gateway: 192.0.2.1, mark: 0x10, table: 254}\n"
      "  - {name: b, interface: w1, gateway: 192.0.2.9, mark: 0x10}\n");
  CHECK(has(c, 4, "mark 0x10 is also used by link 'a'"));
  CHECK(has(c, 3, "table 254 is one of the kernel's own"));
  // An explicit mark that collides with another link's default one.
  auto d = check(
      "version: 1\nlinks:\n  - {name: a, interface: w0, gateway: 192.0.2.1}\n"
      "  - {name: b, interface: w1, gateway: 192.0.2.9, mark: 0x100}\n");
  INFO(test::dump(d));
  CHECK(has(d, 0, "already used by link"));
}

TEST_CASE("health settings are consistent") {
  auto h = [](const std::string& health) {
    return check("version: 1\nlinks:\n  - name: a\n    interface: w0\n    gateway: 192.0.2.1\n    health: " + health +
                 "\n");
  };
  CHECK(has(h("{interval: 1s}"), 6, "health has no probes"));
  CHECK(has(h("{probes: [{icmp: 192.0.2.1}], interval: 50ms}"), 6, "below 100ms"));
  CHECK(has(h("{probes: [{icmp: 192.0.2.1}], interval: 200ms, timeout: 300ms}"), 6, "must be between"));
  CHECK(has(h("{probes: [{icmp: 192.0.2.1}], reliability: 2}"), 6, "needs at least 2 probes"));
  CHECK(has(h("{probes: [{icmp: '2001:db8::1'}]}"), 6, "has no such gateway"));
  CHECK(h("{probes: [{icmp: 192.0.2.1}, {tcp: '192.0.2.8:443'}], interval: 200ms, reliability: 2}").ok());
}

TEST_CASE("match fields that can never work together") {
  auto c = check(with(R"(rules:
  - {name: ports, priority: 1, match: {dport: 80}, link: a}
  - {name: icmp-ports, priority: 2, match: {proto: icmp, dport: 80}, link: a}
  - {name: families, priority: 3, match: {src: 10.0.0.0/8, dst: "2001:db8::/32"}, link: a}
  - {name: v6-only-to-v4-link, priority: 4, match: {dst: "2001:db8::/32"}, link: b}
  - {name: any-to-v4-link, priority: 5, link: b}
)"));
  INFO(test::dump(c));
  CHECK(has(c, 14, "ports are matched only with proto tcp, udp"));
  CHECK(has(c, 15, "ports are matched only with proto tcp, udp"));
  CHECK(has(c, 16, "different address families"));
  CHECK(has(c, 17, "matches only IPv6 but link 'b' has no IPv6 next hop"));
  CHECK(has(c, 18, "has no IPv6 next hop", core::Severity::kWarning));
}

TEST_CASE("unused policies and zero-weight tiers are warnings, not errors") {
  auto c = check(std::string(test::kLinks) +
                 "  - name: q\n    members: [{link: a, weight: 0}]\nrules:\n  - {name: r, priority: 1, link: a}\n");
  INFO(test::dump(c));
  CHECK(c.ok());
  CHECK(has(c, 11, "policy 'p' is not used", core::Severity::kWarning));
  CHECK(has(c, 13, "tier 1 of policy 'q' has weight 0", core::Severity::kWarning));
}

TEST_CASE("limits are enforced with a message") {
  std::string links = "version: 1\nlinks:\n";
  for (int i = 0; i < 65; ++i)
    links += "  - {name: l" + std::to_string(i) + ", interface: w" + std::to_string(i) + ", gateway: 192.0.2.1}\n";
  CHECK(has(check(links), 0, "over the limit of 64"));
  std::string members = "version: 1\nlinks:\n";
  std::string fo;
  for (int i = 0; i < 17; ++i) {
    members += "  - {name: l" + std::to_string(i) + ", interface: w" + std::to_string(i) + ", gateway: 192.0.2.1}\n";
    fo += (i ? ", l" : "l") + std::to_string(i);
  }
  members += "policies:\n  - {name: p, failover: [" + fo + "]}\n";
  CHECK(has(check(members), 0, "17 members, over the limit of 16"));
}

TEST_CASE("lists longer than the kernel's tables are refused by their length, before an item is read") {
  std::string text = std::string(test::kLinks) + "  - {name: q0, failover: [a]}\n";
  // kLinks already has policy p; 4,096 more make 4,097.
  for (int i = 1; i < CLV_MAX_POLICIES; ++i) text += "  - {name: q" + std::to_string(i) + ", failover: [a]}\n";
  auto c = check(text);
  INFO(c.diagnostics.error_count());
  REQUIRE_FALSE(c.ok());
  // The 4,097th policy's line; no item of the list was read, so no other error.
  const int line =
      static_cast<int>(std::count(test::kLinks, test::kLinks + std::strlen(test::kLinks), '\n')) + CLV_MAX_POLICIES;
  CHECK(has(c, line, "4097 policies, over the limit of 4096"));
  CHECK(c.diagnostics.error_count() == 1);
}

TEST_CASE("past 1,000 problems, diagnostics are counted but not listed, and a note says so") {
  std::string rules = "rules:\n";
  for (int i = 0; i < 1500; ++i)
    rules += "  - {name: r" + std::to_string(i) + ", priority: " + std::to_string(i) + ", link: nowhere}\n";
  auto c = check(with(rules));
  CHECK(c.diagnostics.error_count() == 1500);
  CHECK(c.diagnostics.truncated());
  REQUIRE(c.diagnostics.items().size() == core::kMaxListedDiagnostics + 1);
  CHECK(c.diagnostics.items()[0].message == "more than 1000 problems: only the first 1000 are listed");
  CHECK(c.diagnostics.items()[1].message == "unknown link 'nowhere'");
  // Appending keeps one note and every count.
  core::Diagnostics d;
  d.warning({1, 1}, "", "w");
  d.append(c.diagnostics);
  CHECK(d.error_count() == 1500);
  CHECK(d.warning_count() == c.diagnostics.warning_count() + 1);
  CHECK(d.items().size() == core::kMaxListedDiagnostics + 1);
  CHECK(std::count_if(d.items().begin(), d.items().end(),
                      [](const core::Diagnostic& x) { return x.message.rfind("more than", 0) == 0; }) == 1);
}
