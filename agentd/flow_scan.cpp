#include "flow_scan.hpp"

#include <cstring>

namespace clovis::agent {

namespace {

bool moved(const clv_flow& a, const clv_flow& b) {
  return a.pkts_out != b.pkts_out || a.pkts_in != b.pkts_in || a.bytes_out != b.bytes_out ||
         a.bytes_in != b.bytes_in || a.link != b.link || a.action != b.action || a.flags != b.flags ||
         a.generation != b.generation;
}

// Slots in use, at most 7/8 of the table (deleted ones count: they lengthen
// probes until the next rehash).
bool too_full(size_t used, size_t cap) { return used * 8 > cap * 7; }


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
  const auto fp = static_cast<uint8_t>(h >> 58);  // high bits: the low ones pick the slot
  size_t free = SIZE_MAX;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    const uint8_t c = ctrl_[i];
    if (c == kEmpty) {
      *found = false;
      return free != SIZE_MAX ? free : i;
    }
    if (c == kDeleted) {
      if (free == SIZE_MAX) free = i;
    } else if ((c & kHashBits) == fp && std::memcmp(&slots_[i].key, &k, sizeof k) == 0) {
      *found = true;
      return i;
    }
  }
}

void FlowScan::rehash(size_t cap) {
  std::vector<uint8_t> ctrl(cap, kEmpty);
  std::vector<FlowEntry> slots(ctrl.size());
  ctrl.swap(ctrl_);
  slots.swap(slots_);
  deleted_ = 0;
  for (size_t i = 0; i < ctrl.size(); ++i) {
    if (!(ctrl[i] & kUsed)) continue;
    bool found = false;
    const size_t at = find(slots[i].key, hash(slots[i].key), &found);
    ctrl_[at] = ctrl[i];
    slots_[at] = slots[i];
  }
}

void FlowScan::begin() { parity_ ^= kParity; }

bool FlowScan::add(const FlowBatch& batch, const FlowFilter& filter, const FlowNamer& names,
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
    const size_t at = find(key, h, &found);
    const bool changed = found && moved(slots_[at].flow, flow);
    if (!found) {
      deleted_ -= ctrl_[at] == kDeleted;
      ++size_;
    }
    ctrl_[at] = static_cast<uint8_t>(kUsed | parity_ | (h >> 58));
    slots_[at] = {key, flow};
    if ((!found || changed) && !sink(found ? FlowChange::kUpdated : FlowChange::kAdded, slots_[at])) return false;
  }
  return true;
}

bool FlowScan::end(const FlowChangeSink& sink) {
  for (size_t i = 0; i < ctrl_.size(); ++i) {
    const uint8_t c = ctrl_[i];
    if (!(c & kUsed) || (c & kParity) == parity_) continue;
    ctrl_[i] = kDeleted;
    --size_;
    ++deleted_;
    if (!sink(FlowChange::kExpired, slots_[i])) return false;
  }
  // A table that emptied out gives its memory back.
  if (ctrl_.size() > 1024 && size_ * 8 < ctrl_.size()) {
    size_t cap = 16;
    while (cap < size_ * 2) cap *= 2;
    rehash(cap);
  }
  return true;
}

std::vector<FlowEvent> FlowScan::update(const std::vector<FlowEntry>& table, const FlowFilter& filter,
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
