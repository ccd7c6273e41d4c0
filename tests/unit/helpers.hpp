// Small helpers shared by the unit tests.
#pragma once

#include <string>

#include <doctest/doctest.h>

#include "core/pipeline.hpp"

namespace clovis::test {

inline std::string source_path(const std::string& rel) {
  return std::string(CLOVIS_SOURCE_DIR) + "/" + rel;
}

// A minimal valid header: two links (v4 + v6 on a), one policy.
inline const char* kLinks = R"(version: 1
links:
  - name: a
    interface: wan0
    gateway: [192.0.2.1, "2001:db8::1"]
  - name: b
    interface: wan1
    gateway: 198.51.100.1
    mode: redirect
policies:
  - name: p
    failover: [a, b]
)";

inline core::Checked check(const std::string& yaml) {
  return core::check_mapping(yaml);
}

// True when some diagnostic of the given severity at `line` (0: any) contains `text`.
inline bool has(const core::Checked& c, int line, const std::string& text,
                core::Severity sev = core::Severity::kError) {
  for (const auto& d : c.diagnostics.items())
    if (d.severity == sev && (line == 0 || d.loc.line == line) &&
        (d.message.find(text) != std::string::npos || d.hint.find(text) != std::string::npos))
      return true;
  return false;
}

inline std::string dump(const core::Checked& c) {
  std::string s;
  for (const auto& d : c.diagnostics.items()) s += core::format_diagnostic(d, "t.yaml") + "\n";
  return s;
}

}  // namespace clovis::test
