// clovisctl status: is clovisd running, what it runs, what it attached.
#include <memory>

#include "app.hpp"
#include "client.hpp"
#include "exit_codes.hpp"
#include "render/links.hpp"

namespace clovis::cli::commands {

namespace {

int run_status(Output output, Context& ctx) {
  return read_command(
      ctx, "status", &v1::Agent::Stub::Status, v1::StatusRequest(), [&](const v1::StatusResponse& resp) {
        if (output == Output::kJson) *ctx.out << render::status_json(resp, ctx.socket).dump(2) << "\n";
        else render::status_text(*ctx.out, resp, ctx.socket, output == Output::kWide, render::now_unix_ms());
      });
}

}  // namespace

void add_status(CLI::App& app, Context& ctx) {
  auto output = std::make_shared<Output>(Output::kTable);
  auto* cmd = app.add_subcommand("status", "Show clovisd: version, uptime, generation, attachments, maps, links");
  add_output_option(cmd, output.get());
  on_run(cmd, ctx, [output, &ctx] { return run_status(*output, ctx); });
}

}  // namespace clovis::cli::commands
