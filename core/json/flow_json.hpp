// The stable JSON of a flow row (`clovisctl flows -o json`, `clovisctl flows
// --watch -o json`, `clovisd --dump`), documented in clovisctl(8): the one
// writer of it. Written as text, byte for byte what nlohmann's dump(2) prints
// for the same object, without building one: a million flows are ~430 MB of
// text, written in well under a second, where an object each cost ~8 s.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/flow_row.hpp"

namespace clovis::core {

// One flow's object, every line after the first indented by `indent` more
// spaces, with no newline after the "}". `l7`, if given, is the "l7" member
// (what a proxy reported; only the agent knows it).
void append_flow_json(std::string* out, const FlowRow& r, int indent, const nlohmann::json* l7 = nullptr);

// The same as an object, for documents built with nlohmann (events, --dump).
nlohmann::json flow_json(const FlowRow& r, const nlohmann::json* l7 = nullptr);

}  // namespace clovis::core
