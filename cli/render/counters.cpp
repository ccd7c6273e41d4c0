#include "counters.hpp"

#include <map>
#include <ostream>
#include <string>

#include "table.hpp"

namespace clovis::cli::render {

using nlohmann::json;

json counters_json(const v1::StatusResponse& s) {
  json links = json::array();
  for (const auto& l : s.links())
    links.push_back({{"name", l.name()},
                     {"interface", l.interface()},
                     {"tx_packets", l.tx_packets()},
                     {"tx_bytes", l.tx_bytes()},
                     {"rx_packets", l.rx_packets()},
                     {"rx_bytes", l.rx_bytes()},
                     {"flows", l.flows()},
                     {"new_flows", l.new_flows()},
                     {"migrated", l.migrated()},
                     {"transitions", l.transitions()}});
  json counters = json::object();
  for (const auto& [k, v] : s.counters()) counters[k] = v;
  json expired = json::object();
  for (const auto& [k, v] : s.flow_table().expired()) expired[k] = v;
  return {{"links", links},
          {"counters", counters},
          {"flow_table", {{"expired", expired}, {"evicted_unreplied", s.flow_table().evicted_unreplied()}}}};
}

void counters_text(std::ostream& os, const v1::StatusResponse& s) {
  if (!s.links().empty()) {
    Table t({"LINK", "INTERFACE", "TX PKTS", "TX BYTES", "RX PKTS", "RX BYTES", "FLOWS", "NEW FLOWS", "MIGRATED",
             "TRANSITIONS"});
    for (const auto& l : s.links())
      t.row({l.name(), l.interface(), std::to_string(l.tx_packets()), std::to_string(l.tx_bytes()),
             std::to_string(l.rx_packets()), std::to_string(l.rx_bytes()), std::to_string(l.flows()),
             std::to_string(l.new_flows()), std::to_string(l.migrated()), std::to_string(l.transitions())});
    t.print(os);
    os << "\n";
  }
  // A protobuf map has no order; sorted names keep the output stable and greppable.
  std::map<std::string, uint64_t> all(s.counters().begin(), s.counters().end());
  for (const auto& [k, v] : s.flow_table().expired()) all["flow_table.expired." + k] = v;
  if (s.has_flow_table()) all["flow_table.evicted_unreplied"] = s.flow_table().evicted_unreplied();
  Table c({"COUNTER", "VALUE"});
  for (const auto& [k, v] : all) c.row({k, std::to_string(v)});
  c.print(os);
}

}  // namespace clovis::cli::render
