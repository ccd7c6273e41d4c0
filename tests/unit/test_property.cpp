// The compiled tables (what the kernel reads) must classify exactly like the
// naive reference scan, for random rule sets and random flows and requests.
#include <doctest/doctest.h>

#include "core/classifier.hpp"
#include "core/compiled.hpp"
#include "core/diagnostics.hpp"
#include "core/reference.hpp"
#include "core/validate.hpp"
#include "random_mapping.hpp"

using namespace clovis;

namespace {

// Naive link choice: lowest tier with a usable link, then cumulative weights.
int naive_pick(const clv_policy& p, const clv_link_state& st, uint8_t family, uint32_t hash) {
  uint64_t usable = st.up & (family == CLV_AF_INET6 ? st.v6 : st.v4);
  if (p.flags & CLV_POL_AVOID_DEGRADED) {
    bool any_healthy = false;
    for (int i = 0; i < p.n_members; ++i) any_healthy |= ((usable & ~st.degraded) >> p.members[i].link) & 1;
    if (any_healthy) usable &= ~st.degraded;
  }
  for (int tier = 0; tier < 256; ++tier) {
    std::vector<int> in;
    uint32_t total = 0;
    for (int i = 0; i < p.n_members; ++i)
      if (p.members[i].tier == tier && ((usable >> p.members[i].link) & 1) && p.members[i].weight)
        in.push_back(i), total += p.members[i].weight;
    if (in.empty()) continue;
    uint32_t x = hash % total;
    for (int i : in) {
      if (x < p.members[i].weight) return i;
      x -= p.members[i].weight;
    }
  }
  return -1;
}

}  // namespace

TEST_CASE("compiled tables agree with the naive reference on random rule sets") {
  const uint64_t seed = test::seed_from_env();
  MESSAGE("property test seed: " << seed << " (rerun with CLOVIS_SEED=" << seed << ")");
  test::RandomMapping gen(seed);
  int sets = 0, skipped = 0;
  long checks = 0, matched = 0, l7_wins = 0;
  for (int round = 0; round < 160; ++round) {
    const bool l7 = round % 2 == 1;
    const int n_rules = round % 4 == 0 ? 1 + round % 7 : 10 + (round * 37) % 150;
    core::Mapping m = gen.mapping(n_rules, l7);
    auto diags = core::validate(m);
    if (diags.has_errors())
      FAIL("generator made an invalid mapping: " << core::format_diagnostic(diags.items()[0], "gen"));
    auto out = core::compile(m, {});
    if (out.diagnostics.has_errors()) {  // e.g. too many shapes: legitimately rejected
      ++skipped;
      continue;
    }
    ++sets;
    const core::CompiledRules& rules = out.rules;
    core::Classifier cls(rules);
    for (int i = 0; i < 800; ++i) {
      core::FlowQuery q = gen.flow(m, l7);
      clv_link_state st = rules.all_up_state();
      st.up &= ~(static_cast<uint64_t>(i % 8) & 7);  // vary which links are down
      st.degraded = static_cast<uint64_t>((i / 8) % 8);
      auto d = cls.decide(q, st);
      auto ref = core::reference_match(m, q);
      ++checks;
      const std::string got = d.rule_id ? rules.rules[*d.rule_id].name : "?";
      const std::string want = ref ? m.rules[*ref].name : "default";
      if (got != want) {
        FAIL("seed " << seed << " round " << round << " flow " << i << ": tables chose " << got << ", reference chose "
                     << want);
      }
      matched += ref.has_value();
      l7_wins += d.by_l7;
      const core::Target& t = ref ? m.rules[*ref].target : m.default_target.value_or(core::Target{});
      if (!ref && !m.default_target) {
        CHECK(d.verdict == core::Verdict::kNotSteered);
        continue;
      }
      if (t.kind == core::TargetKind::kDrop) CHECK(d.verdict == core::Verdict::kDrop);
      if (t.kind == core::TargetKind::kBypass) CHECK(d.verdict == core::Verdict::kBypass);
      if (t.kind == core::TargetKind::kPolicy || t.kind == core::TargetKind::kLink) {
        REQUIRE(d.policy >= 0);
        const clv_policy& p = rules.policies[d.policy];
        int want_member = naive_pick(p, st, q.tuple.family, clv_flow_hash(&q.tuple, p.sticky));
        CHECK(d.member == want_member);
      }
    }
  }
  MESSAGE(sets << " rule sets, " << skipped << " rejected by limits, " << checks << " flows, " << matched
               << " matched a rule, " << l7_wins << " decided by L7");
  CHECK(sets >= 110);           // the rest exceed the shape limit, which is itself checked
  CHECK(matched > checks / 4);  // the generator must exercise matches, not only misses
  CHECK(l7_wins > 100);
}
