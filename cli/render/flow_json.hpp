// `clovisctl flows -o json`: clovisd's messages read back into core's flow
// row, written by core's one flow JSON writer (json/flow_json.hpp), as
//   {"total": N, "flows": [flow_json(f), ...]}
// straight into a text buffer, a flow at a time.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>

#include "clovis/v1/agent.pb.h"
#include "core/flow_row.hpp"

namespace clovis::cli::render {

// The message as a row: views into `f`. Flags this build has no name for
// (from a newer clovisd) are left out.
core::FlowRow flow_row(const v1::Flow& f);

// The whole document, a flow at a time. Nothing is written before the first
// flow or finish(): a call that fails at once prints nothing.
class FlowsJsonWriter {
 public:
  explicit FlowsJsonWriter(std::ostream& os) : os_(os) {}
  void flow(const v1::Flow& f);
  // Closes the document and writes out what is left.
  void finish(uint64_t total);
  // Writes out what is buffered (e.g. before giving up on a failed stream).
  void flush();

 private:
  static constexpr size_t kBlock = 1 << 16;
  std::ostream& os_;
  std::string buf_;
  bool first_ = true;
};

}  // namespace clovis::cli::render
