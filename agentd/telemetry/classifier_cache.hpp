// A classifier for the running rule set, built once per rule set rather than
// once per request: core::Classifier indexes every table entry when it is
// built (O(rules)), so the per-request paths (ext_authz Check, live
// Simulate) share one until an apply replaces the rule set.
#pragma once

#include <memory>
#include <mutex>

#include "core/classifier.hpp"
#include "telemetry/flow_view.hpp"

namespace clovis::agent {

struct RunningClassifier {
  explicit RunningClassifier(RulesPtr r) : rules(std::move(r)), classifier(*rules) {}
  RulesPtr rules;  // kept alive for as long as the classifier reads it
  core::Classifier classifier;
};

class ClassifierCache {
 public:
  // The classifier of `rules` (built on first use; null for null rules).
  std::shared_ptr<const RunningClassifier> get(const RulesPtr& rules) {
    if (!rules) return nullptr;
    const std::lock_guard lock(mu_);
    if (!cached_ || cached_->rules != rules) cached_ = std::make_shared<const RunningClassifier>(rules);
    return cached_;
  }

 private:
  std::mutex mu_;
  std::shared_ptr<const RunningClassifier> cached_;
};

}  // namespace clovis::agent
