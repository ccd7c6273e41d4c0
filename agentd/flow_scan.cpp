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
  std::unordered_map<clv_flow_key, clv_flow, FlowKeyHash, FlowKeyEq> now;
  now.reserve(seen_.size() + 16);
  for (const auto& e : table) {
    if (!names.selects(filter, e.key, e.flow)) continue;
    now.emplace(e.key, e.flow);
    auto it = seen_.find(e.key);
    if (it == seen_.end()) out.push_back({FlowChange::kAdded, e});
    else if (moved(it->second, e.flow)) out.push_back({FlowChange::kUpdated, e});
  }
  for (const auto& [k, f] : seen_)
    if (!now.count(k)) out.push_back({FlowChange::kExpired, {k, f}});
  seen_ = std::move(now);
  return out;
}

}  // namespace clovis::agent
