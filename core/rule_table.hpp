// RuleTable: user space's copy of the kernel's rule map (clv_rules), probed
// once per shape by the classifier and by the compiler's shadow check. The
// kernel hashes with its own function; nothing here reaches the ABI.
//
// Open addressing with linear probing over flat arrays: a power-of-two slot
// array kept at most half full, each slot holding the key's 64-bit hash (0:
// empty) and an index into the entries, which stay in insertion order.
// Nearly every probe of a tuple-space walk misses, so a small blocked Bloom
// filter (two bits of one word per key, 16-32 bits per key, about 1-2% false
// positives) answers most of them without touching the slot array, and
// without the unpredictable branches of walking a probe run.
// std::unordered_map with a custom hasher does not cache hash codes, so its
// probes rehashed neighbouring nodes; that was half of the classifier's time.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "abi.hpp"

namespace clovis::core {

// A clv_rule_key as six 64-bit words: how the table hashes and compares keys,
// and how the classifier masks tuples (one AND per word instead of per field).
using RuleKeyWords = std::array<uint64_t, 6>;
static_assert(sizeof(RuleKeyWords) == sizeof(clv_rule_key), "clv_rule_key has no padding to hide");

inline RuleKeyWords key_words(const clv_rule_key& k) {
  RuleKeyWords w;
  std::memcpy(w.data(), &k, sizeof k);
  return w;
}

inline clv_rule_key rule_key(const RuleKeyWords& w) {
  clv_rule_key k;
  std::memcpy(&k, w.data(), sizeof k);
  return k;
}

class RuleTable {
 public:
  // Six independent multiply/xor-shift lanes, summed, then a final avalanche:
  // short dependency chains, unlike a serial murmur over twelve 32-bit words.
  static uint64_t hash(const RuleKeyWords& w) noexcept {
    // Written out: at -O2 a loop here is neither unrolled nor kept in registers.
    uint64_t h = lane(w[0], 0x9e3779b97f4a7c15ull) + lane(w[1], 0xc2b2ae3d27d4eb4full) +
                 lane(w[2], 0x165667b19e3779f9ull) + lane(w[3], 0xd6e8feb86659fd93ull) +
                 lane(w[4], 0xff51afd7ed558ccdull) + lane(w[5], 0xc4ceb9fe1a85ec53ull);
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    return h ^ (h >> 32);
  }

  void reserve(size_t n);
  // Inserts when the key is absent. false: present, its value is left as is.
  bool insert(const clv_rule_key& k, const clv_rule_val& v);

  const clv_rule_val* find(const clv_rule_key& k) const { return find(key_words(k)); }
  const clv_rule_val* find(const RuleKeyWords& w) const {
    if (tags_.empty()) return nullptr;
    const uint64_t tag = tag_of(hash(w));
    const uint64_t bits = filter_bits(tag);
    if ((filter_[filter_word(tag)] & bits) != bits) return nullptr;
    for (size_t i = tag >> shift_;; i = (i + 1) & mask_) {
      const uint64_t t = tags_[i];
      if (t == 0) return nullptr;
      if (t == tag && same(keys_[index_[i]], w)) return &vals_[index_[i]];
    }
  }

  // The entry's position in insertion order, or size() when absent.
  size_t index_of(const clv_rule_key& k) const {
    const clv_rule_val* v = find(k);
    return v ? static_cast<size_t>(v - vals_.data()) : size();
  }

  // Entries in insertion order.
  size_t size() const { return vals_.size(); }
  clv_rule_key key(size_t i) const { return rule_key(keys_[i]); }
  const clv_rule_val& value(size_t i) const { return vals_[i]; }

 private:
  static uint64_t lane(uint64_t x, uint64_t mul) {
    x *= mul;
    return x ^ (x >> 29);
  }
  static bool same(const RuleKeyWords& a, const RuleKeyWords& b) {
    return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4]) | (a[5] ^ b[5])) == 0;
  }
  // The slot comes from the top bits, so forcing bit 0 only keeps 0 free for "empty".
  static uint64_t tag_of(uint64_t h) { return h | 1; }
  // Bit 0 of a tag is forced and its top bits pick the slot; these use the rest.
  static uint64_t filter_bits(uint64_t tag) { return (1ull << ((tag >> 1) & 63)) | (1ull << ((tag >> 7) & 63)); }
  size_t filter_word(uint64_t tag) const { return (tag >> 13) & (filter_.size() - 1); }
  void rehash(size_t capacity);

  std::vector<uint64_t> tags_;    // per slot: hash | 1, 0 when empty
  std::vector<uint32_t> index_;   // per slot: index into keys_ and vals_
  std::vector<uint64_t> filter_;  // slots / 8 words
  std::vector<RuleKeyWords> keys_;
  std::vector<clv_rule_val> vals_;
  size_t mask_ = 0;  // slots - 1
  int shift_ = 64;   // 64 - log2(slots)
};

}  // namespace clovis::core
