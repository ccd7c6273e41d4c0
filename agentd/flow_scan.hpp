// What changed in the flow table between two scans, for WatchFlows: flows
// that appeared, flows whose counters moved, flows that are gone. Only flows
// the filter selects are followed.
#pragma once

#include <cstring>
#include <string_view>
#include <unordered_map>
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

class FlowScan {
 public:
  // The first call reports every selected flow as added.
  std::vector<FlowEvent> update(const std::vector<FlowEntry>& table, const FlowFilter& filter, const FlowNamer& names);
  size_t size() const { return seen_.size(); }

 private:
  struct Seen {
    clv_flow flow;
    uint64_t scan;  // the last scan that saw it
  };
  // Updated in place: a scan allocates only for new flows (at 100k flows a
  // rebuilt map cost more than the kernel read itself).
  std::unordered_map<clv_flow_key, Seen, FlowKeyHash, FlowKeyEq> seen_;
  uint64_t scan_ = 0;
};

}  // namespace clovis::agent
