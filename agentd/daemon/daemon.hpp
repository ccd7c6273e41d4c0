// clovisd's process-level duties: options, one instance per state directory,
// network namespace, attaching programs, the API server, the resident loop,
// uninstall, dump.
#pragma once

#include "core/conntrack.hpp"

#include <string>
#include <vector>

#include "agent/agent.hpp"
#include "kernel/bpf_dataplane.hpp"
#include "service/server.hpp"

namespace clovis::agent {

struct DaemonOptions {
  std::string config = "/etc/clovis/wan.yaml";
  bool config_explicit = false;
  // Apply the config file whenever it changes (inotify on its directory),
  // not only at start and on SIGHUP: clovisd(8), "Following the config file".
  bool follow_config = false;
  std::vector<std::string> lan;  // LAN-facing interfaces to attach to
  std::string netns;             // operate inside /run/netns/NAME
  AgentOptions agent;
  kernel::BpfOptions bpf;
  service::ServerOptions api;  // the agent API's Unix socket
  // The ext_authz Authorization service's socket; an empty path: not served.
  service::ServerOptions authz{.socket_path = service::kDefaultAuthzSocket,
                               .group = service::kDefaultAuthzGroup,
                               .max_message_bytes = static_cast<int>(service::kMaxCheckMessageBytes),
                               .max_send_bytes = static_cast<int>(service::kMaxCheckMessageBytes)};
  size_t max_watchers = service::kDefaultMaxWatchers;  // WatchFlows + WatchEvents streams at once
  // Threads answering Checks, each on a completion queue of its own. One has
  // the lowest latency and answered 20,000 Checks/s on a 2-vCPU host whose
  // other core ran the load (docs/BENCHMARKS.md); more are for many cores.
  unsigned authz_threads = 1;
  // How long an idle flow lives in each connection state (--flow-timeout).
  core::FlowTimeouts flow_timeouts;
  size_t l7_sessions = 16384;  // proxies' session facts kept for `clovisctl flows`
  std::string metrics_listen;  // ADDRESS:PORT of /metrics (Prometheus); empty: off
  bool once = false;           // apply, attach and exit (steering stays)
  bool uninstall = false;      // detach, remove routes and pins, exit
  bool dump = false;           // print kernel state as JSON, exit
};

// Runs clovisd; returns the process exit code.
int run_daemon(const DaemonOptions& o);

}  // namespace clovis::agent
