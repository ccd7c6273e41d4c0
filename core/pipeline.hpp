// load -> validate -> compile, the one path every consumer uses (CLI offline,
// agent apply, tests), so a mapping is judged the same way everywhere.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "compiled.hpp"
#include "diagnostics.hpp"
#include "model.hpp"
#include "result.hpp"

namespace clovis::core {

// Wall time of each stage of one check, for logs and benchmarks.
struct CheckTimes {
  double parse_ms = 0;  // text -> YamlDoc
  double load_ms = 0;   // YamlDoc -> Mapping
  double validate_ms = 0;
  double compile_ms = 0;  // tables, shapes, the never-matching-rule check
  double total_ms() const { return parse_ms + load_ms + validate_ms + compile_ms; }
};

struct Checked {
  std::optional<Mapping> mapping;
  std::optional<CompiledRules> compiled;  // set only when there are no errors
  Diagnostics diagnostics;
  CheckTimes times;
  bool ok() const { return compiled.has_value(); }
};

Checked check_mapping(std::string_view text, const CompileOptions& opts = {});

Result<std::string> read_file(const std::string& path);

}  // namespace clovis::core
