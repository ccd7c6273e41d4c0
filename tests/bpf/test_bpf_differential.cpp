// The kernel classifies exactly like the simulator: random rule sets, random
// packets through BPF_PROG_TEST_RUN, the flow entry the program writes
// compared with Classifier::decide on the same compiled tables.
#include <cstring>

#include <doctest/doctest.h>

#include "kernel_site.hpp"
#include "netns_guard.hpp"
#include "packet.hpp"
#include "random_mapping.hpp"

using namespace clovis;

TEST_CASE("kernel and simulator agree on random rule sets (differential)") {
  CLOVIS_REQUIRE_ROOT_OR_SKIP();
  test::KernelSite site;
  REQUIRE_MESSAGE(site.ok(), site.error());
  const uint64_t seed = test::seed_from_env();
  MESSAGE("differential seed: " << seed << " (rerun with CLOVIS_SEED=" << seed << ")");
  test::RandomMapping gen(seed);
  long packets = 0, steered = 0, rule_hits = 0, sets = 0;
  const int kSets = 80, kPackets = 3200;
  for (int round = 0; round < kSets; ++round) {
    core::Mapping m = gen.mapping(round % 5 == 0 ? 3 : 20 + (round * 53) % 200, false);
    // Interfaces the generator names must exist in the site.
    if (core::compile(m, {}).diagnostics.has_errors()) continue;
    const core::CompiledRules& rules = site.apply(m);
    ++sets;
    clv_link_state st = rules.all_up_state();
    st.up &= ~(static_cast<uint64_t>(round % 4) & 3);  // some links down
    st.degraded = static_cast<uint64_t>((round / 4) % 8);
    site.set_link_state(st);
    site.clear_flows();
    core::Classifier cls(rules);
    for (int i = 0; i < kPackets; ++i) {
      core::FlowQuery q = gen.flow(m, false);
      clv_tuple& t = q.tuple;
      const bool ports = t.proto == 6 || t.proto == 17;
      if (!ports) t.sport = t.dport = 0;  // what the kernel sees for other protocols
      if (t.family == CLV_AF_INET && t.proto == 58) t.proto = 1;
      if (t.family == CLV_AF_INET6 && t.proto == 1) t.proto = 58;
      test::PacketSpec p;
      p.tuple = t;
      p.icmp_id = static_cast<uint16_t>(i);
      const clv_flow_key key = test::flow_key_of(t, p.icmp_id);
      clv_flow f{};
      if (site.flow(key, &f)) continue;  // a repeated tuple: already compared
      auto r = site.run(test::build_packet(p), q.iif, t.mark);
      ++packets;
      REQUIRE_MESSAGE(site.flow(key, &f), "no flow entry written (seed " << seed << ")");
      auto d = cls.decide(q, st);
      REQUIRE(d.rule_id);
      if (f.rule_id != *d.rule_id) {
        FAIL("seed " << seed << " round " << round << " packet " << i << ": kernel rule " << rules.rules[f.rule_id].name
                     << ", simulator rule " << rules.rules[*d.rule_id].name);
      }
      rule_hits += !rules.rules[f.rule_id].is_default;
      switch (d.verdict) {
        case core::Verdict::kSteer:
          ++steered;
          REQUIRE(f.action == CLV_ACT_STEER);
          REQUIRE(f.link == d.link);
          CHECK(r.retval == (rules.links[d.link].mode == CLV_MODE_REDIRECT ? 7 : -1));
          break;
        case core::Verdict::kDrop:
          REQUIRE(f.action == CLV_ACT_DROP);
          CHECK(r.retval == 2);
          break;
        case core::Verdict::kBypass:
          REQUIRE(f.action == CLV_ACT_BYPASS);
          CHECK(r.retval == -1);
          break;
        case core::Verdict::kNotSteered:
          REQUIRE(f.action == CLV_ACT_NONE);
          CHECK(r.retval == -1);
          break;
      }
    }
  }
  MESSAGE(sets << " rule sets, " << packets << " packets, " << rule_hits << " matched a rule, " << steered
               << " steered: kernel == simulator for all");
  CHECK(packets >= 100000);
  CHECK(rule_hits > packets / 4);
}
