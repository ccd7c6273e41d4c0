// Synthetic WAN mappings for the core benchmark: rule sets of a chosen size
// and shape mix, rendered as wan.yaml text (so load() is measured on real
// input), and tuples drawn from them (inside a given rule, or in no rule).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/abi.hpp"

namespace clovis::bench {

// splitmix64: tiny, fast and identical everywhere, so a printed seed
// reproduces the same mapping and tuples on any toolchain.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint32_t below(uint32_t n) { return static_cast<uint32_t>(next() % n); }      // [0, n)
  uint32_t range(uint32_t lo, uint32_t hi) { return lo + below(hi - lo + 1); }  // [lo, hi]

 private:
  uint64_t s_;
};

// The shape mixes measured.
//   simple: every rule is dst /24 or /32 + tcp|udp + one dport (2 shapes).
//   mixed:  dst /16|/24|/32, optional src /16, single ports, aligned pairs,
//           unaligned ranges (3 boxes each), proto lists, no port (36 shapes
//           from 1k rules up).
enum class Mix { kSimple, kMixed };

const char* to_string(Mix m);

struct Prefix4 {
  uint32_t addr = 0;  // host byte order, host bits clear
  uint8_t plen = 0;   // 0: the field is not matched
};

struct PortSpan {
  uint16_t lo = 0;
  uint16_t hi = 0;
};

// One generated rule, kept alongside its YAML so tuples can be drawn inside it.
struct RuleSpec {
  Prefix4 src, dst;
  std::vector<uint8_t> protos;   // empty: any
  std::vector<PortSpan> dports;  // empty: any
  int target = 0;                // index into the targets the YAML renders
};

struct Generated {
  std::string yaml;
  std::vector<RuleSpec> rules;  // in file order = priority order
};

// N rules; addresses are drawn from 1.0.0.0-223.255.255.255, so a destination
// in 240.0.0.0/4 is in no rule.
Generated generate_mapping(Mix mix, size_t n_rules, uint64_t seed);

// A tuple inside rule r (it may still be won by an earlier, overlapping rule).
clv_tuple tuple_in(const RuleSpec& r, Rng& rng);

// A tuple no rule matches: the walk probes every shape and finds nothing.
clv_tuple tuple_miss(Rng& rng);

// The peer suite's rule sets (bench/peers/run.py, issue 6), byte for byte:
// n rules `match: {dst: X/32}`, one flow mapping per line, over two route
// links l0/l1; n-1 filler /32s in 10.128.0.0/9 that never match, alternating
// links, and the measured flow's rule (203.0.113.10 -> l1) at index `pos`.
struct PeerRules {
  size_t n = 0, pos = 0;
};
// Where run.py's seeded `/random` variant puts the measured rule (its
// documented positions), or the middle for other sizes.
size_t peers_random_pos(size_t n);
std::string peers_mapping(PeerRules r);          // clovis_mapping(rules, "route")
std::string peers_nft_script(PeerRules r);       // nft_script(rules): one ipv4_addr : mark map
std::string peers_iptables_script(PeerRules r);  // iptables_script(rules, conntrack=False)

}  // namespace clovis::bench
