// clovisctl validate -f FILE: load, validate and compile a mapping offline.
#include <memory>

#include "app.hpp"
#include "exit_codes.hpp"
#include "mapping_file.hpp"
#include "render/diagnostics.hpp"

namespace clovis::cli::commands {

namespace {

struct ValidateArgs {
  std::string file;
  Output output = Output::kTable;
  bool quiet = false;
};

void run_validate(const ValidateArgs& a, Context& ctx) {
  auto text = read_mapping_text(a.file, ctx);
  if (!text) return;
  const std::string name = display_name(a.file);
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
  ctx.exit_code = checked.ok() ? kExitOk : kExitInvalid;
}

}  // namespace

void add_validate(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<ValidateArgs>();
  auto* cmd = app.add_subcommand("validate", "Check a WAN mapping: syntax, references, limits, shadowed rules");
  cmd->add_option("-f,--file", args->file, "Mapping file (- for standard input)")->required();
  add_output_option(cmd, &args->output);
  cmd->add_flag("-q,--quiet", args->quiet, "Print only problems (errors and warnings)");
  cmd->callback([args, &ctx] { run_validate(*args, ctx); });
}

}  // namespace clovis::cli::commands
