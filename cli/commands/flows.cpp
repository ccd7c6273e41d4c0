// clovisctl flows: the flows clovisd has pinned to links, filtered as
// `hubble observe` filters; --watch follows them live.
#include <sys/ioctl.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <memory>
#include <thread>
#include <tuple>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app.hpp"
#include "client.hpp"
#include "core/conntrack.hpp"
#include "core/flow_filter.hpp"
#include "core/net.hpp"
#include "exit_codes.hpp"
#include "render/flow_json.hpp"
#include "render/flows.hpp"

namespace clovis::cli::commands {

namespace {

struct FlowsArgs {
  std::vector<std::string> src, dst, ip, port, sport, dport, proto, link, rule, state;
  uint32_t last = 0;
  bool watch = false;
  std::string interval = "1s";
  Output output = Output::kTable;
};

// Prints msg; false, for a usage error (the command exits kExitUsage).
bool usage(Context& ctx, const std::string& msg) {
  *ctx.err << "clovisctl flows: " << msg << "\n";
  return false;
}

// The filter as clovisd takes it, checked and normalized by the same
// core::FlowFilter clovisd parses it with; on a bad value prints what and
// returns false.
bool make_filter(const FlowsArgs& a, v1::FlowFilter* f, Context& ctx) {
  core::FlowFilterSpec spec{a.src, a.dst, a.ip, {}, {}, {}, a.proto, a.link, a.rule, a.state};
  // Addresses first, then ports: the order the options were always checked in.
  if (auto addrs = core::FlowFilter::parse({a.src, a.dst, a.ip, {}, {}, {}, {}, {}, {}, {}}, "--"); !addrs)
    return usage(ctx, addrs.error().message);
  for (auto [flag, in, out] : {std::tuple{"--port", &a.port, &spec.port}, std::tuple{"--sport", &a.sport, &spec.sport},
                               std::tuple{"--dport", &a.dport, &spec.dport}})
    for (const auto& s : *in) {
      auto p = core::FlowFilter::parse_port(flag, s);
      if (!p) return usage(ctx, p.error().message);
      out->push_back(*p);
    }
  auto filter = core::FlowFilter::parse(spec, "--");
  if (!filter) return usage(ctx, filter.error().message);
  const core::FlowFilterSpec n = filter->spec();
  for (auto [in, out] :
       {std::pair{&n.src, f->mutable_src()}, std::pair{&n.dst, f->mutable_dst()}, std::pair{&n.ip, f->mutable_ip()},
        std::pair{&n.proto, f->mutable_proto()}, std::pair{&n.link, f->mutable_link()},
        std::pair{&n.rule, f->mutable_rule()}, std::pair{&n.state, f->mutable_state()}})
    out->Add(in->begin(), in->end());
  for (auto [in, out] : {std::pair{&n.port, f->mutable_port()}, std::pair{&n.sport, f->mutable_sport()},
                         std::pair{&n.dport, f->mutable_dport()}})
    out->Add(in->begin(), in->end());
  return true;
}

// Written as the chunks arrive: clovisctl holds one chunk, plus the table's
// text for -o table/wide (columns are aligned to the widest cell).
int run_list(const FlowsArgs& a, const v1::FlowFilter& filter, Context& ctx) {
  auto client = Client::open(ctx, "flows");
  if (!client) return kExitUnavailable;
  v1::ListFlowsRequest req;
  *req.mutable_filter() = filter;
  req.set_last(a.last);
  uint64_t total = 0;
  if (a.output == Output::kJson) {
    // A stream that fails midway leaves what was written so far (an
    // unfinished document) and the error, with its exit code.
    render::FlowsJsonWriter out(*ctx.out);
    if (!client->stream(&v1::Agent::Stub::ListFlows, req, [&](const v1::ListFlowsResponse& chunk) {
          for (const auto& f : chunk.flows()) out.flow(f);
          total = chunk.total();
        }))
      return client->failure();
    out.finish(total);
    return kExitOk;
  }
  render::FlowTable table(a.output == Output::kWide);
  if (!client->stream(&v1::Agent::Stub::ListFlows, req, [&](const v1::ListFlowsResponse& chunk) {
        for (const auto& f : chunk.flows()) table.add(f);
        total = chunk.total();
      }))
    return client->failure();
  if (table.size() == 0) *ctx.err << fmt::format("no flows match ({} in the table)\n", total);
  else table.print(*ctx.out);
  return kExitOk;
}

std::atomic<bool> g_interrupted{false};
extern "C" void on_interrupt(int) {
  g_interrupted.store(true);
}

// Catches Ctrl-C (and SIGTERM, SIGHUP) while the live view is up, so that it
// cancels the stream and restores the terminal instead of dying mid-frame.
class InterruptGuard {
 public:
  InterruptGuard() {
    g_interrupted.store(false);
    struct sigaction sa {};
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < kSignals.size(); ++i) sigaction(kSignals[i], &sa, &old_[i]);
  }
  ~InterruptGuard() {
    for (size_t i = 0; i < kSignals.size(); ++i) sigaction(kSignals[i], &old_[i], nullptr);
  }
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

 private:
  static constexpr std::array<int, 3> kSignals = {SIGINT, SIGTERM, SIGHUP};
  std::array<struct sigaction, 3> old_{};
};

// The alternate screen, as top uses it: the shell's screen comes back intact.
// Frames overwrite in place (home, then clear to end of each line and below)
// rather than clearing first, which is what makes a redraw flicker.
class LiveScreen {
 public:
  explicit LiveScreen(std::ostream& os) : os_(os) { os_ << "\x1b[?1049h\x1b[?25l" << std::flush; }
  ~LiveScreen() { os_ << "\x1b[?25h\x1b[?1049l" << std::flush; }
  LiveScreen(const LiveScreen&) = delete;
  LiveScreen& operator=(const LiveScreen&) = delete;

  void draw(const std::vector<std::string>& lines) {
    std::string s = "\x1b[H";
    for (size_t i = 0; i < lines.size(); ++i) s += lines[i] + (i + 1 < lines.size() ? "\x1b[K\r\n" : "\x1b[K");
    os_ << s << "\x1b[J" << std::flush;
  }
  static std::pair<int, int> size() {
    winsize ws{};
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) return {ws.ws_row, ws.ws_col};
    return {24, 80};
  }

 private:
  std::ostream& os_;
};

// Reads the stream into a FlowBoard and redraws it, at most every 100 ms.
void live_view(grpc::ClientReader<v1::FlowEvent>& reader, grpc::ClientContext& cc, std::ostream& os) {
  using Clock = std::chrono::steady_clock;
  LiveScreen screen(os);
  render::FlowBoard board;
  auto [rows, cols] = LiveScreen::size();
  screen.draw(board.frame(rows, cols));
  // A blocked Read cannot be interrupted by a signal handler; a thread that
  // notices the flag cancels the call, and Read returns.
  std::atomic<bool> done{false};
  std::thread canceller([&] {
    while (!done.load()) {
      if (g_interrupted.load()) return cc.TryCancel();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  auto last = Clock::now();
  v1::FlowEvent ev;
  while (reader.Read(&ev)) {
    board.apply(ev);
    if (ev.kind() == v1::FlowEvent::COUNTERS || Clock::now() - last >= std::chrono::milliseconds(100)) {
      std::tie(rows, cols) = LiveScreen::size();
      screen.draw(board.frame(rows, cols));
      last = Clock::now();
    }
  }
  done.store(true);
  canceller.join();
}

int run_watch(const FlowsArgs& a, const v1::FlowFilter& filter, Context& ctx) {
  auto interval = core::parse_duration_ms(a.interval);
  if (!interval || *interval < 100) {
    usage(ctx, fmt::format("--interval '{}' is not a duration of at least 100ms (e.g. 1s)", a.interval));
    return kExitUsage;
  }
  auto client = Client::open(ctx, "flows");
  if (!client) return kExitUnavailable;
  v1::WatchFlowsRequest req;
  *req.mutable_filter() = filter;
  req.set_interval_ms(*interval);
  grpc::ClientContext cc;
  auto reader = client->stub().WatchFlows(&cc, req);
  // Not a terminal, or asked for JSON: a stream a program can read line by line.
  if (a.output == Output::kJson || !ctx.is_tty) {
    v1::FlowEvent ev;
    while (reader->Read(&ev)) *ctx.out << render::flow_event_json(ev).dump() << "\n" << std::flush;
  } else {
    InterruptGuard guard;
    live_view(*reader, cc, *ctx.out);
  }
  grpc::Status s = reader->Finish();
  return g_interrupted.exchange(false) || client->check(s, cc) ? kExitOk : client->failure();
}

}  // namespace

void add_flows(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<FlowsArgs>();
  auto* cmd = app.add_subcommand("flows", "List the flows pinned to links, or follow them live with --watch");
  auto list = [&](const char* name, std::vector<std::string>* v, const char* what, const char* type) {
    cmd->add_option(name, *v, what)->type_name(type)->delimiter(',');
  };
  list("--src", &a->src, "Source address or CIDR (repeatable)", "CIDR");
  list("--dst", &a->dst, "Destination address or CIDR (repeatable)", "CIDR");
  list("--ip", &a->ip, "Either address, or CIDR (repeatable)", "CIDR");
  list("--port", &a->port, "Either port (repeatable)", "PORT");
  list("--sport", &a->sport, "Source port (repeatable)", "PORT");
  list("--dport", &a->dport, "Destination port (repeatable)", "PORT");
  list("--proto", &a->proto, "Protocol: tcp, udp, icmp... or a number (repeatable)", "PROTO");
  list("--link", &a->link, "Flows on this link (repeatable)", "LINK");
  list("--rule", &a->rule, "Flows classified by this rule (repeatable)", "RULE");
  const auto states = core::ct_state_names();
  list("--state", &a->state, "Flows in this connection state: established, unreplied... (repeatable)", "STATE");
  cmd->get_option("--state")->check(CLI::IsMember(std::vector<std::string>(states.begin(), states.end())));
  auto* watch =
      cmd->add_flag("-w,--watch,--follow", a->watch, "Follow the flows live (a JSON stream unless on a terminal)");
  cmd->add_option("--last", a->last, "Only the N most recently active flows")
      ->type_name("N")
      ->check(CLI::PositiveNumber)
      ->excludes(watch);
  cmd->add_option("--interval", a->interval, "With --watch: how often clovisd scans and reports counters")
      ->type_name("DURATION")
      ->default_str("1s")
      ->needs(watch);
  add_output_option(cmd, &a->output);
  on_run(cmd, ctx, [a, &ctx] {
    v1::FlowFilter filter;
    if (!make_filter(*a, &filter, ctx)) return kExitUsage;
    return a->watch ? run_watch(*a, filter, ctx) : run_list(*a, filter, ctx);
  });
}

}  // namespace clovis::cli::commands
