// core::diff_mappings: semantic differences between two mappings.
#include <algorithm>

#include <doctest/doctest.h>

#include "core/diff.hpp"
#include "core/loader.hpp"
#include "helpers.hpp"
#include "random_mapping.hpp"

using namespace clovis;

namespace {

core::Mapping load(const std::string& text) {
  auto m = core::load_mapping(text);
  REQUIRE_MESSAGE(m, (m ? "" : m.error().items()[0].message));
  return std::move(m).value();
}

const char* kBefore = R"(version: 1
links:
  - {name: mpls, interface: wan0, gateway: 192.0.2.1, mode: route, labels: [low-latency]}
  - {name: bb, interface: wan1, gateway: 198.51.100.1, mode: redirect, snat: masquerade}
  - {name: lte, interface: wwan0, gateway: 100.64.0.1, mode: redirect}
policies:
  - {name: p, failover: [mpls, bb]}
  - {name: gone, failover: [lte]}
rules:
  - {name: web, priority: 20, match: {proto: tcp, dport: 443}, policy: p}
  - {name: voice, priority: 10, match: {proto: udp, dport: 5060}, link: mpls}
  - {name: old, priority: 30, match: {dst: 10.9.0.0/16}, action: drop}
default: {link: mpls}
)";

const core::DiffItem* find(const std::vector<core::DiffItem>& d, const std::string& kind, const std::string& name) {
  auto it = std::find_if(d.begin(), d.end(), [&](const auto& x) { return x.kind == kind && x.name == name; });
  return it == d.end() ? nullptr : &*it;
}

}  // namespace

TEST_CASE("no previous mapping: everything is added, in order") {
  auto after = load(kBefore);
  auto d = core::diff_mappings(nullptr, after);
  REQUIRE(d.size() == 3 + 2 + 3 + 1);
  CHECK(d[0].kind == "link");
  CHECK(d[0].name == "mpls");
  CHECK(d[0].change == "added");
  CHECK(d[3].kind == "policy");
  CHECK(d[5].kind == "rule");
  CHECK(d[5].name == "web");
  CHECK(d[8].kind == "default");
  CHECK(d[8].change == "added");
  CHECK(d[8].detail == "link mpls");
}

TEST_CASE("the same mapping reformatted is no change") {
  auto a = load(kBefore);
  std::string reformatted = R"(version: 1
default: {link: mpls}
links:
  - name: mpls
    labels: [low-latency]
    mode: route
    gateway: 192.0.2.1
    interface: wan0
  - {interface: wan1, name: bb, gateway: 198.51.100.1, mode: redirect, snat: masquerade}
  - {name: lte, interface: wwan0, gateway: 100.64.0.1, mode: redirect}
policies:
  - {name: p, failover: [mpls, bb]}
  - {name: gone, failover: [lte]}
rules:
  - {name: web, priority: 20, match: {dport: 443, proto: tcp}, policy: p}
  - {name: voice, priority: 10, match: {proto: udp, dport: 5060}, link: mpls}
  - {name: old, priority: 30, match: {dst: 10.9.0.0/16}, action: drop}
)";
  CHECK(core::diff_mappings(&a, load(reformatted)).empty());
  CHECK(core::diff_mappings(&a, a).empty());
}

TEST_CASE("changes say what changed") {
  auto a = load(kBefore);
  std::string text = kBefore;
  auto replace = [&](const std::string& from, const std::string& to) {
    auto at = text.find(from);
    REQUIRE(at != std::string::npos);
    text.replace(at, from.size(), to);
  };
  replace("gateway: 192.0.2.1, mode: route", "gateway: 192.0.2.9, mode: route");
  replace("labels: [low-latency]", "labels: [low-latency, mpls]");
  replace("snat: masquerade", "snat: 198.51.100.2");
  replace("{name: p, failover: [mpls, bb]}", "{name: p, failover: [bb, mpls], last-resort: drop}");
  replace("  - {name: gone, failover: [lte]}\n", "");
  replace("priority: 20, match: {proto: tcp, dport: 443}", "priority: 25, match: {proto: tcp, dport: [443, 8443]}");
  replace("match: {proto: udp, dport: 5060}, link: mpls", "match: {proto: udp, dport: 5060}, link: bb");
  replace("  - {name: old, priority: 30, match: {dst: 10.9.0.0/16}, action: drop}\n",
          "  - {name: new, priority: 40, match: {src: 10.1.0.0/24}, action: bypass}\n");
  replace("default: {link: mpls}", "default: {action: bypass}");
  auto d = core::diff_mappings(&a, load(text));

  auto* mpls = find(d, "link", "mpls");
  REQUIRE(mpls);
  CHECK(mpls->change == "changed");
  CHECK(mpls->detail == "gateway 192.0.2.1 -> 192.0.2.9, labels low-latency -> low-latency, mpls");
  auto* bb = find(d, "link", "bb");
  REQUIRE(bb);
  CHECK(bb->detail == "snat masquerade -> 198.51.100.2");
  CHECK_FALSE(find(d, "link", "lte"));  // unchanged: not listed

  auto* p = find(d, "policy", "p");
  REQUIRE(p);
  CHECK(p->detail.find("members mpls, bb tier 2 -> bb, mpls tier 2") == 0);
  CHECK(p->detail.find("last-resort default -> drop") != std::string::npos);
  auto* gone = find(d, "policy", "gone");
  REQUIRE(gone);
  CHECK(gone->change == "removed");

  auto* web = find(d, "rule", "web");
  REQUIRE(web);
  CHECK(web->detail == "priority 20 -> 25, match.dport 443 -> 443, 8443");
  auto* voice = find(d, "rule", "voice");
  REQUIRE(voice);
  CHECK(voice->detail == "target link mpls -> link bb");
  CHECK(find(d, "rule", "old")->change == "removed");
  CHECK(find(d, "rule", "new")->change == "added");

  auto* def = find(d, "default", "default");
  REQUIRE(def);
  CHECK(def->change == "changed");
  CHECK(def->detail == "link mpls -> bypass");

  // Order: the new mapping's entries first, removed ones after, kind by kind.
  std::vector<std::string> order;
  for (const auto& x : d) order.push_back(x.kind + ":" + x.name + ":" + x.change);
  CHECK(order == std::vector<std::string>{"link:mpls:changed", "link:bb:changed", "policy:p:changed",
                                          "policy:gone:removed", "rule:web:changed", "rule:voice:changed",
                                          "rule:new:added", "rule:old:removed", "default:default:changed"});
}

TEST_CASE("a renamed link is one removed and one added") {
  auto a = load(kBefore);
  std::string text = kBefore;
  text.replace(text.find("name: lte"), 9, "name: 4g");
  text.replace(text.find("failover: [lte]"), 15, "failover: [4g]");
  auto d = core::diff_mappings(&a, load(text));
  REQUIRE(find(d, "link", "4g"));
  CHECK(find(d, "link", "4g")->change == "added");
  CHECK(find(d, "link", "lte")->change == "removed");
  CHECK(find(d, "policy", "gone")->detail == "members lte -> 4g");
}

TEST_CASE("proxy on-drop: a change shows, spelling the default out does not") {
  auto a = load(kBefore);
  const std::string before = kBefore;
  auto deny = load(before + "proxy: {on-drop: deny}\n");
  auto d = core::diff_mappings(&a, deny);
  REQUIRE(d.size() == 1);
  CHECK(d[0].kind == "proxy");
  CHECK(d[0].name == "proxy");
  CHECK(d[0].change == "changed");
  CHECK(d[0].detail == "on-drop allow -> deny");

  auto back = core::diff_mappings(&deny, a);
  REQUIRE(back.size() == 1);
  CHECK(back[0].detail == "on-drop deny -> allow");

  CHECK(core::diff_mappings(&a, load(before + "proxy: {on-drop: allow}\n")).empty());
  CHECK(core::diff_mappings(&deny, load(before + "proxy:\n  on-drop: deny\n")).empty());

  // Against no mapping: listed last, and only when it is not the default.
  auto first = core::diff_mappings(nullptr, deny);
  REQUIRE(first.size() == 3 + 2 + 3 + 1 + 1);
  CHECK(first.back().kind == "proxy");
  CHECK(first.back().change == "added");
  CHECK(first.back().detail == "on-drop deny");
  CHECK(core::diff_mappings(nullptr, a).size() == 3 + 2 + 3 + 1);
}

TEST_CASE("auto-rollback: added, changed and removed show, with its 'after'") {
  const std::string base = kBefore;
  const auto plain = load(base);
  const auto guarded = load(base + "auto-rollback: {after: 45s}\n");
  const auto longer = load(base + "auto-rollback: {after: 1m}\n");
  auto added = core::diff_mappings(&plain, guarded);
  REQUIRE(find(added, "auto-rollback", "auto-rollback"));
  CHECK(find(added, "auto-rollback", "auto-rollback")->change == "added");
  CHECK(find(added, "auto-rollback", "auto-rollback")->detail == "after 45s");
  auto changed = core::diff_mappings(&guarded, longer);
  REQUIRE(changed.size() == 1);
  CHECK(changed[0].detail == "after 45s -> after 60s");
  auto removed = core::diff_mappings(&longer, plain);
  REQUIRE(removed.size() == 1);
  CHECK(removed[0].change == "removed");
  CHECK(core::diff_mappings(&guarded, load(base + "auto-rollback: {after: 45000ms}\n")).empty());
}

TEST_CASE("a diff with fewer details finds and classifies the same changes") {
  const uint64_t seed = test::seed_from_env();
  MESSAGE("seed " << seed << " (rerun with CLOVIS_SEED=" << seed << ")");
  test::RandomMapping gen(seed);
  size_t changed = 0;
  for (int round = 0; round < 120; ++round) {
    const bool l7 = round % 2 == 1;
    core::Mapping a = gen.mapping(5 + round % 40, l7), b = gen.mapping(5 + (round * 7) % 40, l7);
    if (round % 3 == 0) b.rules = a.rules;  // mostly the same rules, a few edited
    for (size_t i = 0; i < b.rules.size(); i += 5) {
      auto& m = b.rules[i].match;
      if (round % 4 == 1) m.host = m.host ? std::nullopt : std::optional<std::string>("any");  // reads the same
      if (round % 4 == 2) std::swap(m.src, m.dst);
      if (round % 4 == 3) b.rules[i].priority += 1;
    }
    const auto full = core::diff_mappings(&a, b);
    for (size_t limit : {size_t{0}, size_t{1}, full.size() / 2, full.size()}) {
      const auto cut = core::diff_mappings(&a, b, limit);
      INFO("round " << round << ", detail for " << limit << " of " << full.size());
      REQUIRE(cut.size() == full.size());
      for (size_t i = 0; i < full.size(); ++i) {
        CHECK(cut[i].kind == full[i].kind);
        CHECK(cut[i].name == full[i].name);
        CHECK(cut[i].change == full[i].change);
        // Items past the limit carry no detail, except the few small
        // sections (default, proxy) that always do.
        if (i < limit || full[i].kind == "default" || full[i].kind == "proxy") CHECK(cut[i].detail == full[i].detail);
        else CHECK(cut[i].detail.empty());
      }
    }
    changed +=
        static_cast<size_t>(std::count_if(full.begin(), full.end(), [](auto& d) { return d.change == "changed"; }));
  }
  CHECK(changed > 100);  // the comparison was exercised
}

TEST_CASE("an unset match value and one that reads 'any' are no change, in detail or not") {
  auto a = load(kBefore);
  auto b = a;
  b.rules[0].match.host = "any";
  CHECK(core::diff_mappings(&a, b).empty());
  CHECK(core::diff_mappings(&a, b, 0).empty());
}
