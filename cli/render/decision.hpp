// A classification decision, explained as text. The text is rendered from
// the decision's documented JSON (core::decision_json offline, the Simulate
// RPC's decision_json live), so offline and live simulations print alike.
#pragma once

#include <ostream>
#include <string>

#include <nlohmann/json.hpp>

#include "core/classifier.hpp"
#include "core/json/decision_json.hpp"

namespace clovis::cli::render {

using core::DecisionView;

// `file` is where the rule positions point; empty prints "line L:C".
void decision_text(std::ostream& os, const nlohmann::json& doc, const std::string& file, bool wide);

// core::decision_json plus what the text shows and the stable JSON does not
// carry: the policy's on_link_down, sticky and last_resort settings. The text
// shows them whenever the document has them.
nlohmann::json decision_text_doc(const DecisionView& v);

}  // namespace clovis::cli::render
