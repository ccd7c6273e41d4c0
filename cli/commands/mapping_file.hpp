// Reading and checking a mapping file named on the command line.
#pragma once

#include <optional>
#include <string>

#include "app.hpp"
#include "pipeline.hpp"

namespace clovis::cli::commands {

// Reads `path` ("-" is standard input). On a read error prints one line and
// sets ctx.exit_code = kExitIo.
std::optional<std::string> read_mapping_text(const std::string& path, Context& ctx);

// The file name to show in diagnostics.
inline std::string display_name(const std::string& path) { return path == "-" ? "<stdin>" : path; }

}  // namespace clovis::cli::commands
