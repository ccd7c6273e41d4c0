// clovisctl validate FILE: load, validate and compile a mapping offline.
#include <memory>

#include "app.hpp"
#include "exit_codes.hpp"
#include "mapping_file.hpp"
#include "render/diagnostics.hpp"

namespace clovis::cli::commands {

namespace {

struct ValidateArgs {
  MappingFileArg file;
  Output output = Output::kTable;
  bool quiet = false;
};

int run_validate(const ValidateArgs& a, Context& ctx) {
  const std::string path = mapping_path(a.file, true);
  auto text = read_mapping_text(path, ctx);
  if (!text) return kExitIo;
  const std::string name = display_name(path);
  auto checked = core::check_mapping(*text);
  if (a.output == Output::kJson) {
    nlohmann::json j = {{"file", name},
                        {"ok", checked.ok()},
                        {"errors", checked.diagnostics.error_count()},
                        {"warnings", checked.diagnostics.warning_count()},
                        {"diagnostics", render::diagnostics_json(checked.diagnostics, name)},
                        {"summary", render::summary_json(checked)}};
    *ctx.out << j.dump(2) << "\n";
  } else {
    render::diagnostics_text(*ctx.err, checked.diagnostics, name);
    if (!a.quiet || !checked.ok()) render::summary_text(checked.ok() ? *ctx.out : *ctx.err, checked, name);
  }
  return checked.ok() ? kExitOk : kExitInvalid;
}

}  // namespace

void add_validate(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<ValidateArgs>();
  auto* cmd = app.add_subcommand("validate", "Check a WAN mapping: syntax, references, limits, shadowed rules");
  add_mapping_file(cmd, &args->file, "");
  add_output_option(cmd, &args->output);
  cmd->add_flag("-q,--quiet", args->quiet, "Print only problems (errors and warnings)");
  on_run(cmd, ctx, [args, &ctx] { return run_validate(*args, ctx); });
}

}  // namespace clovis::cli::commands
