#include "app.hpp"

#include <iostream>
#include <optional>

#include <fmt/format.h>

#include "exit_codes.hpp"

namespace clovis::cli {

void add_output_option(CLI::App* cmd, Output* out) {
  cmd->add_option_function<std::string>(
         "-o,--output",
         [out](const std::string& v) {
           *out = v == "json" ? Output::kJson : v == "wide" ? Output::kWide : Output::kTable;
         },
         "Output format: table (default), wide or json")
      ->check(CLI::IsMember({"table", "wide", "json"}));
}

void add_diff_option(CLI::App* cmd, render::DiffMode* mode) {
  cmd->add_option_function<std::string>(
         "--diff",
         [mode](const std::string& v) { *mode = render::parse_diff_mode(v).value_or(render::DiffMode::kAuto); },
         fmt::format("How much of the diff to show: auto (default: every change up to {}, else those and counts by "
                     "kind; every change with -o json), full, or summary (counts only)",
                     render::kAutoDiffItems))
      ->type_name("MODE")
      ->check(CLI::IsMember({"auto", "full", "summary"}));
}

void on_run(CLI::App* cmd, Context& ctx, std::function<int()> handler) {
  cmd->callback([&ctx, handler = std::move(handler)] { ctx.exit_code = handler(); });
}

std::unique_ptr<CLI::App> make_app(Context& ctx) {
  auto app = std::make_unique<CLI::App>(
      "clovisctl: steer application traffic across the WAN links of an edge host.\n"
      "Validate and simulate a WAN mapping offline, or drive a running clovisd.",
      "clovisctl");
  app->require_subcommand(1);
  app->fallthrough();  // --socket (and --help) also after the subcommand
  app->set_version_flag("--version", std::string("clovisctl ") + CLOVIS_VERSION);
  app->footer(
      "Exit status: 0 ok, 1 rejected mapping or request, 2 usage, 3 file error, "
      "4 agent unavailable, 5 internal error. See clovisctl(8).");
  app->add_option("--socket", ctx.socket, "clovisd's socket")->envname("CLOVIS_SOCKET")->default_str(ctx.socket);
  commands::add_apply(*app, ctx);
  commands::add_get(*app, ctx);
  commands::add_status(*app, ctx);
  commands::add_links(*app, ctx);
  commands::add_counters(*app, ctx);
  commands::add_flows(*app, ctx);
  commands::add_events(*app, ctx);
  commands::add_simulate(*app, ctx);
  commands::add_validate(*app, ctx);
  commands::add_envoy(*app, ctx);
  commands::add_history(*app, ctx);
  commands::add_rollback(*app, ctx);
  commands::add_confirm(*app, ctx);
  commands::add_completion(*app, ctx);
  return app;
}

namespace {

// "clovisctl get mapping" for the innermost command parsed.
std::string command_path(const CLI::App& app) {
  return app.get_parent() ? command_path(*app.get_parent()) + " " + app.get_name() : "clovisctl";
}

// `clovisctl logs` or `clovisctl get links`: CLI11 keeps the unknown word as
// an extra argument and reports only "A subcommand is required", which reads
// as if nothing had been typed. Name the word and the commands there are.
// (A fallthrough subcommand leaves the word with the root.)
std::optional<std::string> unknown_command(const CLI::App& root, const CLI::App& failed, const CLI::ParseError& e) {
  if (dynamic_cast<const CLI::RequiredError*>(&e) == nullptr) return std::nullopt;
  auto extra = failed.remaining();
  if (extra.empty()) extra = root.remaining();
  if (extra.empty() || extra.front().rfind('-', 0) == 0) return std::nullopt;
  std::string known;
  for (const CLI::App* sub : failed.get_subcommands([](const CLI::App* a) { return !a->get_group().empty(); }))
    known += (known.empty() ? "" : ", ") + sub->get_name();
  if (known.empty()) return std::nullopt;
  return fmt::format("unknown command '{}' for '{}'; the commands are: {}", extra.front(), command_path(failed), known);
}

}  // namespace

int run(const std::vector<std::string>& args, Context& ctx) {
  auto app = make_app(ctx);
  std::vector<std::string> rev(args.rbegin(), args.rend());
  try {
    app->parse(rev);
  } catch (const CLI::ParseError& e) {
    // CLI11 prints help/version as "errors" with exit code 0.
    std::ostream& os = e.get_exit_code() == 0 ? *ctx.out : *ctx.err;
    if (dynamic_cast<const CLI::CallForHelp*>(&e) || dynamic_cast<const CLI::CallForAllHelp*>(&e) ||
        dynamic_cast<const CLI::CallForVersion*>(&e)) {
      app->exit(e, os, os);
      return kExitOk;
    }
    const CLI::App* failed = app.get();  // the innermost command parsed: get mapping
    while (!failed->get_subcommands().empty()) failed = failed->get_subcommands().back();
    os << "clovisctl: " << unknown_command(*app, *failed, e).value_or(e.what()) << "\n";
    os << "Run '" << command_path(*failed) << " --help' for usage.\n";
    return kExitUsage;
  }
  return ctx.exit_code;
}

}  // namespace clovis::cli
