// The stable JSON of a classification decision (`clovisctl simulate -o json`,
// and the Simulate RPC) and of a flow (`clovisctl flows -o json`). Documented
// in clovisctl(8); change it only compatibly.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "classifier.hpp"

namespace clovis::core {

struct DecisionView {
  const CompiledRules& rules;
  const FlowQuery& query;
  const Decision& decision;
  std::string file;  // where rule positions point
};

nlohmann::json decision_json(const DecisionView& v);

// A flow-table entry; rules may be null (names then read "#id").
nlohmann::json flow_json(const clv_flow_key& k, const clv_flow& f, const CompiledRules* rules, uint64_t now_ns);

}  // namespace clovis::core
