// libFuzzer target over the core's whole path for a mapping text: YAML parse,
// load, validate, compile (check_mapping, the function clovisd's apply and
// clovisctl validate both call). Built by tests/fuzz/run.sh with ASan and
// UBSan; libFuzzer's -rss_limit_mb and -timeout hold it to the bounds of
// docs/DESIGN.md ("Bounded apply"). See docs/FUZZING.md.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <fmt/format.h>

#include "core/compiled.hpp"
#include "core/diagnostics.hpp"
#include "core/pipeline.hpp"

namespace {

// A broken invariant is a crash, so that libFuzzer keeps the input.
void require(bool ok, const char* what) {
  if (ok) return;
  fmt::print(stderr, "fuzz_mapping: invariant broken: {}\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace clovis::core;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const Checked c = check_mapping(text);
  require(c.ok() != c.diagnostics.has_errors(), "a rule set is compiled exactly when there is no error");
  for (const auto& d : c.diagnostics.items()) {
    require(!d.message.empty(), "every diagnostic says what is wrong");
    require(d.loc.line >= 0 && d.loc.col >= 0, "positions are not negative");
    (void)format_diagnostic(d, "fuzz.yaml");
  }
  if (c.ok()) {
    const CompiledRules& r = *c.compiled;
    require(r.entries.size() <= kMaxEntriesPerMapping, "entries within the per-mapping limit");
    require(r.shapes.size() <= CLV_MAX_SHAPES, "shapes within the kernel's limit");
    require(r.rules.size() == c.mapping->rules.size() + 1, "one rule id per rule, and the default");
    uint64_t owned = 0;
    for (const auto& info : r.rules) owned += info.entries;
    require(owned == r.entries.size(), "every entry is owned by exactly one rule");
  }
  return 0;
}
