// A classification decision, explained: as text and as the documented JSON.
#pragma once

#include <ostream>
#include <string>

#include <nlohmann/json.hpp>

#include "classifier.hpp"

namespace clovis::cli::render {

struct DecisionView {
  const core::CompiledRules& rules;
  const core::FlowQuery& query;
  const core::Decision& decision;
  std::string file;  // where rule positions point
};

nlohmann::json decision_json(const DecisionView& v);
void decision_text(std::ostream& os, const DecisionView& v, bool wide);

std::string flow_text(const core::FlowQuery& q);

}  // namespace clovis::cli::render
