// What changed in the flow table between two scans, for WatchFlows: flows
// that appeared, flows whose counters moved, flows that are gone. Only flows
// the filter selects are followed.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "dataplane.hpp"
#include "flow_filter.hpp"
#include "flow_view.hpp"

namespace clovis::agent {

enum class FlowChange { kAdded, kUpdated, kExpired };

struct FlowEvent {
  FlowChange change;
  FlowEntry entry;  // for kExpired, as last seen
};

// Receives the changes as a scan finds them; returns false to stop the scan
// (the watching client went away).
using FlowChangeSink = std::function<bool(FlowChange, const FlowEntry&)>;

class FlowScan {
 public:
  // One scan, fed a batch at a time as the table is read: begin(), add()
  // for every batch, end(). The first scan reports every selected flow as
  // added. A stopped scan (a sink said false) leaves the scan half done; the
  // FlowScan is then not to be used again.
  void begin();
  bool add(const FlowBatch& batch, const FlowFilter& filter, const FlowNamer& names, const FlowChangeSink& sink);
  // Reports (and forgets) the followed flows this scan did not see.
  bool end(const FlowChangeSink& sink);

  // A whole scan of `table` at once.
  std::vector<FlowEvent> update(const std::vector<FlowEntry>& table, const FlowFilter& filter, const FlowNamer& names);
  size_t size() const { return size_; }

 private:
  // An open-addressing table (linear probing) of the followed flows: a
  // control byte per slot — empty, deleted, or in use with the scan parity
  // it was last seen in and 6 bits of its hash — and the flows beside it.
  // Scans probe the control bytes, touch one flow each, and find the gone
  // ones by walking the control bytes alone; memory stays put between scans.
  static constexpr uint8_t kEmpty = 0, kDeleted = 1, kUsed = 0x80, kParity = 0x40, kHashBits = 0x3f;
  static uint64_t hash(const clv_flow_key& k);
  // The slot of `k`, or of where it would go (`found` false).
  size_t find(const clv_flow_key& k, uint64_t h, bool* found) const;
  void rehash(size_t cap);  // a power of two, more than size_

  std::vector<uint8_t> ctrl_;
  std::vector<FlowEntry> slots_;
  size_t size_ = 0, deleted_ = 0;
  uint8_t parity_ = 0;  // kParity or 0: this scan's
};

}  // namespace clovis::agent
