#include "pipeline.hpp"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

#include "loader.hpp"
#include "validate.hpp"

namespace clovis::core {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point* t) {
  const auto now = Clock::now();
  const double ms = std::chrono::duration<double, std::milli>(now - *t).count();
  *t = now;
  return ms;
}

}  // namespace

Checked check_mapping(std::string_view text, const CompileOptions& opts) {
  Checked c;
  auto t = Clock::now();
  if (text.size() > kMaxMappingBytes) {  // before parsing, as load_mapping(text) does
    auto loaded = load_mapping(text);
    c.diagnostics.append(loaded.error());
    return c;
  }
  {
    // The document is dropped before validate and compile: it is as big as
    // the Mapping, and the peak is then the larger of the two, not the sum.
    auto doc = YamlDoc::parse_borrowing(text);  // text outlives doc
    c.times.parse_ms = ms_since(&t);
    if (!doc) {
      c.diagnostics.error(doc.error().loc, "", doc.error().message, doc.error().hint);
      return c;
    }
    auto loaded = load_mapping(*doc, &c.diagnostics);
    c.times.load_ms = ms_since(&t);
    if (!loaded) {
      c.diagnostics.append(loaded.error());
      return c;
    }
    c.mapping = std::move(loaded.value());
  }
  c.diagnostics.append(validate(*c.mapping));
  c.times.validate_ms = ms_since(&t);
  if (c.diagnostics.has_errors()) {
    c.diagnostics.sort();
    return c;
  }
  auto out = compile(*c.mapping, opts);
  c.diagnostics.append(out.diagnostics);
  c.diagnostics.sort();
  if (!c.diagnostics.has_errors()) c.compiled = std::move(out.rules);
  c.times.compile_ms = ms_since(&t);
  return c;
}

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int e = errno;
    return fail(ErrorCode::kIo, std::strerror(e), path, e);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return fail(ErrorCode::kIo, "read error", path, EIO);
  return ss.str();
}

}  // namespace clovis::core
