// Diagnostics and mapping summaries, as text and as the documented JSON.
#pragma once

#include <ostream>
#include <string>

#include <nlohmann/json.hpp>

#include "core/compiled.hpp"
#include "core/diagnostics.hpp"
#include "core/pipeline.hpp"

namespace clovis::cli::render {

nlohmann::json diagnostics_json(const core::Diagnostics& d, const std::string& file);
void diagnostics_text(std::ostream& os, const core::Diagnostics& d, const std::string& file);

// Counts of what a checked mapping holds: links, policies, rules, tables.
nlohmann::json summary_json(const core::Checked& c);
void summary_text(std::ostream& os, const core::Checked& c, const std::string& file);

}  // namespace clovis::cli::render
