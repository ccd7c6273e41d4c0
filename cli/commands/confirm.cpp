// clovisctl confirm: keep a mapping applied with --confirm. Without it, clovisd
// reverts when the time runs out — the change may have cut the very link this
// session came in by.
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app.hpp"
#include "client.hpp"
#include "exit_codes.hpp"

namespace clovis::cli::commands {

namespace {

int run_confirm(Output output, Context& ctx) {
  return read_command(ctx, "confirm", &v1::Agent::Stub::Confirm, v1::ConfirmRequest(),
                      [&](const v1::ConfirmResponse& resp) {
                        if (output == Output::kJson)
                          *ctx.out << nlohmann::json{{"generation", resp.generation()}}.dump(2) << "\n";
                        else *ctx.out << fmt::format("confirmed: generation {} stays\n", resp.generation());
                      });
}

}  // namespace

void add_confirm(CLI::App& app, Context& ctx) {
  auto output = std::make_shared<Output>(Output::kTable);
  auto* cmd = app.add_subcommand("confirm", "Keep the mapping applied with 'apply --confirm'");
  add_output_option(cmd, output.get());
  on_run(cmd, ctx, [output, &ctx] { return run_confirm(*output, ctx); });
}

}  // namespace clovis::cli::commands
