// Applies write only what changed into the shadow bank: after every apply,
// read back from the kernel, the active bank of clv_rules holds exactly the
// new compiled entries and the other bank exactly the previous ones — through
// repeats, small edits, shifted rule ids, growth, shrinking and new shapes.
#include <bpf/bpf.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <string>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include "kernel_site.hpp"
#include "netns_guard.hpp"
#include "random_mapping.hpp"

using namespace clovis;

namespace {

using Entries = std::map<std::string, std::string>;  // key bytes -> value bytes

template <typename T>
std::string bytes(const T& x) {
  return std::string(reinterpret_cast<const char*>(&x), sizeof x);
}

// What the kernel holds in one bank.
Entries bank_in_kernel(int fd, uint8_t bank) {
  Entries out;
  clv_rule_key k{}, next{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    clv_rule_val v{};
    REQUIRE(bpf_map_lookup_elem(fd, &next, &v) == 0);
    if (next.bank == bank) out.emplace(bytes(next), bytes(v));
    k = next;
    prev = &k;
  }
  return out;
}

// n rules of one /32 each (one or two shapes: random mappings of more than a
// few dozen rules run out of shapes), on the links and policy of `base`.
core::Mapping many(const core::Mapping& base, int n, int first) {
  core::Mapping m = base;
  for (int i = 0; i < n; ++i) {
    core::Rule r;
    r.name = "n" + std::to_string(first + i);
    r.priority = static_cast<uint32_t>(100000 + first + i);
    const uint32_t host = static_cast<uint32_t>(first + i);
    r.match.dst.push_back(
        *core::Cidr::parse(fmt::format("10.{}.{}.{}/32", 64 + (host >> 16 & 63), host >> 8 & 255, host & 255)));
    if (i % 3 == 0) r.match.proto.push_back(6);
    r.target =
        i % 2 ? core::Target{core::TargetKind::kPolicy, "p", {}} : core::Target{core::TargetKind::kLink, "l0", {}};
    m.rules.push_back(r);
  }
  return m;
}

Entries expected(const core::CompiledRules& c, uint8_t bank) {
  Entries out;
  for (auto [k, v] : c.entries) {
    k.bank = bank;
    out.emplace(bytes(k), bytes(v));
  }
  return out;
}

}  // namespace

TEST_CASE("kernel: each rule bank holds exactly its rule set after every apply (delta writes)") {
  CLOVIS_REQUIRE_ROOT_OR_SKIP();
  test::KernelSite site;
  REQUIRE_MESSAGE(site.ok(), site.error());
  const int fd = bpf_obj_get((site.pin_dir() + "/maps/clv_rules").c_str());
  const int active_fd = bpf_obj_get((site.pin_dir() + "/maps/clv_active").c_str());
  const int meta_fd = bpf_obj_get((site.pin_dir() + "/maps/clv_meta").c_str());
  const int lstate_fd = bpf_obj_get((site.pin_dir() + "/maps/clv_lstate").c_str());
  REQUIRE(active_fd >= 0);
  REQUIRE(meta_fd >= 0);
  REQUIRE(lstate_fd >= 0);
  REQUIRE(fd >= 0);
  const uint64_t seed = test::seed_from_env();
  MESSAGE("delta-write seed: " << seed << " (rerun with CLOVIS_SEED=" << seed << ")");
  test::RandomMapping gen(seed);

  std::vector<core::Mapping> seq;
  const core::Mapping a = many(gen.mapping(20, false), 3000, 0), b = many(gen.mapping(30, false), 5000, 2000);
  seq.push_back(a);
  seq.push_back(b);
  seq.push_back(a);  // the shadow bank already holds it: nothing to write
  seq.push_back(a);  // and again, into the other bank
  core::Mapping edited = a;
  edited.rules[7].priority += 1000000;              // a value changes
  edited.rules.erase(edited.rules.begin() + 2500);  // entries go, rule ids shift
  edited.rules.push_back(many(a, 1, 9000).rules.back());
  seq.push_back(edited);
  seq.push_back(edited);
  core::Mapping few = a;
  few.rules.resize(3);
  seq.push_back(few);  // shrinks: most of the bank is deleted
  seq.push_back(many(gen.mapping(10, false), 8000, 500));
  seq.push_back(b);
  for (int i = 0; i < 12; ++i)
    seq.push_back(i % 2 ? gen.mapping(5 + i * 3, false) : many(gen.mapping(8, false), i * 300, i * 7));
  const core::CompiledRules* prev = nullptr;
  int applied = 0;
  for (size_t i = 0; i < seq.size(); ++i) {
    if (core::compile(seq[i], {}).diagnostics.has_errors()) continue;
    auto before = site.dp().active_bank();
    REQUIRE(before);
    const Entries held = bank_in_kernel(fd, static_cast<uint8_t>(*before ^ 1));
    const core::CompiledRules& now = site.apply(seq[i]);
    ++applied;
    auto active = site.dp().active_bank();
    REQUIRE(active);
    const auto bank = static_cast<uint8_t>(*active);
    INFO("step " << i << ", seed " << seed);
    {
      // What the agent answers from memory (a proxy's Check) is the kernel's.
      const uint32_t zero = 0;
      uint32_t kbank = 9;
      clv_bank_meta meta{};
      clv_link_state kst{};
      REQUIRE(bpf_map_lookup_elem(active_fd, &zero, &kbank) == 0);
      REQUIRE(bpf_map_lookup_elem(meta_fd, &kbank, &meta) == 0);
      REQUIRE(bpf_map_lookup_elem(lstate_fd, &zero, &kst) == 0);
      auto mine = site.dp().active_rules();
      REQUIRE(mine);
      CHECK(mine->bank == kbank);
      CHECK(mine->generation == meta.generation);
      CHECK(meta.generation == now.generation);
      auto st = site.dp().link_state();
      REQUIRE(st);
      CHECK(std::memcmp(&*st, &kst, sizeof kst) == 0);
    }
    const Entries want = expected(now, bank);
    CHECK(bank_in_kernel(fd, bank) == want);
    // Only the keys the new set lacks were deleted (a full rewrite deletes all).
    size_t vanished = 0;
    for (const auto& [k, v] : held) vanished += !want.count(k);
    CHECK(site.last_apply().entries_deleted == vanished);
    if (prev) CHECK(bank_in_kernel(fd, bank ^ 1) == expected(*prev, bank ^ 1));
    prev = &now;
  }
  CHECK(applied >= 10);
  for (int f : {fd, active_fd, meta_fd, lstate_fd}) close(f);
}

TEST_CASE("kernel: a pinned counters' map of an older size is replaced on load; flows and rules are kept") {
  CLOVIS_REQUIRE_ROOT_OR_SKIP();
  test::KernelSite site;
  REQUIRE_MESSAGE(site.ok(), site.error());
  site.apply(std::string(R"(version: 1
links:
  - {name: d, interface: wan0, gateway: 192.0.2.1, mode: redirect}
default: {link: d}
)"));
  clv_flow_key k{};
  k.family = CLV_AF_INET;
  k.proto = 17;
  k.sport = 1234;
  clv_flow f{};
  f.action = CLV_ACT_BYPASS;
  REQUIRE(bpf_map_update_elem(site.dp().flows_fd(), &k, &f, BPF_ANY) == 0);
  // What an older release left pinned: two counters fewer.
  const std::string stats = site.pin_dir() + "/maps/clv_stats";
  REQUIRE(unlink(stats.c_str()) == 0);
  int old = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "clv_stats", 4, 8, CLV_STAT_MAX - 2, nullptr);
  REQUIRE(old >= 0);
  REQUIRE(bpf_obj_pin(old, stats.c_str()) == 0);
  close(old);

  agent::kernel::BpfOptions o;
  o.pin_dir = site.pin_dir();
  auto dp = agent::kernel::BpfDataplane::open(o);
  REQUIRE_MESSAGE(dp, (dp ? "" : dp.error().what()));
  auto c = (*dp)->counters();
  REQUIRE(c);
  CHECK(c->size() == CLV_STAT_MAX);
  clv_flow back{};
  CHECK(bpf_map_lookup_elem((*dp)->flows_fd(), &k, &back) == 0);  // the flow table is the same map
  int fd = bpf_obj_get(stats.c_str());
  REQUIRE(fd >= 0);
  bpf_map_info info{};
  uint32_t len = sizeof info;
  REQUIRE(bpf_obj_get_info_by_fd(fd, &info, &len) == 0);
  CHECK(info.max_entries == CLV_STAT_MAX);
  close(fd);
}
