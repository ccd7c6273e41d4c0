// The oracle: a deliberately naive classifier that scans the mapping's rules
// in priority order and evaluates each match field by field. Slow and
// obviously right; the compiled tables (and the kernel) must agree with it.
#pragma once

#include <optional>

#include "classifier.hpp"
#include "model.hpp"

namespace clovis::core {

// Index into m.rules of the winning rule, nullopt when none matches.
std::optional<size_t> reference_match(const Mapping& m, const FlowQuery& q);

}  // namespace clovis::core
