// Semantic checks of a loaded Mapping: references, duplicates, what each
// link's mode can do, limits. Table-level checks (match shapes, shadowed
// rules) are made by compile(), which sees the compiled tables.
#pragma once

#include "diagnostics.hpp"
#include "model.hpp"

namespace clovis::core {

Diagnostics validate(const Mapping& m);

}  // namespace clovis::core
