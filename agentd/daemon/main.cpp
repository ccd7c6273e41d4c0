#include <cstdlib>
#include <iostream>

#include <absl/synchronization/mutex.h>
#include <CLI/CLI.hpp>

#include "daemon/daemon.hpp"
#include "metrics/exporter.hpp"

int main(int argc, char** argv) {
  clovis::agent::DaemonOptions o;
  CLI::App app("clovisd: the clovis agent. Steers LAN traffic across WAN links with a TC eBPF program.", "clovisd");
  app.set_version_flag("--version", std::string("clovisd ") + CLOVIS_VERSION);
  app.add_option("-c,--config", o.config, "WAN mapping applied at start and on SIGHUP")->default_str(o.config);
  app.add_flag("--follow-config", o.follow_config,
               "Apply the --config file whenever it changes (a ConfigMap volume too); a rejected file leaves the "
               "running mapping in place");
  app.add_option("--lan", o.lan, "LAN-facing interface to steer traffic from (repeatable)")->delimiter(',');
  app.add_option("--netns", o.netns, "Work inside network namespace /run/netns/NAME");
  app.add_option("--pin-dir", o.bpf.pin_dir, "bpffs directory for pinned maps and links")->default_str(o.bpf.pin_dir);
  app.add_option("--socket", o.api.socket_path, "Unix socket of the agent API (clovisctl)")
      ->default_str(o.api.socket_path);
  app.add_option("--authz-socket", o.authz.socket_path,
                 "Unix socket of the Envoy ext_authz service (session reports); empty: off")
      ->default_str(o.authz.socket_path);
  app.add_option("--authz-group", o.authz.group,
                 "Group of the ext_authz socket (the proxy's), when it exists; otherwise only root can use it")
      ->default_str(o.authz.group);
  app.add_option("--max-watchers", o.max_watchers,
                 "Watch streams (flows --watch, events --watch) served at once; the next is refused")
      ->check(CLI::Range(size_t{1}, size_t{100000}))
      ->default_str(std::to_string(o.max_watchers));
  app.add_option("--state-dir", o.agent.state_dir, "Where the last applied mapping is kept")
      ->default_str(o.agent.state_dir);
  app.add_option("--flow-table-size", o.bpf.flow_table_size, "Flow table entries (LRU)")
      ->check(CLI::Range(1024u, 16u << 20))
      ->default_str(std::to_string(o.bpf.flow_table_size));
  app.add_option("--authz-listen", o.authz.tcp_listen,
                 "Also serve ext_authz on this loopback TCP address (127.0.0.1:PORT or [::1]:PORT); "
                 "any local process can reach it: prefer the socket")
      ->check([](const std::string& v) {
        auto a = clovis::agent::service::loopback_listen_address(v);
        return a ? std::string() : a.error().message;
      });
  app.add_option("--metrics-listen", o.metrics_listen,
                 "Serve Prometheus metrics on http://ADDRESS:PORT/metrics (127.0.0.1:9464, [::1]:9464); "
                 "off unless given")
      ->check([](const std::string& v) {
        auto a = clovis::agent::metrics::parse_listen(v);
        return a ? std::string() : a.error().message;
      });
  app.add_option("--authz-threads", o.authz_threads,
                 "Threads answering ext_authz Checks: one has the lowest latency; more for hosts with many cores")
      ->check(CLI::Range(1u, 64u))
      ->default_str(std::to_string(o.authz_threads));
  app.add_option("--l7-sessions", o.l7_sessions,
                 "Sessions reported over ext_authz whose L7 facts (rule, host, header) are kept for flows")
      ->default_str(std::to_string(o.l7_sessions));
  std::vector<std::string> timeouts;
  app.add_option("--flow-timeout", timeouts,
                 "How long an idle flow lives, by connection state: NAME=DURATION[,...] (repeatable; "
                 "NAME: tcp-syn-sent, tcp-syn-recv, tcp-established, tcp-fin-wait, tcp-time-wait, tcp-close, "
                 "udp, udp-stream, icmp, generic; DURATION: seconds or a number with s, m, h, d)")
      ->default_str(clovis::core::format_flow_timeouts(o.flow_timeouts))
      ->check([&o](const std::string& v) {
        auto t = clovis::core::parse_flow_timeouts(v, o.flow_timeouts);
        if (t) return std::string();
        std::string why = t.error().what();  // CLI11 names the option itself
        const std::string_view self = "--flow-timeout";
        if (why.starts_with(self)) why.erase(0, why.find_first_not_of(" :", self.size()));
        return why;
      });
  uint32_t flow_idle_s = 0;
  app.add_option("--flow-idle", flow_idle_s,
                 "Deprecated (releases before connection tracking): the same as --flow-timeout generic=SECONDS")
      ->check(CLI::Range(1u, 86400u));
  app.add_option("--rule-pref", o.agent.rule_pref_base, "ip rule preference of the first route-mode link")
      ->default_str(std::to_string(o.agent.rule_pref_base));
  app.add_flag("--once", o.once, "Apply and attach, then exit; steering stays in the kernel");
  app.add_flag("--uninstall", o.uninstall, "Detach the programs, remove routes and pinned maps, then exit");
  app.add_flag("--dump", o.dump, "Print the kernel state (links, counters, flows) as JSON and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;  // usage errors: 2, as clovisctl
  }
  o.config_explicit = app.count("--config") > 0;
  if (flow_idle_s) o.flow_timeouts.generic = flow_idle_s;
  for (const auto& t : timeouts) o.flow_timeouts = *clovis::core::parse_flow_timeouts(t, o.flow_timeouts);
  // gRPC's locks are abseil's, and Debian builds abseil without NDEBUG, so
  // each one also updated abseil's deadlock-detection graph (graphcycles:
  // ~1% of clovisd's samples under ext_authz load, more in the lock calls
  // around it). A debugging aid for gRPC's own developers; clovisd's locks
  // are std::mutex.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // gRPC's default poller on Linux (epoll1) watches every connection of the
  // process from one epoll set, so the agent API's sync-server threads read
  // the ext_authz connections too and hand each Check over to the authz
  // thread: a futex wake-up per Check (a third of clovisd's samples under
  // Check load). With "poll" each server polls its own connections, and a
  // Check is read, answered and written by one thread: p50 96 -> 64 µs
  // (docs/BENCHMARKS.md, "Envoy Check latency"). Read by grpc_init, so set
  // before any gRPC object exists; the environment still wins.
  setenv("GRPC_POLL_STRATEGY", "poll", /*overwrite=*/0);
  try {
    return clovis::agent::run_daemon(o);
  } catch (const std::exception& e) {
    std::cerr << "clovisd: fatal: " << e.what() << "\n";
    return 1;
  }
}
