// `clovisctl counters`: every counter clovisd reports, in one place — each
// link's (packets, bytes, flows, NAT bindings, drops by reason, migrations
// from link to link), the kernel's global ones (drops,
// NAT refusals, ...) and what left the flow tables. Exact integers, so two
// runs can be subtracted; `status` and `links` show rates and health instead.
#pragma once

#include <iosfwd>

#include <nlohmann/json.hpp>

#include "clovis/v1/agent.pb.h"

namespace clovis::cli::render {

// {"links": [{name, interface, tx_packets, ..., active_flows, nat_bindings,
//  drops: {reason: N}}], "migrations": [{from, to, reason, flows}], "counters": {...},
//  "flow_table": {"expired": {...}, "evicted_unreplied": N}}; the counters
// and flow_table objects are those of `status -o json`.
nlohmann::json counters_json(const v1::StatusResponse& s);

// A per-link table, the drops by link and reason that happened, the
// migrations between links, then one COUNTER/VALUE table: the global counters and
// the flow table's totals (flow_table.*), sorted by name.
void counters_text(std::ostream& os, const v1::StatusResponse& s);

}  // namespace clovis::cli::render
