#include "flow_scan.hpp"

namespace clovis::agent {

namespace {

bool moved(const clv_flow& a, const clv_flow& b) {
  return a.pkts_out != b.pkts_out || a.pkts_in != b.pkts_in || a.bytes_out != b.bytes_out ||
         a.bytes_in != b.bytes_in || a.link != b.link || a.action != b.action || a.flags != b.flags ||
         a.generation != b.generation;
}

}  // namespace

std::vector<FlowEvent> FlowScan::update(const std::vector<FlowEntry>& table, const FlowFilter& filter,
                                        const FlowNamer& names) {
  std::vector<FlowEvent> out;
  const uint64_t scan = ++scan_;
  for (const auto& e : table) {
    if (!names.selects(filter, e.key, e.flow)) continue;
    auto [it, added] = seen_.try_emplace(e.key, Seen{e.flow, scan});
    if (added) {
      out.push_back({FlowChange::kAdded, e});
      continue;
    }
    if (moved(it->second.flow, e.flow)) out.push_back({FlowChange::kUpdated, e});
    it->second = {e.flow, scan};
  }
  for (auto it = seen_.begin(); it != seen_.end();) {
    if (it->second.scan == scan) {
      ++it;
      continue;
    }
    out.push_back({FlowChange::kExpired, {it->first, it->second.flow}});
    it = seen_.erase(it);
  }
  return out;
}

}  // namespace clovis::agent
