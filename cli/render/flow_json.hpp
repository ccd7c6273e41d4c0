// `clovisctl flows -o json` written straight into a text buffer: byte for
// byte what nlohmann's dump(2) prints for
//   {"total": N, "flows": [flow_json(f), ...]}
// (flows.hpp; the format is documented and stable, and the tests hold the
// two together), without building a JSON object per flow. A million flows
// are ~430 MB of text: this writes them in well under a second, where one
// object each cost ~8 s.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>

#include "clovis/v1/agent.pb.h"
#include "json_text.hpp"

namespace clovis::cli::render {

// One flow's object as flow_json(f).dump(2) prints it, every line after the
// first indented by `indent` more spaces, with no newline after the "}".
void append_flow_json(std::string* out, const v1::Flow& f, int indent);

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
