// clovisctl rollback [GEN]: re-apply one of the mappings clovisd keeps in its
// history, atomically, as a new apply would.
#include <memory>

#include "app.hpp"
#include "client.hpp"
#include "exit_codes.hpp"
#include "render/diff.hpp"

namespace clovis::cli::commands {

namespace {

struct RollbackArgs {
  uint32_t generation = 0;
  bool dry_run = false;
  Output output = Output::kTable;
  render::DiffMode diff = render::DiffMode::kAuto;
};

int run_rollback(const RollbackArgs& a, Context& ctx) {
  auto client = Client::open(ctx, "rollback");
  if (!client) return kExitUnavailable;
  v1::RollbackRequest req;
  req.set_generation(a.generation);
  req.set_dry_run(a.dry_run);
  if (auto n = render::diff_items_wanted(a.diff, a.output == Output::kJson)) req.set_max_diff_items(*n);
  v1::ApplyResponse resp;
  if (!client->call(&v1::Agent::Stub::Rollback, req, &resp)) return client->failure();
  const std::string source = "<history>";
  if (a.output == Output::kJson) *ctx.out << render::apply_json_text(resp, source);
  else render::apply_text(*ctx.out, *ctx.err, resp, "rolled back", source, render::color_wanted(ctx.is_tty));
  return kExitOk;
}

}  // namespace

void add_rollback(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<RollbackArgs>();
  auto* cmd = app.add_subcommand("rollback", "Re-apply an earlier mapping from clovisd's history");
  cmd->add_option("generation", a->generation,
                  "The generation to go back to (see 'clovisctl history'); default: the one before the running one")
      ->type_name("GEN")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--dry-run", a->dry_run, "Show the changes; apply nothing");
  add_output_option(cmd, &a->output);
  add_diff_option(cmd, &a->diff);
  on_run(cmd, ctx, [a, &ctx] { return run_rollback(*a, ctx); });
}

}  // namespace clovis::cli::commands
