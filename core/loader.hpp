// wan.yaml text -> Mapping. Syntax and types only; cross-references and
// semantics are validate()'s job. All problems are reported, none skipped.
#pragma once

#include <string>
#include <string_view>

#include "diagnostics.hpp"
#include "model.hpp"
#include "result.hpp"
#include "yaml/yaml_doc.hpp"

namespace clovis::core {

// The biggest mapping read (and, derived from it, clovisd's gRPC receive
// limit). What fits in it is bounded further (kMaxYamlNodes,
// kMaxRulesPerMapping...) so that checking any mapping up to this size stays
// under 100 MB; docs/BENCHMARKS.md ("Bounded apply") has what the worst
// shapes cost.
inline constexpr size_t kMaxMappingBytes = 16u << 20;
inline constexpr size_t kMaxNameLength = 32;

// On failure the Diagnostics hold at least one error. Warnings found while
// loading a good file are returned through `warnings`.
Result<Mapping, Diagnostics> load_mapping(std::string_view text, Diagnostics* warnings = nullptr);
// The second half of that: the typed read of an already parsed document.
Result<Mapping, Diagnostics> load_mapping(const YamlDoc& doc, Diagnostics* warnings = nullptr);

// Names of links, policies and rules: [A-Za-z0-9][A-Za-z0-9._-]*, <= 32 chars.
bool valid_name(std::string_view name);

}  // namespace clovis::core
