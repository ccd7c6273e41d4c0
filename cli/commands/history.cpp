// clovisctl history: the mappings clovisd applied last (up to 10), which one
// runs, and so what `clovisctl rollback GEN` can go back to.
#include <algorithm>
#include <memory>

#include <nlohmann/json.hpp>

#include "app.hpp"
#include "client.hpp"
#include "exit_codes.hpp"
#include "render/links.hpp"
#include "render/table.hpp"

namespace clovis::cli::commands {

namespace {

void history_text(std::ostream& os, const v1::HistoryResponse& h, bool wide, int64_t now_ms) {
  std::vector<std::string> head = {"GEN", "APPLIED", "SOURCE", "STATE"};
  if (wide) head.insert(head.end(), {"APPLIED AT", "LINES"});
  render::Table t(head);
  for (const auto& e : h.entries()) {
    std::vector<std::string> r = {std::to_string(e.generation()), render::ago(e.applied_unix_ms(), now_ms),
                                  e.source().empty() ? "-" : e.source(), e.running() ? "running" : ""};
    if (wide) {
      auto at = render::json_time(e.applied_unix_ms());
      r.push_back(at.is_string() ? at.get<std::string>() : "-");
      r.push_back(std::to_string(std::count(e.mapping_yaml().begin(), e.mapping_yaml().end(), '\n')));
    }
    t.row(std::move(r));
  }
  t.print(os);
}

void print_history(Output output, const v1::HistoryResponse& resp, Context& ctx) {
  if (output == Output::kJson) {
    nlohmann::json entries = nlohmann::json::array();
    for (const auto& e : resp.entries())
      entries.push_back({{"generation", e.generation()},
                         {"applied", render::json_time(e.applied_unix_ms())},
                         {"source", e.source()},
                         {"running", e.running()},
                         {"mapping_yaml", e.mapping_yaml()}});
    *ctx.out << nlohmann::json{{"entries", entries}}.dump(2) << "\n";
  } else if (resp.entries().empty()) {
    *ctx.err << "clovisctl history: clovisd has applied no mapping yet\n";
  } else {
    history_text(*ctx.out, resp, output == Output::kWide, render::now_unix_ms());
  }
}

int run_history(Output output, Context& ctx) {
  return read_command(ctx, "history", &v1::Agent::Stub::History, v1::HistoryRequest(),
                      [&](const v1::HistoryResponse& resp) { print_history(output, resp, ctx); });
}

}  // namespace

void add_history(CLI::App& app, Context& ctx) {
  auto output = std::make_shared<Output>(Output::kTable);
  auto* cmd = app.add_subcommand("history", "List the last applied mappings and their generations");
  add_output_option(cmd, output.get());
  on_run(cmd, ctx, [output, &ctx] { return run_history(*output, ctx); });
}

}  // namespace clovis::cli::commands
