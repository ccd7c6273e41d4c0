// clovisctl apply FILE: hand a mapping to clovisd, which validates it,
// diffs it against the running one and commits it atomically; print what
// changed and the new generation.
#include <memory>

#include <fmt/format.h>

#include "app.hpp"
#include "client.hpp"
#include "core/net.hpp"
#include "exit_codes.hpp"
#include "mapping_file.hpp"
#include "render/diff.hpp"

namespace clovis::cli::commands {

namespace {

struct ApplyArgs {
  MappingFileArg file;
  bool dry_run = false;
  std::string confirm;
  Output output = Output::kTable;
  render::DiffMode diff = render::DiffMode::kAuto;
};

// "60s", "2m" -> whole seconds, rounded up; 0 with a message on a bad value
// (a usage error).
uint32_t confirm_seconds(const std::string& text, Context& ctx) {
  auto ms = core::parse_duration_ms(text);
  if (!ms || *ms == 0) {
    *ctx.err << fmt::format("clovisctl apply: --confirm '{}' is not a duration (e.g. 60s, 5m)\n", text);
    return 0;
  }
  return (*ms + 999) / 1000;
}

int run_apply(const ApplyArgs& a, Context& ctx) {
  const std::string path = mapping_path(a.file, true);
  v1::ApplyRequest req;
  if (!a.confirm.empty()) {
    uint32_t s = confirm_seconds(a.confirm, ctx);
    if (s == 0) return kExitUsage;
    req.set_confirm_timeout_s(s);
  }
  auto text = read_mapping_text(path, ctx);
  if (!text) return kExitIo;
  const std::string source = display_name(path);
  req.set_mapping_yaml(std::move(*text));
  req.set_source(source);
  req.set_dry_run(a.dry_run);
  auto client = Client::open(ctx, "apply");
  if (!client) return kExitUnavailable;
  if (auto n = render::diff_items_wanted(a.diff, a.output == Output::kJson)) req.set_max_diff_items(*n);
  v1::ApplyResponse resp;
  if (!client->call(&v1::Agent::Stub::Apply, req, &resp)) return client->failure();
  if (a.output == Output::kJson) *ctx.out << render::apply_json_text(resp, source);
  else render::apply_text(*ctx.out, *ctx.err, resp, "applied", source, render::color_wanted(ctx.is_tty));
  return kExitOk;
}

}  // namespace

void add_apply(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<ApplyArgs>();
  auto* cmd = app.add_subcommand("apply", "Validate a mapping, show what changes and make clovisd run it");
  add_mapping_file(cmd, &a->file, "");
  auto* dry = cmd->add_flag("--dry-run", a->dry_run, "Validate and show the changes; apply nothing");
  cmd->add_option("--confirm", a->confirm, "Revert unless 'clovisctl confirm' follows within DURATION (e.g. 60s)")
      ->type_name("DURATION")
      ->excludes(dry);
  add_output_option(cmd, &a->output);
  add_diff_option(cmd, &a->diff);
  on_run(cmd, ctx, [a, &ctx] { return run_apply(*a, ctx); });
}

}  // namespace clovis::cli::commands
