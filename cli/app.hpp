// The clovisctl command tree. Built by main and by the tests (completions and
// man pages are checked against it).
#pragma once

#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "render/diff.hpp"

namespace clovis::cli {

enum class Output { kTable, kWide, kJson };

// What a command needs from the outside world; tests substitute the streams.
struct Context {
  std::ostream* out;
  std::ostream* err;
  int exit_code = 0;                                // written only by the handler set with on_run
  std::string socket = "/run/clovis/clovisd.sock";  // --socket / CLOVIS_SOCKET
  bool is_tty = false;                              // stdout is a terminal
};

// Builds the tree; each subcommand runs through on_run.
std::unique_ptr<CLI::App> make_app(Context& ctx);

// Makes `handler` cmd's callback and stores the exit code it returns in
// ctx.exit_code. A handler returns its code on every path, so one that
// forgets does not compile (rather than exiting 0).
void on_run(CLI::App* cmd, Context& ctx, std::function<int()> handler);

// Runs argv through the tree; returns the exit code.
int run(const std::vector<std::string>& args, Context& ctx);

// -o table|wide|json on a read command.
void add_output_option(CLI::App* cmd, Output* out);
// --diff auto|full|summary, for apply and rollback.
void add_diff_option(CLI::App* cmd, render::DiffMode* mode);

namespace commands {
void add_validate(CLI::App& app, Context& ctx);
void add_simulate(CLI::App& app, Context& ctx);
void add_apply(CLI::App& app, Context& ctx);
void add_get(CLI::App& app, Context& ctx);
void add_status(CLI::App& app, Context& ctx);
void add_links(CLI::App& app, Context& ctx);
void add_counters(CLI::App& app, Context& ctx);
void add_flows(CLI::App& app, Context& ctx);
void add_events(CLI::App& app, Context& ctx);
void add_history(CLI::App& app, Context& ctx);
void add_rollback(CLI::App& app, Context& ctx);
void add_confirm(CLI::App& app, Context& ctx);
void add_envoy(CLI::App& app, Context& ctx);
void add_completion(CLI::App& app, Context& ctx);
}  // namespace commands

}  // namespace clovis::cli
