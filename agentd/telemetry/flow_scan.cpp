#include "telemetry/flow_scan.hpp"

#include <algorithm>
#include <cstring>
#include <memory>

namespace clovis::agent {

namespace {

bool moved(const clv_flow& a, const clv_flow& b) {
  return a.pkts_out != b.pkts_out || a.pkts_in != b.pkts_in || a.bytes_out != b.bytes_out || a.bytes_in != b.bytes_in ||
         a.link != b.link || a.action != b.action || a.flags != b.flags || a.generation != b.generation;
}

// Index slots in use, at most 7/8 of the index (deleted ones count: they
// lengthen probes until the next rehash).
bool too_full(size_t used, size_t cap) {
  return used * 8 > cap * 7;
}

uint8_t fingerprint(uint64_t h) {
  return static_cast<uint8_t>(h >> 58);
}  // the low bits pick the slot

}  // namespace

uint64_t FlowScan::hash(const clv_flow_key& k) {
  static_assert(sizeof k == 40);
  uint64_t w[5];
  std::memcpy(w, &k, sizeof w);
  uint64_t h = 0x9e3779b97f4a7c15ull;
  for (uint64_t x : w) {
    h = (h ^ x) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 31;
  }
  return h;
}

size_t FlowScan::find(const clv_flow_key& k, uint64_t h, bool* found) const {
  const size_t mask = ctrl_.size() - 1;
  const uint8_t fp = fingerprint(h);
  size_t free = SIZE_MAX;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    const uint8_t c = ctrl_[i];
    if (c == kEmpty) {
      *found = false;
      return free != SIZE_MAX ? free : i;
    }
    if (c == kDeleted) {
      if (free == SIZE_MAX) free = i;
    } else if ((c & kHashBits) == fp && std::memcmp(&at(pos_[i]).key, &k, sizeof k) == 0) {
      *found = true;
      return i;
    }
  }
}

size_t FlowScan::slot_of(size_t pos) const {
  const size_t mask = ctrl_.size() - 1;
  for (size_t i = hash(at(pos).key) & mask;; i = (i + 1) & mask)
    if ((ctrl_[i] & kUsed) && pos_[i] == pos) return i;
}

void FlowScan::grow() {
  if (blocks_.empty() || first_ < kBlock) {
    const size_t cap = blocks_.empty() ? kFirstBlock : std::min(2 * first_, kBlock);
    auto b = std::make_unique<FlowEntry[]>(cap);
    if (!blocks_.empty()) std::copy(blocks_[0].get(), blocks_[0].get() + size_, b.get());
    if (blocks_.empty()) blocks_.push_back(std::move(b));
    else blocks_[0] = std::move(b);
    first_ = cap;
    return;
  }
  blocks_.push_back(std::make_unique<FlowEntry[]>(kBlock));
}

void FlowScan::insert(size_t slot, uint64_t h, const FlowEntry& e) {
  if (size_ == first_ + (blocks_.empty() ? 0 : blocks_.size() - 1) * kBlock) grow();
  at(size_) = e;
  deleted_ -= ctrl_[slot] == kDeleted;
  ctrl_[slot] = static_cast<uint8_t>(kUsed | parity_ | fingerprint(h));
  pos_[slot] = static_cast<uint32_t>(size_);
  ++size_;
}

void FlowScan::erase(size_t slot) {
  const size_t pos = pos_[slot], last = size_ - 1;
  ctrl_[slot] = kDeleted;
  ++deleted_;
  if (pos != last) {
    pos_[slot_of(last)] = static_cast<uint32_t>(pos);
    at(pos) = at(last);
  }
  --size_;
  // One spare block at most: a table that emptied out gives its memory back.
  while (blocks_.size() * kBlock >= size_ + 2 * kBlock) blocks_.pop_back();
}

void FlowScan::rehash(size_t cap) {
  std::vector<uint8_t> ctrl(cap, kEmpty);
  std::vector<uint32_t> pos(cap);
  ctrl.swap(ctrl_);
  pos.swap(pos_);
  deleted_ = 0;
  const size_t mask = cap - 1;
  for (size_t i = 0; i < ctrl.size(); ++i) {
    if (!(ctrl[i] & kUsed)) continue;
    size_t at_slot = hash(at(pos[i]).key) & mask;
    while (ctrl_[at_slot] != kEmpty) at_slot = (at_slot + 1) & mask;
    ctrl_[at_slot] = ctrl[i];
    pos_[at_slot] = pos[i];
  }
}

void FlowScan::begin() {
  parity_ ^= kParity;
}

bool FlowScan::add(const FlowBatch& batch, const core::FlowFilter& filter, const FlowNamer& names,
                   const FlowChangeSink& sink) {
  for (size_t i = 0; i < batch.size(); ++i) {
    const clv_flow_key& key = batch.keys[i];
    const clv_flow& flow = batch.flows[i];
    if (!names.selects(filter, key, flow)) continue;
    if (too_full(size_ + deleted_ + 1, ctrl_.size())) {
      // Doubled when more than 3/4 would be live flows; else only the
      // deleted slots are cleared out.
      const size_t cap = ctrl_.size();
      rehash(cap < 16 ? 16 : (size_ + 1) * 4 > cap * 3 ? cap * 2 : cap);
    }
    const uint64_t h = hash(key);
    bool found = false;
    const size_t slot = find(key, h, &found);
    if (!found) {
      insert(slot, h, {key, flow});
      if (!sink(FlowChange::kAdded, at(pos_[slot]))) return false;
      continue;
    }
    FlowEntry& seen = at(pos_[slot]);
    const bool changed = moved(seen.flow, flow);
    seen.flow = flow;
    ctrl_[slot] = static_cast<uint8_t>((ctrl_[slot] & ~kParity) | parity_);
    if (changed && !sink(FlowChange::kUpdated, seen)) return false;
  }
  return true;
}

bool FlowScan::end(const FlowChangeSink& sink) {
  for (size_t i = 0; i < ctrl_.size(); ++i) {
    const uint8_t c = ctrl_[i];
    if (!(c & kUsed) || (c & kParity) == parity_) continue;
    const FlowEntry gone = at(pos_[i]);
    erase(i);
    if (!sink(FlowChange::kExpired, gone)) return false;
  }
  // An index that emptied out gives its memory back too.
  if (ctrl_.size() > 1024 && size_ * 8 < ctrl_.size()) {
    size_t cap = 16;
    while (cap < size_ * 2) cap *= 2;
    rehash(cap);
  }
  return true;
}

std::vector<FlowEvent> FlowScan::update(const std::vector<FlowEntry>& table, const core::FlowFilter& filter,
                                        const FlowNamer& names) {
  std::vector<FlowEvent> out;
  auto sink = [&out](FlowChange c, const FlowEntry& e) {
    out.push_back({c, e});
    return true;
  };
  std::vector<clv_flow_key> keys;
  std::vector<clv_flow> flows;
  for (const auto& e : table) keys.push_back(e.key), flows.push_back(e.flow);
  begin();
  add(FlowBatch{keys, flows}, filter, names, sink);
  end(sink);
  return out;
}

}  // namespace clovis::agent
