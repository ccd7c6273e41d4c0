// What changed in the flow table between two scans, for WatchFlows: flows
// that appeared, flows whose counters moved, flows that are gone. Only flows
// the filter selects are followed.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/flow_filter.hpp"
#include "ports/dataplane.hpp"
#include "telemetry/flow_view.hpp"

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
  bool add(const FlowBatch& batch, const core::FlowFilter& filter, const FlowNamer& names, const FlowChangeSink& sink);
  // Reports (and forgets) the followed flows this scan did not see.
  bool end(const FlowChangeSink& sink);

  // A whole scan of `table` at once.
  std::vector<FlowEvent> update(const std::vector<FlowEntry>& table, const core::FlowFilter& filter,
                                const FlowNamer& names);
  size_t size() const { return size_; }

 private:
  // The followed flows, densely in blocks (memory in step with the flows:
  // 128 bytes each and at most one block more; a block is 512 KiB, which
  // malloc maps and unmaps whole; the first grows to that from 8 KiB, so
  // that a watch of a few flows holds a few KiB: clovisd serves hundreds
  // of watches, each with a FlowScan of its own), found through an open-addressing index
  // (linear probing): per slot a control byte — empty, deleted, or in use
  // with the parity of the scan that last saw the flow and 6 bits of its
  // hash — and the flow's position. Scans probe the small index, touch one
  // flow each, and find the gone ones by walking the control bytes alone.
  static constexpr uint8_t kEmpty = 0, kDeleted = 1, kUsed = 0x80, kParity = 0x40, kHashBits = 0x3f;
  static constexpr size_t kBlock = 4096;     // flows per block
  static constexpr size_t kFirstBlock = 64;  // the first block's flows at first
  static uint64_t hash(const clv_flow_key& k);
  FlowEntry& at(size_t pos) { return blocks_[pos / kBlock][pos % kBlock]; }
  const FlowEntry& at(size_t pos) const { return blocks_[pos / kBlock][pos % kBlock]; }
  // The index slot of `k`, or of where it would go (`found` false).
  size_t find(const clv_flow_key& k, uint64_t h, bool* found) const;
  // The index slot that holds position `pos` (a flow known to be there).
  size_t slot_of(size_t pos) const;
  void insert(size_t slot, uint64_t h, const FlowEntry& e);
  // Forgets the flow of `slot`; the last flow moves into its place.
  void erase(size_t slot);
  void rehash(size_t cap);  // a power of two, more than size_
  void grow();              // room for one more flow

  std::vector<uint8_t> ctrl_;
  std::vector<uint32_t> pos_;  // beside ctrl_: where the slot's flow is
  std::vector<std::unique_ptr<FlowEntry[]>> blocks_;
  size_t first_ = 0;  // flows blocks_[0] holds (the others: kBlock)
  size_t size_ = 0, deleted_ = 0;
  uint8_t parity_ = 0;  // kParity or 0: this scan's
};

}  // namespace clovis::agent
