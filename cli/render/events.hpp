// Link events (clovisctl events): the health checker's state changes as a
// table, as the documented JSON, and as the lines of `events --watch`.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include <google/protobuf/repeated_ptr_field.h>
#include <nlohmann/json.hpp>

#include "clovis/v1/agent.pb.h"

namespace clovis::cli::render {

using Events = google::protobuf::RepeatedPtrField<v1::LinkEventMsg>;

nlohmann::json event_json(const v1::LinkEventMsg& e);

// One row per event, oldest first, times relative to now; `wide` adds the
// jitter and the absolute time.
void events_table(std::ostream& os, const Events& events, bool wide, int64_t now_unix_ms);

// One line of `events --watch` on a terminal: the local time of day, then
// the columns of the table (fixed widths, as there is no table to align).
std::string event_line(const v1::LinkEventMsg& e);

}  // namespace clovis::cli::render
