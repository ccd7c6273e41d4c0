#include <algorithm>
#include <cstring>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include "core/diff.hpp"
#include "core/loader.hpp"
#include "helpers.hpp"
#include "loader_corpus.hpp"

using namespace clovis;
using test::check;
using test::has;

TEST_CASE("a minimal mapping loads") {
  auto c = check(std::string(test::kLinks) + "default: {policy: p}\n");
  INFO(test::dump(c));
  REQUIRE(c.ok());
  CHECK(c.mapping->links.size() == 2);
  CHECK(c.mapping->links[1].mode == core::SteerMode::kRedirect);
  CHECK(c.mapping->policies[0].members[1].tier == 2);
}

TEST_CASE("YAML syntax errors carry line and column") {
  auto c = check("links:\n  - name: a\n    interface: [wan0\n");
  REQUIRE_FALSE(c.ok());
  REQUIRE(c.diagnostics.error_count() == 1);
  CHECK(c.diagnostics.items()[0].loc.line >= 3);
  CHECK(c.diagnostics.items()[0].message.find("YAML syntax") != std::string::npos);
}

TEST_CASE("empty and non-mapping documents are rejected with a hint") {
  CHECK(has(check(""), 1, "empty"));
  CHECK(has(check("- a\n- b\n"), 1, "expected a mapping"));
  CHECK(has(check("version: 1\n"), 0, "no 'links:'"));
}

TEST_CASE("unknown keys are errors with did-you-mean at the key's position") {
  auto c = check("version: 1\nlinks:\n  - name: a\n    interfce: wan0\n    gateway: 192.0.2.1\n");
  INFO(test::dump(c));
  CHECK(has(c, 4, "unknown key 'interfce'"));
  CHECK(has(c, 4, "did you mean 'interface'?"));
  REQUIRE(!c.diagnostics.items().empty());
  CHECK(c.diagnostics.items()[0].loc.col == 5);
  auto top = check("verison: 1\nlinks: []\n");
  CHECK(has(top, 1, "did you mean 'version'?"));
}

TEST_CASE("every problem is reported, not just the first") {
  auto c = check(R"(version: 1
links:
  - name: a
    interface: wan0
    gateway: 192.0.2.300
    mode: rout
    mark: -1
rules:
  - name: r
    priority: x
    match: {dst: 10.1.2.3/16, dport: 90000, proto: tcpp, dscp: 99, mark: 0x3/0x1}
    link: a
)");
  INFO(test::dump(c));
  CHECK(has(c, 5, "not an IPv4 or IPv6 address"));
  CHECK(has(c, 6, "'rout' is not one of: route, redirect"));
  CHECK(has(c, 6, "did you mean 'route'?"));
  CHECK(has(c, 7, "not a whole number"));
  CHECK(has(c, 10, "not a whole number"));
  CHECK(has(c, 11, "has bits set after the /16 prefix"));
  CHECK(has(c, 11, "did you mean 10.1.0.0/16?"));
  CHECK(has(c, 11, "not a port or port range"));
  CHECK(has(c, 11, "unknown protocol 'tcpp'"));
  CHECK(has(c, 11, "not a DSCP value"));
  CHECK(has(c, 11, "has bits outside mask"));
  CHECK(c.diagnostics.error_count() == 9);
}

TEST_CASE("values are checked by type and range") {
  auto base = std::string(test::kLinks);
  CHECK(has(check(base + "rules:\n  - {name: r, priority: 1, match: {proto: tcp, dport: 9-1}, link: a}\n"), 14,
            "reversed"));
  CHECK(has(check(base + "rules:\n  - {name: r, priority: 1, match: {proto: tcp, dport: 9-1}, link: a}\n"), 14,
            "did you mean 1-9?"));
  CHECK(has(check(base + "rules:\n  - {name: r, priority: 1, match: {src: [], }, link: a}\n"), 14, "empty list"));
  CHECK(has(check(base + "rules:\n  - {name: r, priority: 1, match: {headers: [x]}, link: a}\n"), 14,
            "headers is a mapping"));
  CHECK(has(check(base + "rules:\n  - {name: r, priority: 1, match: {path-prefix: video}, link: a}\n"), 14,
            "does not start with '/'"));
  CHECK(
      has(check(base + "rules:\n  - {name: r, priority: 1, match: {host: 'a*.b'}, link: a}\n"), 14, "not a host name"));
  CHECK(has(check(base + "rules:\n  - {name: r, priority: 1, policy: p, link: a}\n"), 14, "more than one of"));
  CHECK(has(check(base + "rules:\n  - {name: r, priority: 1}\n"), 14, "no target"));
  CHECK(has(check(base + "rules:\n  - {name: r, link: a}\n"), 14, "no 'priority'"));
  CHECK(has(check(base + "rules:\n  - {name: r, priority: 1, action: reroute}\n"), 14, "not one of: bypass, drop"));
}

TEST_CASE("link fields: gateways, MACs, snat, names") {
  auto link = [](const std::string& extra) {
    return check("version: 1\nlinks:\n  - name: a\n    interface: wan0\n" + extra);
  };
  CHECK(has(link("    gateway: [192.0.2.1, 192.0.2.2]\n"), 5, "more than one gateway of the same address family"));
  CHECK(has(link("    gateway: 192.0.2.1\n    mode: redirect\n    gateway-mac: 02:00:00:00:00\n"), 7,
            "not a MAC address"));
  CHECK(has(link("    gateway: 192.0.2.1\n    mode: redirect\n    snat: masq\n"), 7,
            "not none, masquerade or an address"));
  CHECK(has(link("    gateway: 192.0.2.1\n    weight: 5000\n"), 6, "use 0..1000"));
  CHECK(has(check("version: 1\nlinks:\n  - name: this-name-is-much-too-long-for-clovis-links\n    interface: wan0\n"),
            3, "invalid name"));
  CHECK(has(check("version: 1\nlinks:\n  - name: a\n    interface: averyverylonginterface\n"), 4,
            "invalid interface name"));
  CHECK(has(link("    gateway: 192.0.2.1\n    health: {probes: [{tcp: 192.0.2.1}]}\n"), 6, "has no port"));
  CHECK(has(link("    gateway: 192.0.2.1\n    health: {probes: [{icmp: gw.example}]}\n"), 6, "not an IP address"));
  CHECK(has(link("    gateway: 192.0.2.1\n    health: {probes: [{icmp: 192.0.2.1}], interval: fast}\n"), 6,
            "not a duration"));
  CHECK(has(link("    gateway: 192.0.2.1\n    health: {probes: [{icmp: 192.0.2.1}], max-loss: 150%}\n"), 6,
            "not a percentage"));
  CHECK(has(link("    gateway: 192.0.2.1\n    name: b\n"), 6, "duplicate key 'name'"));
}

TEST_CASE("arbitrary bytes never crash the loader") {
  const auto inputs = test::loader_fuzz_inputs();
  for (size_t i = 0; i + 1 < inputs.size(); ++i) {
    auto c = check(inputs[i]);
    CHECK((c.ok() || c.diagnostics.has_errors()));
  }
  // Deep nesting must not blow the stack.
  auto c = check(inputs.back());
  CHECK(c.diagnostics.has_errors());
}

TEST_CASE("diagnostics name where they are: paths") {
  auto paths = [](const core::Checked& c) {
    std::vector<std::string> out;
    for (const auto& d : c.diagnostics.items()) out.push_back(d.path);
    return out;
  };
  auto c = check(R"(version: 1
version: 1
links:
  - name: a
    interfce: wan0
    gateway: [192.0.2.300]
    mark: -1
    health: {probes: [{tcp: 192.0.2.1}], interval: fast}
policies:
  - {name: p, members: [{link: a, tier: x}]}
rules:
  - name: r
    name: r2
    priority: x
    match: {dst: 10.1.2.3/16, dport: 90000, headers: {x-a: [1]}}
    link: a
)");
  INFO(test::dump(c));
  const auto p = paths(c);
  auto has_path = [&](const std::string& want) { return std::find(p.begin(), p.end(), want) != p.end(); };
  CHECK(has_path(".version"));  // a duplicate at the top keeps its leading dot
  CHECK(has_path("links[0].interfce"));
  CHECK(has_path("links[0].gateway[0]"));
  CHECK(has_path("links[0].mark"));
  CHECK(has_path("links[0].health.probes[0].tcp"));
  CHECK(has_path("links[0].health.interval"));
  CHECK(has_path("policies[0].members[0].tier"));
  CHECK(has_path("rules[0].name"));
  CHECK(has_path("rules[0].priority"));
  CHECK(has_path("rules[0].match.dst"));
  CHECK(has_path("rules[0].match.dport"));
  CHECK(has_path("rules[0].match.headers.x-a"));
  CHECK(paths(check("verison: 1\nlinks: []\n")) == std::vector<std::string>{"verison"});
}

TEST_CASE("proxy: on-drop is allow unless the mapping says deny") {
  const std::string base = test::kLinks;
  auto none = check(base);
  REQUIRE(none.ok());
  CHECK(none.mapping->proxy.on_drop == core::OnDrop::kAllow);
  CHECK(none.compiled->on_drop == core::OnDrop::kAllow);
  auto deny = check(base + "proxy:\n  on-drop: deny\n");
  INFO(test::dump(deny));
  REQUIRE(deny.ok());
  CHECK(deny.mapping->proxy.on_drop == core::OnDrop::kDeny);
  CHECK(deny.compiled->on_drop == core::OnDrop::kDeny);
  auto allow = check(base + "proxy: {on-drop: allow}\n");
  REQUIRE(allow.ok());
  CHECK(allow.compiled->on_drop == core::OnDrop::kAllow);
  auto empty = check(base + "proxy:\n");
  REQUIRE(empty.ok());
  CHECK(empty.compiled->on_drop == core::OnDrop::kAllow);
}

TEST_CASE("proxy: a bad value or key is an error at its position with a hint") {
  const std::string base = test::kLinks;  // 12 lines
  auto at = [](const core::Checked& c, int line, int col, const std::string& text) {
    return std::any_of(c.diagnostics.items().begin(), c.diagnostics.items().end(), [&](const core::Diagnostic& d) {
      return d.loc.line == line && d.loc.col == col && d.message.find(text) != std::string::npos;
    });
  };
  auto typo = check(base + "proxy:\n  on-drop: denny\n");
  INFO(test::dump(typo));
  CHECK(at(typo, 14, 12, "'denny' is not one of: allow, deny"));
  CHECK(has(typo, 14, "did you mean 'deny'?"));
  CHECK(typo.diagnostics.items()[0].path == "proxy.on-drop");
  auto other = check(base + "proxy: {on-drop: reject}\n");
  CHECK(at(other, 13, 18, "'reject' is not one of: allow, deny"));
  CHECK(has(other, 13, "deny answers a drop verdict with 403"));
  auto key = check(base + "proxy:\n  ondrop: deny\n");
  CHECK(at(key, 14, 3, "unknown key 'ondrop'"));
  CHECK(has(key, 14, "did you mean 'on-drop'?"));
  auto list = check(base + "proxy: [deny]\n");
  CHECK(has(list, 13, "expected a mapping"));
  auto nested = check(base + "proxy: {on-drop: [deny]}\n");
  CHECK(at(nested, 13, 18, "expected a value, found a list"));
  auto top = check(base + "proxi: {on-drop: deny}\n");
  CHECK(has(top, 13, "did you mean 'proxy'?"));
}

TEST_CASE("YAML aliases: a shared list loads as if written out, and a billion laughs is refused at its alias") {
  // An anchored src list named by two more rules: three rules of two prefixes.
  auto c = check(std::string(test::kLinks) + R"(rules:
  - {name: r1, priority: 1, match: {src: &office [10.1.0.0/16, 10.2.0.0/16]}, link: a}
  - {name: r2, priority: 2, match: {src: *office, proto: tcp}, link: a}
  - {name: r3, priority: 3, match: {src: *office, proto: udp}, link: b}
)");
  INFO(test::dump(c));
  REQUIRE(c.ok());
  for (const auto& r : c.mapping->rules) CHECK(r.match.src.size() == 2);
  // Ten lists of ten aliases of the one before: 10^10 nodes from 1 KB. List
  // i expands to 1 + 10 + ... + 10^(i+1) nodes; the aliases of l1-l4 add
  // 123,440, and l5's ninth alias (111,110 each) passes 2^20.
  std::string bomb = std::string(test::kLinks) +
                     "x:\n  l0: &l0 [10.0.0.1, 10.0.0.1, 10.0.0.1, 10.0.0.1, 10.0.0.1, "
                     "10.0.0.1, 10.0.0.1, 10.0.0.1, 10.0.0.1, 10.0.0.1]\n";
  for (int i = 1; i < 10; ++i) {
    bomb += "  l" + std::to_string(i) + ": &l" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) bomb += (k ? ", *l" : "*l") + std::to_string(i - 1);
    bomb += "]\n";
  }
  bomb += "rules:\n  - {name: r, priority: 1, match: {src: *l9}, link: a}\n";
  auto b = check(bomb);
  INFO(test::dump(b));
  REQUIRE_FALSE(b.ok());
  CHECK(b.diagnostics.error_count() == 1);
  const int bomb_line =
      static_cast<int>(std::count(test::kLinks, test::kLinks + std::strlen(test::kLinks), '\n')) + 7;  // l5
  CHECK(has(b, bomb_line, fmt::format("YAML aliases expand to more than {} nodes", core::kMaxYamlAliasedNodes)));
  // Many aliases of one big rule: bounded the same way, whatever the schema reads.
  std::string src;
  for (int i = 0; i < 100; ++i) src += (i ? ", 10.0.0." : "10.0.0.") + std::to_string(i);
  std::string many =
      std::string(test::kLinks) + "rules:\n  - &r {name: r, priority: 1, match: {src: [" + src + "]}, link: a}\n";
  for (uint64_t i = 0; i < core::kMaxYamlAliasedNodes / 100; ++i) many += "  - *r\n";
  auto m = check(many);
  CHECK(has(m, 0, "YAML aliases expand to more than"));
  CHECK_FALSE(m.mapping);
}

TEST_CASE("a YAML alias inside the node it names is refused, not walked") {
  for (const char* text : {"links: &l [*l]\n", "links:\n  - &n {name: a, interface: wan0, more: *n}\n"}) {
    auto c = check(text);
    INFO(test::dump(c));
    CHECK(has(c, 0, "YAML alias inside the node it refers to"));
  }
}

TEST_CASE("a mapping over 2 MiB must be plain YAML: refused where it leaves the subset") {
  std::string text = std::string(test::kLinks) + "rules:\n";
  int line = static_cast<int>(std::count(text.begin(), text.end(), '\n'));
  for (int i = 0; text.size() <= core::kMaxFullYamlBytes; ++i, ++line)
    text += "  - {name: r" + std::to_string(i) + ", priority: " + std::to_string(i) + ", link: a}\n";
  REQUIRE(check(text).ok());                                   // plain: read by the subset parser at any size
  text += "  - {name: last, priority: 999999, link: &x a}\n";  // an anchor: outside the subset
  auto c = check(text);
  INFO(test::dump(c));
  CHECK(has(c, line + 1, "a mapping over 2 MiB must be plain YAML"));
  CHECK(c.diagnostics.error_count() == 1);
}

TEST_CASE("unparsed: drop unless the mapping says pass, is compiled into the bank meta, and a change is a diff") {
  const std::string base = test::kLinks;
  auto none = check(base);
  REQUIRE(none.ok());
  CHECK(none.mapping->unparsed == core::Unparsed::kDrop);
  CHECK(none.compiled->meta.unparsed == CLV_UNPARSED_DROP);
  auto pass = check(base + "unparsed: pass\n");
  INFO(test::dump(pass));
  REQUIRE(pass.ok());
  CHECK(pass.mapping->unparsed == core::Unparsed::kPass);
  CHECK(pass.compiled->meta.unparsed == CLV_UNPARSED_PASS);
  auto diff = core::diff_mappings(&*none.mapping, *pass.mapping, 10);
  REQUIRE(diff.size() == 1);
  CHECK(diff[0].detail == "drop -> pass");
  auto typo = check(base + "unparsed: accept\n");
  CHECK(has(typo, 13, "'accept' is not one of: drop, pass"));
}

// Memory, asserted where it is exact: a 16 MiB mapping holds up to 262k rules,
// and every 100 bytes of Rule is 26 MB of clovisd's apply at that size
// (docs/BENCHMARKS.md, "Bounded apply"). It was 416 bytes with the L7 and
// interface fields as std::optional<std::string>.
TEST_CASE("the model stays compact: a rule is at most 288 bytes") {
  CHECK(sizeof(core::Rule) <= 288);
  CHECK(sizeof(core::Match) <= 192);
}

namespace {

size_t count_nodes(core::YamlNode n) {
  size_t c = 1;
  for (size_t i = 0; i < n.size(); ++i)
    c += n.is_sequence() ? count_nodes(n.item(i)) : count_nodes(n.entry(i).key) + count_nodes(n.entry(i).value);
  return c;
}

// kLinks (12 lines), `rules:` and n one-line rules; rule i is on line 14 + i.
std::string many_rules(size_t n) {
  std::string s = std::string(test::kLinks) + "rules:\n";
  for (size_t i = 0; i < n; ++i) s += fmt::format("- {{name: r{}, priority: {}, policy: p}}\n", i, i + 1);
  return s;
}

}  // namespace

// The bounds that keep checking any mapping up to kMaxMappingBytes within
// clovisd's memory bound (docs/BENCHMARKS.md, "Bounded apply"): refused with
// the position of the first item over the limit, the limit, and what to do.
TEST_CASE("a mapping of more rules than kMaxRulesPerMapping is refused at the first rule over, unread") {
  REQUIRE(check(many_rules(core::kMaxRulesPerMapping)).diagnostics.error_count() == 0);
  auto c = check(many_rules(core::kMaxRulesPerMapping + 1));
  INFO(test::dump(c));
  REQUIRE(c.diagnostics.error_count() == 1);
  CHECK(has(c, 14 + static_cast<int>(core::kMaxRulesPerMapping),
            fmt::format("{} rules, over the limit of {}", core::kMaxRulesPerMapping + 1, core::kMaxRulesPerMapping)));
  CHECK(has(c, 0, "LIMITS"));
  CHECK_FALSE(c.mapping);
}

TEST_CASE("a document of more than kMaxYamlNodes YAML nodes is refused where it crosses the limit") {
  // One rule whose dport list alone is the limit: 2 bytes a node.
  std::string s =
      std::string(test::kLinks) + "rules:\n- {name: r, priority: 1, policy: p, match: {proto: tcp, dport: [";
  const size_t before =
      count_nodes(core::YamlDoc::parse(s + "]}}\n")->root());  // the list's items come after all these
  const size_t at = s.size() - s.rfind('\n');                  // the first item's 1-based column
  for (size_t i = 0; i < core::kMaxYamlNodes; ++i) s += i ? ",1" : "1";
  s += "]}}\n";
  auto c = check(s);
  INFO(test::dump(c).substr(0, 2000));
  REQUIRE(c.diagnostics.error_count() == 1);
  const auto& d = c.diagnostics.items()[0];
  CHECK(d.message.find(fmt::format("more than {} YAML nodes", core::kMaxYamlNodes)) != std::string::npos);
  CHECK(d.hint.find("LIMITS") != std::string::npos);
  CHECK(d.loc.line == 14);
  // At the first node past the limit: an item of the list, 2 bytes apart.
  CHECK(d.loc.col == static_cast<int>(at + 2 * (core::kMaxYamlNodes - before)));
  CHECK_FALSE(c.mapping);
}

TEST_CASE("HTTP rules, headers, labels and members over their limits are refused at the first item over") {
  SUBCASE("rules that match on HTTP") {
    std::string s = std::string(test::kLinks) + "rules:\n", line;
    for (size_t i = 0; i <= core::kMaxL7RulesPerMapping; ++i)
      s += line =
          fmt::format("- {{name: r{}, priority: {}, policy: p, match: {{host: h{}.example.com}}}}\n", i, i + 1, i);
    auto c = check(s);
    INFO(test::dump(c));
    REQUIRE(c.diagnostics.error_count() == 1);
    // At the host key of rule kMaxL7RulesPerMapping (0-based), on line 14 + that.
    CHECK(has(c, 14 + static_cast<int>(core::kMaxL7RulesPerMapping),
              fmt::format("more than {} rules match on HTTP", core::kMaxL7RulesPerMapping)));
    CHECK(c.diagnostics.items()[0].loc.col == static_cast<int>(line.find("host:") + 1));
  }
  SUBCASE("headers in all rules together") {
    std::string s = std::string(test::kLinks) + "rules:\n";
    const size_t per_rule = 64, rules = core::kMaxHeadersPerMapping / per_rule;
    for (size_t i = 0; i <= rules; ++i) {  // one rule more than the limit allows
      s += fmt::format("- {{name: r{}, priority: {}, policy: p, match: {{host: a.example.com, headers: {{", i, i + 1);
      for (size_t h = 0; h < per_rule; ++h) s += fmt::format("{}x-h{}: v", h ? ", " : "", h);
      s += "}}}\n";
    }
    auto c = check(s);
    INFO(test::dump(c).substr(0, 2000));
    REQUIRE(c.diagnostics.error_count() == 1);
    CHECK(has(c, 14 + static_cast<int>(rules),
              fmt::format("{} headers in the mapping's rules so far, over the limit of {}",
                          core::kMaxHeadersPerMapping + per_rule, core::kMaxHeadersPerMapping)));
  }
  SUBCASE("labels of a link, members of a policy") {
    std::string labels, members;
    for (size_t i = 0; i <= core::kMaxLabelsPerLink; ++i) labels += fmt::format("{}l{}", i ? ", " : "", i);
    for (int i = 0; i <= 16; ++i) members += i % 2 ? ", b" : (i ? ", a" : "a");
    auto c =
        check(fmt::format("version: 1\nlinks:\n  - {{name: a, interface: wan0, gateway: 192.0.2.1, labels: [{}]}}\n"
                          "  - {{name: b, interface: wan1, gateway: 198.51.100.1}}\npolicies:\n"
                          "  - {{name: p, failover: [{}]}}\ndefault: {{policy: p}}\n",
                          labels, members));
    INFO(test::dump(c));
    CHECK(has(c, 3,
              fmt::format("{} labels, over the limit of {}", core::kMaxLabelsPerLink + 1, core::kMaxLabelsPerLink)));
    CHECK(has(c, 6, "17 members, over the limit of 16"));
  }
}
