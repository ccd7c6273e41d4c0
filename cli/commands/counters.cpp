// clovisctl counters: every counter clovisd reports — per link, the kernel's
// global ones (drops and NAT included) and the flow tables' — as exact numbers.
#include <memory>

#include "app.hpp"
#include "client.hpp"
#include "exit_codes.hpp"
#include "render/counters.hpp"

namespace clovis::cli::commands {

namespace {

int run_counters(Output output, Context& ctx) {
  return read_command(ctx, "counters", &v1::Agent::Stub::Status, v1::StatusRequest(),
                      [&](const v1::StatusResponse& resp) {
                        if (output == Output::kJson) *ctx.out << render::counters_json(resp).dump(2) << "\n";
                        else render::counters_text(*ctx.out, resp);
                      });
}

}  // namespace

void add_counters(CLI::App& app, Context& ctx) {
  auto output = std::make_shared<Output>(Output::kTable);
  auto* cmd = app.add_subcommand("counters",
                                 "Show every counter: per link (packets, bytes, flows), drops, NAT, the flow tables");
  cmd->add_option_function<std::string>(
         "-o,--output", [output](const std::string& v) { *output = v == "json" ? Output::kJson : Output::kTable; },
         "Output format: table (default) or json")
      ->check(CLI::IsMember({"table", "json"}));
  on_run(cmd, ctx, [output, &ctx] { return run_counters(*output, ctx); });
}

}  // namespace clovis::cli::commands
