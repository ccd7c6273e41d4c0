// clovisctl get mapping: the mapping clovisd runs, as it was applied.
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app.hpp"
#include "client.hpp"
#include "exit_codes.hpp"
#include "render/links.hpp"

namespace clovis::cli::commands {

namespace {

void print_mapping(Output output, const v1::GetMappingResponse& resp, Context& ctx) {
  if (output == Output::kJson) {
    nlohmann::json j = {{"generation", resp.generation()},
                        {"mapping_yaml", resp.mapping_yaml()},
                        {"applied", render::json_time(resp.applied_unix_ms())}};
    *ctx.out << j.dump(2) << "\n";
    return;
  }
  // Only the YAML on stdout, so `get mapping > wan.yaml` gives a file to edit
  // and apply again.
  if (resp.generation() == 0 && resp.mapping_yaml().empty()) {
    *ctx.err << "clovisctl get mapping: clovisd runs no mapping yet; apply one: clovisctl apply FILE\n";
    return;
  }
  *ctx.out << resp.mapping_yaml();
  if (!resp.mapping_yaml().empty() && resp.mapping_yaml().back() != '\n') *ctx.out << "\n";
}

int run_get_mapping(Output output, Context& ctx) {
  return read_command(ctx, "get mapping", &v1::Agent::Stub::GetMapping, v1::GetMappingRequest(),
                      [&](const v1::GetMappingResponse& resp) { print_mapping(output, resp, ctx); });
}

}  // namespace

void add_get(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("get", "Show what clovisd runs");
  cmd->require_subcommand(1);
  auto output = std::make_shared<Output>(Output::kTable);
  auto* mapping = cmd->add_subcommand("mapping", "Print the running mapping (YAML) and, with -o json, its generation");
  add_output_option(mapping, output.get());
  on_run(mapping, ctx, [output, &ctx] { return run_get_mapping(*output, ctx); });
}

}  // namespace clovis::cli::commands
