// The stable JSON of a classification decision (`clovisctl simulate -o json`,
// and the Simulate RPC; a flow's is json/flow_json.hpp). Documented
// in clovisctl(8); change it only compatibly.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/classifier.hpp"

namespace clovis::core {

struct DecisionView {
  const CompiledRules& rules;
  const FlowQuery& query;
  const Decision& decision;
  std::string file;  // where rule positions point
};

nlohmann::json decision_json(const DecisionView& v);

}  // namespace clovis::core
