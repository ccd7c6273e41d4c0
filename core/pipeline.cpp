#include "pipeline.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "loader.hpp"
#include "validate.hpp"

namespace clovis::core {

Checked check_mapping(std::string_view text, const CompileOptions& opts) {
  Checked c;
  auto loaded = load_mapping(text, &c.diagnostics);
  if (!loaded) {
    c.diagnostics.append(loaded.error());
    return c;
  }
  c.mapping = std::move(loaded.value());
  c.diagnostics.append(validate(*c.mapping));
  if (c.diagnostics.has_errors()) {
    c.diagnostics.sort();
    return c;
  }
  auto out = compile(*c.mapping, opts);
  c.diagnostics.append(out.diagnostics);
  c.diagnostics.sort();
  if (!c.diagnostics.has_errors()) c.compiled = std::move(out.rules);
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
