// A Mapping rendered back to wan.yaml text in varied styles (block, flow
// items, indentless sequences, quoting, comments, loose spacing), for tests
// that must see the same mapping written the ways people write it.
#pragma once

#include <cstdint>
#include <string>

#include "core/model.hpp"

namespace clovis::test {

struct YamlStyle {
  int indent = 2;           // block indentation step
  bool indentless = false;  // "rules:\n- ..." rather than "rules:\n  - ..."
  bool flow_items = false;  // every link, policy and rule as one flow mapping on its line
  int flow_percent = 30;    // inner maps and lists written as flow collections this often
  int quote_percent = 0;    // scalars quoted ('...' or "...") this often
  int comment_percent = 0;  // trailing comments and comment lines this often
  bool loose = false;       // extra spaces after ':', '-' and inside flow punctuation, blank lines
};

// Deterministic for a given seed.
std::string render_mapping_yaml(const core::Mapping& m, const YamlStyle& style, uint64_t seed);

// A style drawn at random from the knobs above.
YamlStyle random_yaml_style(uint64_t seed);

}  // namespace clovis::test
