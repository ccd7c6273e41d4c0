#include "mapping_file.hpp"

#include <iostream>
#include <iterator>

#include "exit_codes.hpp"

namespace clovis::cli::commands {

void add_mapping_file(CLI::App* cmd, MappingFileArg* arg, const std::string& what) {
  cmd->add_option("FILE", arg->positional, "Mapping file (- for standard input)" + what)->type_name("");
  cmd->add_option("-f,--file", arg->flag, "Mapping file, as FILE (give one of the two)" + what)->type_name("FILE");
}

std::string mapping_path(const MappingFileArg& arg, bool required) {
  if (!arg.positional.empty() && !arg.flag.empty())
    throw CLI::ValidationError("the mapping file is given twice ('" + arg.positional + "' and -f '" + arg.flag +
                               "'); give it once, as FILE or with -f");
  if (required && arg.positional.empty() && arg.flag.empty())
    throw CLI::RequiredError("a mapping file is required: give it as FILE (or -f FILE; - reads standard input)",
                             CLI::ExitCodes::RequiredError);
  return arg.positional.empty() ? arg.flag : arg.positional;
}

std::optional<std::string> read_mapping_text(const std::string& path, Context& ctx) {
  if (path == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  auto text = core::read_file(path);
  if (!text) {
    *ctx.err << "clovisctl: cannot read mapping " << path << ": " << text.error().message
             << " (check the path given)\n";
    return std::nullopt;
  }
  return std::move(text.value());
}

}  // namespace clovis::cli::commands
