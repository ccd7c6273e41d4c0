#include "mapping_file.hpp"

#include <iostream>
#include <iterator>

#include "exit_codes.hpp"

namespace clovis::cli::commands {

std::optional<std::string> read_mapping_text(const std::string& path, Context& ctx) {
  if (path == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  auto text = core::read_file(path);
  if (!text) {
    *ctx.err << "clovisctl: cannot read mapping " << path << ": " << text.error().message
             << " (check the path given to -f)\n";
    ctx.exit_code = kExitIo;
    return std::nullopt;
  }
  return std::move(text.value());
}

}  // namespace clovis::cli::commands
