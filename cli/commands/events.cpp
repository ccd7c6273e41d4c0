// clovisctl events: the link state changes clovisd's health checker made,
// with why; --watch follows them as they happen.
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app.hpp"
#include "client.hpp"
#include "exit_codes.hpp"
#include "render/events.hpp"
#include "render/links.hpp"

namespace clovis::cli::commands {

namespace {

struct EventsArgs {
  bool watch = false;
  Output output = Output::kTable;
};

void print_events(const EventsArgs& a, const v1::ListEventsResponse& resp, Context& ctx) {
  if (a.output == Output::kJson) {
    nlohmann::json events = nlohmann::json::array();
    for (const auto& e : resp.events()) events.push_back(render::event_json(e));
    *ctx.out << nlohmann::json{{"events", events}}.dump(2) << "\n";
  } else if (resp.events().empty()) {
    *ctx.err << "no link events yet (every link is as it was configured)\n";
  } else {
    render::events_table(*ctx.out, resp.events(), a.output == Output::kWide, render::now_unix_ms());
  }
}

int run_list(const EventsArgs& a, Context& ctx) {
  return read_command(ctx, "events", &v1::Agent::Stub::ListEvents, v1::ListEventsRequest(),
                      [&](const v1::ListEventsResponse& resp) { print_events(a, resp, ctx); });
}

// Until the stream ends (clovisd stops) or Ctrl-C, which needs nothing
// restored: the lines are plain output.
int run_watch(const EventsArgs& a, Context& ctx) {
  auto client = Client::open(ctx, "events");
  if (!client) return kExitUnavailable;
  grpc::ClientContext cc;
  auto reader = client->stub().WatchEvents(&cc, v1::WatchEventsRequest());
  // Not a terminal, or asked for JSON: a stream a program can read line by line.
  const bool json = a.output == Output::kJson || !ctx.is_tty;
  if (!json)
    *ctx.out << fmt::format("{:<12}  {:<12} {:<20} {:>9} {:>5}  {}\n", "TIME", "LINK", "CHANGE", "LATENCY", "LOSS",
                            "REASON")
             << std::flush;
  v1::LinkEventMsg ev;
  while (reader->Read(&ev))
    *ctx.out << (json ? render::event_json(ev).dump() : render::event_line(ev)) << "\n" << std::flush;
  return client->check(reader->Finish(), cc) ? kExitOk : client->failure();
}

}  // namespace

void add_events(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<EventsArgs>();
  auto* cmd = app.add_subcommand("events", "Show link state changes and why, or follow them live with --watch");
  cmd->add_flag("-w,--watch,--follow", a->watch, "Follow new events live (a JSON stream unless on a terminal)");
  add_output_option(cmd, &a->output);
  on_run(cmd, ctx, [a, &ctx] { return a->watch ? run_watch(*a, ctx) : run_list(*a, ctx); });
}

}  // namespace clovis::cli::commands
