// A fast parser for the strict YAML subset that big WAN mappings are written
// in: block mappings and sequences indented with spaces, single-line flow
// mappings and sequences, single-line plain and quoted scalars without
// escapes, comments. It builds exactly the YamlDoc that yaml-cpp's event
// parser builds for the same text — same nodes, values and line:col — and
// gives up on anything else (anchors, tags, block scalars, multi-line or
// escaped scalars, tabs, empty values, non-ASCII, several documents…), so
// that YamlDoc::parse can hand the whole text to yaml-cpp instead. It never
// reports a syntax error of its own: a text it cannot read is yaml-cpp's to
// judge. tests/unit/test_yaml_subset.cpp holds it to yaml-cpp differentially.
// Internal to clovis_yaml (YamlDoc::parse uses it) and that test.
#pragma once

#include <optional>
#include <string_view>

#include "core/yaml/yaml_doc.hpp"

namespace clovis::core {

// The document, or nullopt when the text is outside the subset; then
// `stopped_at`, when given, is about where the parser left it. With
// `borrow`, the document's scalars are views into `text`, which must then
// outlive it (YamlDoc::parse_borrowing); without, it holds a copy. A text
// with more than kMaxYamlNodes nodes is not read: nullopt, `stopped_at` the
// node past the limit and `*too_many_nodes` (when given) true.
std::optional<YamlDoc> parse_yaml_subset(std::string_view text, SourceLoc* stopped_at = nullptr, bool borrow = false,
                                         bool* too_many_nodes = nullptr);

}  // namespace clovis::core
