#include <algorithm>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include "core/match_box.hpp"
#include "helpers.hpp"

using namespace clovis;
using test::check;
using test::has;

namespace {
std::string with(const std::string& tail) {
  return std::string(test::kLinks) + tail;
}

const core::CompiledRules& compiled(const core::Checked& c) {
  INFO(test::dump(c));
  REQUIRE(c.ok());
  return *c.compiled;
}
}  // namespace

TEST_CASE("one rule, one entry: the key is the masked tuple") {
  auto c =
      check(with("rules:\n  - {name: r, priority: 5, match: {dst: 10.0.0.0/8, proto: tcp, dport: 443}, link: a}\n"));
  const auto& r = compiled(c);
  REQUIRE(r.entries.size() == 1);
  REQUIRE(r.shapes.size() == 1);
  const auto& sh = r.shapes[0];
  CHECK(sh.family == CLV_AF_INET);
  CHECK(sh.dst_plen == 8);
  CHECK(sh.src_plen == 0);
  CHECK(sh.proto_mask == 0xff);
  CHECK(sh.dport_mask == 0xffff);
  CHECK(sh.sport_mask == 0);
  CHECK(sh.min_priority == 5);
  const auto& [k, v] = r.entries[0];
  CHECK(k.proto == 6);
  CHECK(k.dport == 443);
  CHECK(k.dst[0] == core::IpAddr::parse("10.0.0.0")->words()[0]);
  CHECK(v.priority == 5);
  CHECK(v.action == CLV_ACT_STEER);
  CHECK(r.policy_info[v.policy].name == "link:a");
  CHECK(r.policy_info[v.policy].implicit);
  CHECK(r.rules[v.rule_id].name == "r");
  CHECK(r.rules.back().is_default);
  CHECK(r.meta.default_action == CLV_ACT_NONE);
}

TEST_CASE("port ranges become prefix entries, families become separate shapes") {
  auto c = check(with("rules:\n  - {name: r, priority: 5, match: {proto: tcp, dport: 1024-65535}, link: a}\n"));
  const auto& r = compiled(c);
  CHECK(r.entries.size() == 12);  // 6 prefixes x {IPv4, IPv6}
  CHECK(r.shapes.size() == 12);
  auto v4 =
      check(with("rules:\n  - {name: r, priority: 5, match: {dst: 10.0.0.0/8, proto: [tcp, udp], "
                 "dport: [53, 5353]}, link: a}\n"));
  CHECK(compiled(v4).entries.size() == 4);
  CHECK(compiled(v4).shapes.size() == 1);
}

TEST_CASE("shapes are ordered by the best priority they hold") {
  auto c = check(with(R"(rules:
  - {name: late, priority: 30, match: {dst: 10.0.0.0/8}, link: a}
  - {name: early, priority: 10, match: {dst: 10.1.0.0/16}, link: b}
  - {name: mid, priority: 20, match: {dst: 10.2.0.0/16}, link: b}
)"));
  const auto& r = compiled(c);
  REQUIRE(r.shapes.size() == 2);
  CHECK(r.shapes[0].dst_plen == 16);
  CHECK(r.shapes[0].min_priority == 10);
  CHECK(r.shapes[1].min_priority == 30);
  // Rule ids follow priority order.
  CHECK(r.rules[0].name == "early");
  CHECK(r.rules[2].name == "late");
}

TEST_CASE("link slots, marks and tables are stable across recompiles") {
  auto first = check(
      "version: 1\nlinks:\n  - {name: a, interface: w0, gateway: 192.0.2.1}\n"
      "  - {name: b, interface: w1, gateway: 192.0.2.9, mode: redirect}\n");
  const auto& r1 = compiled(first);
  CHECK(r1.link_slot("a") == 0);
  CHECK(r1.link_slot("b") == 1);
  CHECK(r1.links[0].mark == core::kDefaultMarkStep);
  CHECK(r1.links[1].table == core::kDefaultTableBase + 1);
  CHECK(r1.links[1].mode == CLV_MODE_REDIRECT);
  CHECK((r1.links[1].flags & CLV_LINK_GW4));
  core::CompileOptions o;
  o.generation = 7;
  o.previous = &r1;
  auto second = core::check_mapping(
      "version: 1\nlinks:\n  - {name: c, interface: w2, gateway: 192.0.2.5}\n"
      "  - {name: b, interface: w1, gateway: 192.0.2.9, mode: redirect}\n",
      o);
  const auto& r2 = compiled(second);
  CHECK(r2.link_slot("b") == 1);  // kept
  // Not a's slot: the running rule set knows a by it until the flip, so a
  // new link takes a slot no link held while there is one.
  CHECK(r2.link_slot("c") == 2);
  CHECK(r2.links[1].epoch == r1.links[1].epoch);
  CHECK(r2.links[2].epoch == 7);
  // None left but a's: c takes it (the agent then hands it over after the flip).
  core::CompiledRules full = r1;
  for (int s = 2; s < CLV_MAX_LINKS; ++s) full.link_info[s].name = "x" + std::to_string(s);
  o.previous = &full;
  std::string all = "version: 1\nlinks:\n  - {name: c, interface: w2, gateway: 192.0.2.5}\n";
  for (int s = 1; s < CLV_MAX_LINKS; ++s)
    all += "  - {name: " + (s == 1 ? std::string("b") : "x" + std::to_string(s)) +
           ", interface: w1, gateway: 192.0.2.9}\n";
  auto third = core::check_mapping(all, o);
  const auto& r3 = compiled(third);
  CHECK(r3.link_slot("c") == 0);
  CHECK(r2.generation == 7);
}

TEST_CASE("link_routing: each link's mark, table and the families its fwmark rule covers") {
  auto c = check(
      "version: 1\nlinks:\n"
      "  - {name: dual, interface: w0, gateway: [192.0.2.1, \"2001:db8::1\"]}\n"
      "  - {name: v6, interface: w1, gateway: \"2001:db8:1::1\", mark: 0x77, table: 250}\n"
      "  - {name: ppp, interface: ppp0, point-to-point: true, mode: redirect}\n");
  const auto routing = core::link_routing(compiled(c));
  REQUIRE(routing.size() == 3);
  CHECK(routing[0].name == "dual");
  CHECK(routing[0].slot == 0);
  CHECK(routing[0].mark == core::kDefaultMarkStep);
  CHECK(routing[0].table == core::kDefaultTableBase);
  CHECK((routing[0].v4 && routing[0].v6));
  CHECK(routing[1].mark == 0x77);
  CHECK(routing[1].table == 250);
  CHECK((!routing[1].v4 && routing[1].v6));
  CHECK(routing[2].interface == "ppp0");
  CHECK(routing[2].mode == core::SteerMode::kRedirect);
  CHECK(routing[2].mark == core::kDefaultMarkStep * 3);
  CHECK((routing[2].v4 && routing[2].v6));  // a device route serves both
}

TEST_CASE("slot_layout: compiling against it puts links where a running clovisd holds them") {
  const std::string text =
      "version: 1\nlinks:\n  - {name: b, interface: w1, gateway: 192.0.2.9}\n"
      "  - {name: c, interface: w2, gateway: 192.0.2.5}\n";
  const auto layout = core::slot_layout({{"b", 1}, {"c", 2}, {"gone", 0}, {"bad", 99}});
  CHECK(layout.link_slot("c") == 2);
  CHECK(layout.link_slot("bad") == -1);
  core::CompileOptions o;
  o.previous = &layout;
  auto held = core::check_mapping(text, o);
  const auto& r = compiled(held);
  CHECK(r.link_slot("b") == 1);
  CHECK(r.link_slot("c") == 2);
  CHECK(r.links[2].mark == core::kDefaultMarkStep * 3);
  // Without it, the same text starts from slot 0.
  auto fresh = check(text);
  CHECK(compiled(fresh).link_slot("b") == 0);
}

TEST_CASE("a rule covered by an earlier one is reported as shadowed") {
  auto c = check(with(R"(rules:
  - {name: wide, priority: 10, match: {dst: 10.0.0.0/8}, link: a}
  - {name: narrow, priority: 20, match: {dst: 10.1.0.0/16, proto: tcp, dport: 443}, link: b}
  - {name: elsewhere, priority: 30, match: {dst: 11.0.0.0/8, proto: tcp}, link: b}
  - {name: l7, priority: 40, match: {dst: 10.9.0.0/16, host: api.example.com}, link: b}
  - {name: l7-free, priority: 50, match: {host: api.example.com}, link: b}
)"));
  INFO(test::dump(c));
  REQUIRE(c.ok());
  CHECK(has(c, 15, "rule 'narrow' never matches", core::Severity::kWarning));
  CHECK(has(c, 15, "'wide' (priority 10, line 14)", core::Severity::kWarning));
  CHECK_FALSE(has(c, 16, "never matches", core::Severity::kWarning));
  CHECK(has(c, 17, "rule 'l7' never matches", core::Severity::kWarning));
  CHECK_FALSE(has(c, 18, "never matches", core::Severity::kWarning));
  // Not shadowed: the earlier rule matches less (tcp only).
  auto d = check(with(R"(rules:
  - {name: tcp, priority: 10, match: {dst: 10.0.0.0/8, proto: tcp}, link: a}
  - {name: all, priority: 20, match: {dst: 10.1.0.0/16}, link: b}
)"));
  CHECK_FALSE(has(d, 0, "never matches", core::Severity::kWarning));
}

TEST_CASE("the shape limit is an error at the rule that exceeds it") {
  std::string rules = "rules:\n";
  int prio = 1;
  for (int s = 16; s <= 28; ++s)  // 13 x 10 = 130 distinct (src, dst) prefix-length pairs
    for (int d = 22; d <= 31; ++d, ++prio)
      rules += "  - {name: r" + std::to_string(prio) + ", priority: " + std::to_string(prio) +
               ", match: {src: 10.0.0.0/" + std::to_string(s) + ", dst: 10.128.0.0/" + std::to_string(d) +
               "}, link: a}\n";
  auto c = check(with(rules));
  CHECK(has(c, 0, "needs match shape #129"));
  CHECK(has(c, 0, "over the limit of 128"));
  CHECK_FALSE(c.ok());
}

TEST_CASE("ingress interfaces get small ids, and L7 rules stay out of the kernel tables") {
  auto c = check(with(R"(rules:
  - {name: from-lan1, priority: 1, match: {interface: lan1}, link: a}
  - {name: l7, priority: 2, match: {host: "*.example.com", path-prefix: /v1/}, link: b}
  - {name: l7b, priority: 3, match: {host: api.example.com, headers: {End-User: minions}}, link: b}
)"));
  const auto& r = compiled(c);
  CHECK(r.iif_id("lan1") == 1);
  CHECK(r.iif_id("lan0") == 0);
  CHECK(r.entries.size() == 2);  // from-lan1 in both families
  CHECK(r.shapes[0].iif_on == 1);
  REQUIRE(r.l7.size() == 2);
  CHECK(r.l7_wildcard_host.size() == 1);
  CHECK(r.l7_by_host.at("api.example.com").size() == 1);
  CHECK(r.l7[1].headers[0].first == "end-user");
}

namespace {
// Issue #13's expansion bomb: `rules` rules, each of 64 src /32 x 32 dst /24
// x dport 1-65534 (30 aligned blocks): 61,440 entries a rule. Distinct
// prefixes per rule unless `same`. Each rule takes 8 lines.
std::string expansion_bomb(int rules, bool same) {
  std::string out = "rules:\n";
  for (int r = 0; r < rules; ++r) {
    const int base = same ? 0 : r * 64;
    std::string src, dst;
    for (int i = 0; i < 64; ++i)
      src +=
          fmt::format("{}10.{}.{}.{}/32", i ? ", " : "", (base + i) >> 16, ((base + i) >> 8) & 255, (base + i) & 255);
    for (int i = 0; i < 32; ++i)
      dst += fmt::format("{}11.{}.{}.0/24", i ? ", " : "", (base + i) >> 8, (base + i) & 255);
    out += fmt::format(
        "  - name: r{}\n    priority: {}\n    match:\n      src: [{}]\n      dst: [{}]\n"
        "      proto: tcp\n      dport: 1-65534\n    link: a\n",
        r, r + 1, src, dst);
  }
  return out;
}

int lines_of(const std::string& s) {
  return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
}
}  // namespace

TEST_CASE("count_boxes counts a match's entries without making them, as expand_match makes them") {
  auto rule_match = [](const std::string& match) {
    auto c = check(with("rules:\n  - {name: r, priority: 1, match: " + match + ", link: a}\n"));
    INFO(test::dump(c));
    REQUIRE(c.mapping);
    return c.mapping->rules.at(0).match;
  };
  for (const char* m : {"{}", "{dst: 10.0.0.0/8}", "{proto: tcp, dport: 1024-65535}",
                        "{src: [10.0.0.0/8, '2001:db8::/32'], dst: [10.1.0.0/16, 10.2.0.0/16], proto: [tcp, udp], "
                        "sport: [1-1000, 7], dport: [80, 443, 8000-8999]}",
                        "{src: ['2001:db8::/32'], dst: [10.1.0.0/16]}", "{host: a.example.com}"}) {
    INFO(m);
    const core::Match mt = rule_match(m);
    auto boxes = core::expand_match(mt, 0, SIZE_MAX);
    REQUIRE(boxes);
    CHECK(core::count_boxes(mt) == boxes->size());
  }
  // The issue's rule: 64 x 32 x 30, and its factors for the message.
  auto c = check(with(expansion_bomb(1, false)));
  REQUIRE(c.mapping);
  CHECK(core::count_boxes(c.mapping->rules[0].match) == 64 * 32 * 30);
  CHECK(core::describe_expansion(c.mapping->rules[0].match) == "64 src x 32 dst x 30 dport blocks");
  CHECK(core::port_range_prefix_count({1, 65534}) == 30);
}

TEST_CASE("the issue's 1,000-rule expansion bomb is refused at the rule that crosses the limit, unexpanded") {
  const std::string text = with(expansion_bomb(1000, false));
  auto c = check(text);
  REQUIRE_FALSE(c.ok());
  // The rule whose entries take the running total over the limit, by name and line.
  const uint64_t per_rule = 64 * 32 * 30;
  const int crossing = static_cast<int>(core::kMaxEntriesPerMapping / per_rule);
  const int line = lines_of(test::kLinks) + 2 + 8 * crossing;
  INFO(test::dump(c));
  CHECK(c.diagnostics.error_count() == 1);
  CHECK(has(
      c, line,
      fmt::format("rule 'r{}' expands to {} table entries (64 src x 32 dst x 30 dport blocks)", crossing, per_rule)));
  CHECK(has(c, line,
            fmt::format("brings the mapping to {}, over the limit of {} per mapping", per_rule * (crossing + 1),
                        core::kMaxEntriesPerMapping)));
  for (const auto& d : c.diagnostics.items())
    if (d.severity == core::Severity::kError)
      CHECK(d.hint.find("split the rule or use a wider prefix") != std::string::npos);
  // Refused before anything was expanded: compile made no entry, no rule.
  const auto out = core::compile(*c.mapping);
  CHECK(out.diagnostics.has_errors());
  CHECK(out.rules.entries.empty());
  CHECK(out.rules.rules.empty());
}

TEST_CASE("a rule over the per-rule limit is refused with its count and factors") {
  auto d = check(with(R"(rules:
  - name: huge
    priority: 2
    match: {src: [10.0.0.0/24, 10.0.1.0/24, 10.0.2.0/24, 10.0.3.0/24, 10.0.4.0/24, 10.0.5.0/24, 10.0.6.0/24,
                  10.0.7.0/24, 10.0.8.0/24, 10.0.9.0/24, 10.0.10.0/24, 10.0.11.0/24, 10.0.12.0/24, 10.0.13.0/24,
                  10.0.14.0/24, 10.0.15.0/24, 10.0.16.0/24, 10.0.17.0/24, 10.0.18.0/24, 10.0.19.0/24,
                  10.0.20.0/24, 10.0.21.0/24, 10.0.22.0/24, 10.0.23.0/24, 10.0.24.0/24, 10.0.25.0/24,
                  10.0.26.0/24, 10.0.27.0/24, 10.0.28.0/24, 10.0.29.0/24, 10.0.30.0/24, 10.0.31.0/24,
                  10.0.32.0/24, 10.0.33.0/24, 10.0.34.0/24, 10.0.35.0/24, 10.0.36.0/24, 10.0.37.0/24,
                  10.0.38.0/24, 10.0.39.0/24, 10.0.40.0/24, 10.0.41.0/24, 10.0.42.0/24, 10.0.43.0/24,
                  10.0.44.0/24, 10.0.45.0/24, 10.0.46.0/24, 10.0.47.0/24, 10.0.48.0/24, 10.0.49.0/24,
                  10.0.50.0/24, 10.0.51.0/24, 10.0.52.0/24, 10.0.53.0/24, 10.0.54.0/24, 10.0.55.0/24,
                  10.0.56.0/24, 10.0.57.0/24, 10.0.58.0/24, 10.0.59.0/24, 10.0.60.0/24, 10.0.61.0/24,
                  10.0.62.0/24, 10.0.63.0/24, 10.0.64.0/24, 10.0.65.0/24, 10.0.66.0/24, 10.0.67.0/24,
                  10.0.68.0/24, 10.0.69.0/24, 10.0.70.0/24, 10.0.71.0/24, 10.0.72.0/24, 10.0.73.0/24],
           proto: [tcp, udp], sport: 1-65534, dport: 1-65534}
    link: a
)"));
  INFO(test::dump(d));
  CHECK(has(d, lines_of(test::kLinks) + 2,
            fmt::format("rule 'huge' expands to 133200 table entries (74 src x 2 proto x 30 sport blocks x 30 "
                        "dport blocks), over the limit of {} per rule",
                        core::kMaxEntriesPerRule)));
  CHECK_FALSE(d.ok());
}

TEST_CASE("identical rules take their entries once") {
  const std::string one = expansion_bomb(1, true);
  const auto single = check(with(one));
  const size_t n = compiled(single).entries.size();
  CHECK(n == 64 * 32 * 30);
  // As many copies as the per-mapping limit allows: still one rule's entries.
  const int copies = static_cast<int>(core::kMaxEntriesPerMapping / n);
  auto c = check(with(expansion_bomb(copies, true)));
  const auto& r = compiled(c);
  CHECK(r.entries.size() == n);
  CHECK(r.rules[0].entries == n);
  CHECK(r.rules[1].entries == 0);
  CHECK(has(c, 0, "rule 'r1' never matches", core::Severity::kWarning));
}

TEST_CASE("describe_expansion names the factors, and says when families pair apart") {
  auto match_of = [](const std::string& match) {
    auto c = check(with("rules:\n  - {name: r, priority: 1, match: " + match + ", link: a}\n"));
    REQUIRE(c.mapping);
    return c.mapping->rules.at(0).match;
  };
  CHECK(core::describe_expansion(match_of("{dst: 10.0.0.0/8}")) == "one entry");
  CHECK(core::describe_expansion(match_of("{dst: [10.0.0.0/8, 11.0.0.0/8], proto: [tcp, udp], sport: 1-3}")) ==
        "2 dst x 2 proto x 2 sport blocks");
  const core::Match mixed = match_of("{src: [10.0.0.0/8, '2001:db8::/32'], dst: [10.1.0.0/16, 10.2.0.0/16]}");
  CHECK(core::describe_expansion(mixed) == "2 src x 2 dst, pairing IPv4 with IPv4 and IPv6 with IPv6");
  CHECK(core::count_boxes(mixed) == 2);
}
