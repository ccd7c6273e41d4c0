// Running clovisctl in-process, and golden files (CLOVIS_UPDATE_GOLDEN=1
// rewrites them after a deliberate change), for the CLI tests.
#pragma once

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "app.hpp"
#include "helpers.hpp"

namespace clovis::test {

struct Run {
  int code;
  std::string out, err;
};

// The socket defaults to one that does not exist: offline commands must not need it.
inline Run clovisctl(const std::vector<std::string>& args, const std::string& socket = "/nonexistent/clovisd.sock") {
  std::ostringstream out, err;
  cli::Context ctx{&out, &err};
  ctx.socket = socket;
  int code = cli::run(args, ctx);
  return {code, out.str(), err.str()};
}

inline void golden(const std::string& name, const std::string& actual) {
  const std::string path = source_path("tests/unit/golden/" + name);
  if (std::getenv("CLOVIS_UPDATE_GOLDEN")) {
    std::ofstream(path) << actual;
    return;
  }
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "missing golden file " << path << " (CLOVIS_UPDATE_GOLDEN=1 creates it)");
  std::stringstream want;
  want << in.rdbuf();
  CHECK_MESSAGE(want.str() == actual, "output differs from " << path << "; actual:\n" << actual);
}

}  // namespace clovis::test
