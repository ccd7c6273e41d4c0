#include "counters.hpp"

#include <map>
#include <ostream>
#include <string>

#include "table.hpp"

namespace clovis::cli::render {

using nlohmann::json;

json counters_json(const v1::StatusResponse& s) {
  json links = json::array();
  for (const auto& l : s.links()) {
    json drops = json::object();
    for (const auto& [reason, n] : l.drops()) drops[reason] = n;
    links.push_back({{"name", l.name()},
                     {"interface", l.interface()},
                     {"tx_packets", l.tx_packets()},
                     {"tx_bytes", l.tx_bytes()},
                     {"rx_packets", l.rx_packets()},
                     {"rx_bytes", l.rx_bytes()},
                     {"flows", l.flows()},
                     {"new_flows", l.new_flows()},
                     {"migrated", l.migrated()},
                     {"transitions", l.transitions()},
                     {"active_flows", l.active_flows()},
                     {"nat_bindings", l.nat_bindings()},
                     {"drops", drops}});
  }
  json migrations = json::array();
  for (const auto& m : s.migrations())
    migrations.push_back({{"from", m.from()}, {"to", m.to()}, {"reason", m.reason()}, {"flows", m.flows()}});
  json counters = json::object();
  for (const auto& [k, v] : s.counters()) counters[k] = v;
  json expired = json::object();
  for (const auto& [k, v] : s.flow_table().expired()) expired[k] = v;
  return {{"links", links},
          {"migrations", migrations},
          {"counters", counters},
          {"flow_table", {{"expired", expired}, {"evicted_unreplied", s.flow_table().evicted_unreplied()}}}};
}

void counters_text(std::ostream& os, const v1::StatusResponse& s) {
  if (!s.links().empty()) {
    Table t({"LINK", "INTERFACE", "TX PKTS", "TX BYTES", "RX PKTS", "RX BYTES", "FLOWS", "NEW FLOWS", "MIGRATED",
             "TRANSITIONS", "NAT BINDINGS", "DROPS"});
    Table d({"LINK", "DROP REASON", "PACKETS"});
    bool any_drop = false;
    for (const auto& l : s.links()) {
      uint64_t dropped = 0;
      // Sorted reasons (a protobuf map has no order); only those that happened.
      for (const auto& [reason, n] : std::map<std::string, uint64_t>(l.drops().begin(), l.drops().end())) {
        dropped += n;
        if (n) d.row({l.name(), reason, std::to_string(n)}), any_drop = true;
      }
      t.row({l.name(), l.interface(), std::to_string(l.tx_packets()), std::to_string(l.tx_bytes()),
             std::to_string(l.rx_packets()), std::to_string(l.rx_bytes()), std::to_string(l.flows()),
             std::to_string(l.new_flows()), std::to_string(l.migrated()), std::to_string(l.transitions()),
             std::to_string(l.nat_bindings()), std::to_string(dropped)});
    }
    t.print(os);
    os << "\n";
    if (any_drop) {
      d.print(os);
      os << "\n";
    }
  }
  if (!s.migrations().empty()) {
    Table m({"MIGRATED FROM", "TO", "REASON", "FLOWS"});
    for (const auto& x : s.migrations()) m.row({x.from(), x.to(), x.reason(), std::to_string(x.flows())});
    m.print(os);
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
