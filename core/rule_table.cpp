#include "rule_table.hpp"

#include <algorithm>
#include <bit>
#include <utility>

namespace clovis::core {

namespace {

constexpr size_t kMinSlots = 16;

// Slots for n entries at a load factor of at most 1/2.
size_t slots_for(size_t n) {
  return std::bit_ceil(std::max(kMinSlots, n * 2));
}

}  // namespace

void RuleTable::reserve(size_t n) {
  keys_.reserve(n);
  vals_.reserve(n);
  if (slots_for(n) > tags_.size()) rehash(slots_for(n));
}

bool RuleTable::insert(const clv_rule_key& k, const clv_rule_val& v) {
  if (slots_for(size() + 1) > tags_.size()) rehash(slots_for(size() + 1));
  const RuleKeyWords w = key_words(k);
  const uint64_t tag = tag_of(hash(w));
  size_t i = tag >> shift_;
  for (; tags_[i] != 0; i = (i + 1) & mask_)
    if (tags_[i] == tag && same(keys_[index_[i]], w)) return false;
  tags_[i] = tag;
  filter_[filter_word(tag)] |= filter_bits(tag);
  index_[i] = static_cast<uint32_t>(vals_.size());
  keys_.push_back(w);
  vals_.push_back(v);
  return true;
}

// The stored tags carry the hash, so growing never rehashes a key.
void RuleTable::rehash(size_t slots) {
  std::vector<uint64_t> tags(slots, 0);
  std::vector<uint32_t> index(slots, 0);
  mask_ = slots - 1;
  shift_ = 64 - std::countr_zero(slots);
  for (size_t j = 0; j < tags_.size(); ++j) {
    if (tags_[j] == 0) continue;
    size_t i = tags_[j] >> shift_;
    while (tags[i] != 0) i = (i + 1) & mask_;
    tags[i] = tags_[j];
    index[i] = index_[j];
  }
  tags_ = std::move(tags);
  index_ = std::move(index);
  filter_.assign(slots / 8, 0);
  for (uint64_t tag : tags_)
    if (tag) filter_[filter_word(tag)] |= filter_bits(tag);
}

}  // namespace clovis::core
