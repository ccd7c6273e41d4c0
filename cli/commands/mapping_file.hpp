// Reading and checking a mapping file named on the command line.
#pragma once

#include <optional>
#include <string>

#include "app.hpp"
#include "core/pipeline.hpp"

namespace clovis::cli::commands {

// The mapping file of apply, validate, simulate and envoy: a positional FILE
// (`clovisctl apply wan.yaml`, as kubectl and the usage line read) or
// -f/--file FILE, never both. "-" is standard input.
struct MappingFileArg {
  std::string positional;
  std::string flag;
};

// Declares FILE and -f,--file on `cmd`. `what` ends the help text of both.
void add_mapping_file(CLI::App* cmd, MappingFileArg* arg, const std::string& what);

// The path given, or "" when none was (callers that need one check
// `required`). Both given, or none when `required`: throws CLI::ParseError,
// which clovisctl reports as a usage error (exit 2) with the command's --help
// hint. Call it first in the command's callback.
std::string mapping_path(const MappingFileArg& arg, bool required);

// Reads `path` ("-" is standard input). On a read error prints one line and
// returns nullopt; the command then exits kExitIo.
std::optional<std::string> read_mapping_text(const std::string& path, Context& ctx);

// The file name to show in diagnostics.
inline std::string display_name(const std::string& path) {
  return path == "-" ? "<stdin>" : path;
}

}  // namespace clovis::cli::commands
