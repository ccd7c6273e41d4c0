#include "daemon/daemon.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "core/fd.hpp"
#include "daemon/config_file.hpp"
#include "daemon/dump.hpp"
#include "daemon/metrics_sources.hpp"
#include "daemon/uninstall.hpp"
#include "health/health_manager.hpp"
#include "kernel/host_watch.hpp"
#include "kernel/local_addresses.hpp"
#include "kernel/netlink_host.hpp"
#include "kernel/tc_attach.hpp"
#include "log/log.hpp"
#include "service/agent_service.hpp"
#include "service/authz_service.hpp"
#include "service/server.hpp"
#include "telemetry/telemetry.hpp"

namespace clovis::agent {

namespace {

// systemd's readiness protocol (sd_notify(3)): one datagram with the state
// to the socket $NOTIFY_SOCKET names ('@': abstract namespace); nothing when
// it is unset. Written out here rather than linking libsystemd for it: that
// library and the six it pulls in (gcrypt, lz4, zstd...) cost clovisd ~1 MB
// of resident memory and nothing else used them.
void notify(const char* state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (!path || (path[0] != '/' && path[0] != '@')) return;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  const size_t n = std::strlen(path);
  if (n >= sizeof sa.sun_path) return;
  std::memcpy(sa.sun_path, path, n);
  if (path[0] == '@') sa.sun_path[0] = '\0';
  core::Fd fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return;
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + n);
  if (sendto(fd.get(), state, std::strlen(state), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&sa), len) < 0) {
    log_warning(fmt::format("cannot notify the service manager on {}: {}", path, std::strerror(errno)));
  }
}

bool enter_netns(const std::string& name) {
  const std::string path = "/run/netns/" + name;
  core::Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd || setns(fd.get(), CLONE_NEWNET) != 0) {
    log_error(fmt::format("cannot enter network namespace {}: {}", path, std::strerror(errno)));
    return false;
  }
  return true;
}

// One clovisd per state directory: gRPC-style socket stealing aside, two
// agents writing the same pinned maps would fight over the active bank.
core::Fd take_lock(const std::string& state_dir) {
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  const std::string path = state_dir + "/clovisd.lock";
  core::Fd fd(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd) {
    log_error(fmt::format("cannot open lock file {}: {}", path, std::strerror(errno)));
    return fd;
  }
  if (flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = {};
    ssize_t n = pread(fd.get(), pid, sizeof pid - 1, 0);
    log_error(fmt::format("another clovisd (pid {}) holds {}; stop it first",
                          n > 0 ? std::string(pid, static_cast<size_t>(n)) : "?", path));
    return core::Fd{};
  }
  std::string me = std::to_string(getpid());
  if (ftruncate(fd.get(), 0) == 0 && pwrite(fd.get(), me.data(), me.size(), 0) < 0) { /* informational only */
  }
  return fd;
}

// The programs' attachments, and what was attached last. Used under the
// agent's lock (and at start, before any other thread).
class Attachments {
 public:
  // Attaches what the options and the running rule set ask for and detaches
  // what clovis attached before and is no longer wanted. A --lan interface
  // that does not exist is skipped with a warning (the others, and the WAN
  // side, are attached); it is attached when it appears. `force`: attach
  // even when nothing changed (a new program, an apply). False when an
  // attachment failed.
  bool update(const DaemonOptions& o, const core::CompiledRules* rules, kernel::BpfDataplane& dp,
              kernel::NetlinkHost& net, bool force) {
    auto want = wanted(o, rules, net);
    if (!force && same(want, last_)) return true;
    kernel::TcAttacher tc(o.bpf.pin_dir, o.agent.state_dir);
    for (const auto& a : want) {
      int fd = a.prog == "lan_in" ? dp.lan_in_fd() : a.prog == "lan_out" ? dp.lan_out_fd() : dp.wan_in_fd();
      if (auto st = tc.attach(a, fd); !st) {
        log_error(st.error().what());
        last_.clear();  // try again at the next look
        return false;
      }
    }
    (void)tc.prune(want);
    last_ = std::move(want);
    return true;
  }

 private:
  std::vector<kernel::Attachment> wanted(const DaemonOptions& o, const core::CompiledRules* rules,
                                         kernel::NetlinkHost& net) {
    std::vector<kernel::Attachment> out;
    for (const auto& ifname : o.lan) {
      auto ifs = net.interface(ifname);
      if (!ifs) {
        if (missing_.insert(ifname).second)
          log_warning(fmt::format("LAN interface {}: {}; its traffic is not steered until it appears", ifname,
                                  ifs.error().what()));
        continue;
      }
      if (missing_.erase(ifname)) log_info(fmt::format("LAN interface {} appeared: steering its traffic", ifname));
      out.push_back({ifname, ifs->ifindex, kernel::Hook::kIngress, "lan_in"});
      out.push_back({ifname, ifs->ifindex, kernel::Hook::kEgress, "lan_out"});
    }
    if (!rules) return out;
    for (int s = 0; s < CLV_MAX_LINKS; ++s) {
      const auto& li = rules->link_info[s];
      if (li.name.empty() || li.mode != core::SteerMode::kRedirect) continue;
      auto ifs = net.interface(li.interface);
      if (!ifs) continue;  // the link is down for it; attached when it appears
      bool dup = std::any_of(out.begin(), out.end(),
                             [&](const auto& a) { return a.ifindex == ifs->ifindex && a.prog == "wan_in"; });
      if (!dup) out.push_back({li.interface, ifs->ifindex, kernel::Hook::kIngress, "wan_in"});
    }
    return out;
  }

  static bool same(const std::vector<kernel::Attachment>& x, const std::vector<kernel::Attachment>& y) {
    return std::equal(x.begin(), x.end(), y.begin(), y.end(), [](const auto& a, const auto& b) {
      return a.ifname == b.ifname && a.ifindex == b.ifindex && a.hook == b.hook && a.prog == b.prog;
    });
  }

  std::vector<kernel::Attachment> last_;
  std::set<std::string> missing_;  // --lan interfaces warned about
};

sigset_t handled_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

// What clovis_applies_total counts an apply as; nothing for the re-write of
// the running mapping after an interface change.
std::optional<metrics::ApplyResultKind> apply_kind(ApplyCause cause, bool ok) {
  if (cause == ApplyCause::kReapply) return std::nullopt;
  if (!ok) return metrics::ApplyResultKind::kRejected;
  switch (cause) {
    case ApplyCause::kRevert: return metrics::ApplyResultKind::kReverted;
    case ApplyCause::kRollback: return metrics::ApplyResultKind::kRolledBack;
    case ApplyCause::kSubmit:
    case ApplyCause::kReapply: break;  // -Wswitch: a new cause must be placed here
  }
  return metrics::ApplyResultKind::kOk;
}

// Every apply after start-up (API, reload, revert, re-apply) is logged and
// brings the attachments up to date (redirect-mode links get clv_wan_in).
// Runs under the agent's lock, which also keeps rtnetlink use in one thread.
void on_apply(const DaemonOptions& o, const std::string& source, const ApplyResult& r,
              const core::CompiledRules* running, kernel::BpfDataplane& dp, kernel::NetlinkHost& net,
              Attachments& attached) {
  if (!r) {
    if (r.error().kind != ApplyFailure::kRejected) log_error(fmt::format("{}: {}", source, r.error().message()));
    else report(core::Unexpected<core::Diagnostics>{r.error().diagnostics}, source);
    return;
  }
  report(r->report, source);
  if (r->confirm_deadline_unix_ms)
    log_info(
        fmt::format("generation {} waits for confirmation (clovisctl confirm) for {} s; unconfirmed, the "
                    "previous mapping comes back",
                    r->report.generation, (r->confirm_deadline_unix_ms - now_unix_ms() + 999) / 1000));
  attached.update(o, running, dp, net, true);
}

// SIGHUP: the config file again (a followed one even when unchanged).
void reload(const DaemonOptions& o, Agent& agent, FileFollow* follow) {
  notify("RELOADING=1");
  if (follow) {
    follow_step(agent, *follow, true);
  } else if (auto text = core::read_file(o.config); !text) {
    log_error("reload: " + text.error().what());
  } else {
    (void)agent.apply(*text, o.config);  // logged by on_apply
  }
  notify("READY=1");
}

// Health checking for the running mapping's links: one thread (probes,
// carrier events). This wires its verdicts and changes to the agent, which
// writes the kernel's link state and keeps both for Links and events.
// Reconfigured after every apply.
class Health {
 public:
  explicit Health(Agent& agent)
      : agent_(agent),
        net_(kernel::NetlinkHost::open()),
        manager_([this](const std::vector<LinkChange>& changes) { updated(changes); },
                 [this](const std::string& ifname) { return carrier(ifname); }) {}

  void configure() {
    auto rules = agent_.running();
    const std::vector<core::Link> model = agent_.links_of_model();
    std::vector<health::HealthLink> links;
    for (int s = 0; rules && s < CLV_MAX_LINKS; ++s) {
      const auto& li = rules->link_info[s];
      if (li.name.empty()) continue;
      auto l = std::find_if(model.begin(), model.end(), [&](const core::Link& x) { return x.name == li.name; });
      links.push_back({s, li.name, li.interface, rules->links[s].mark, l != model.end() ? l->health : std::nullopt});
    }
    manager_.configure(links);
    publish(nullptr);
  }
  std::vector<LinkVerdict> snapshot() const { return manager_.snapshot(); }
  // The smoothed qualities to the agent, for the policies' SLAs: after each
  // finished probe round and each state change (so an SLA acts within a
  // probe interval, not at the next turn of the resident loop).
  void publish_quality() {
    core::LinkQualities q{};
    for (const auto& l : manager_.snapshot())
      if (l.slot >= 0 && l.slot < CLV_MAX_LINKS)
        q[static_cast<size_t>(l.slot)] = {l.quality.latency_ms, l.quality.jitter_ms, l.quality.loss_pct,
                                          l.quality.measured};
    if (auto st = agent_.set_quality(q); !st) log_warning("link quality: " + st.error().what());
  }
  void on_rounds(health::HealthManager::OnRound f) { manager_.set_round_observer(std::move(f)); }

 private:
  bool carrier(const std::string& ifname) {
    if (!net_) return true;
    auto st = (*net_)->interface(ifname);
    return st && st->up;
  }
  void updated(const std::vector<LinkChange>& changes) {
    if (changes.empty()) {  // new measurements only: the views, and the SLAs at once
      agent_.set_verdicts(manager_.snapshot());
      return publish_quality();
    }
    for (const auto& c : changes) {
      (c.to == LinkState::kUp ? log_info : log_warning)(
          fmt::format("link {}: {} -> {} ({})", c.link, to_string(c.from), to_string(c.to), c.reason));
      publish(&c);
    }
  }
  void publish(const LinkChange* change) {
    if (auto st = agent_.set_health(manager_.snapshot(), change); !st) log_warning("link state: " + st.error().what());
    publish_quality();
  }

  Agent& agent_;
  core::Result<std::unique_ptr<kernel::NetlinkHost>> net_;  // this thread's own: NetlinkHost is not shared
  health::HealthManager manager_;
};

// Expiry looks every 10 s, or often enough that no flow outlives its
// timeout by more than half of it (shortened timeouts, tests).
std::chrono::milliseconds expire_every(const core::FlowTimeouts& t) {
  const uint64_t half_ms = core::shortest_flow_timeout_s(t) * 500ull;
  return std::chrono::milliseconds(std::clamp<uint64_t>(half_ms, 1000, 10000));
}

// Housekeeping between signals: link state, confirmations, counters for
// rates, and (every 10 s) idle flows; the heap is trimmed then, and once
// the API has quietly parsed a mapping.
// Netlink events bring host changes at once; this look catches what a lost
// event would hide (and everything, when the subscription failed).
void tick(const DaemonOptions& o, Agent& agent, kernel::BpfDataplane& dp, Telemetry& telemetry, SessionTable& sessions,
          std::chrono::steady_clock::time_point* last_expire, std::chrono::steady_clock::time_point* last_look,
          bool watching, const std::function<void()>& reattach) {
  const auto look_every = watching ? std::chrono::seconds(10) : std::chrono::seconds(1);
  if (std::chrono::steady_clock::now() - *last_look >= look_every) {
    *last_look = std::chrono::steady_clock::now();
    if (auto st = agent.refresh_link_state(false); !st) log_warning("link state: " + st.error().what());
    reattach();
  }
  (void)agent.check_confirm(now_unix_ms());  // a revert is logged by on_apply
  // Each second: a metered link leaves its policies within a second of
  // crossing its budget (at 100 Mbit/s, ~12 MB past it).
  if (auto st = agent.sample_budgets(now_unix_ms() / 1000); !st) log_warning("link budgets: " + st.error().what());
  telemetry.sample_links();
  bool trim = telemetry.trim_due();
  auto now = std::chrono::steady_clock::now();
  if (now - *last_expire >= expire_every(o.flow_timeouts)) {
    *last_expire = now;
    auto gone = dp.expire_flows(monotonic_ns(), o.flow_timeouts);
    if (!gone) log_warning("flow expiry: " + gone.error().what());
    // A proxy's session facts go with their flow (expired above, or evicted
    // by the LRU table); one reported within the last sweep stays anyway.
    sessions.prune(monotonic_ns() - 10'000'000'000ull, [&dp](const clv_flow_key& k) {
      auto r = dp.has_flow(k);
      return !r || *r;  // on a read error, keep it
    });
    trim = true;
  }
  // glibc keeps freed heap (a parse of a large mapping, the requests of
  // busy clients); an edge host's agent should give it back.
  if (trim) malloc_trim(0);
}

// Until the next tick: a second, or less when a confirmation falls due. An
// overdue one (a revert the kernel refused) is retried every second.
int poll_timeout_ms(const Agent& agent) {
  const int64_t left = agent.confirm_deadline_unix_ms() - now_unix_ms() + 1;
  if (!agent.confirm_deadline_unix_ms() || left <= 0) return 1000;
  return static_cast<int>(std::min<int64_t>(left, 1000));
}

int resident_loop(const DaemonOptions& o, Agent& agent, kernel::BpfDataplane& dp, kernel::NetlinkHost& net,
                  Attachments& attached, Telemetry& telemetry, SessionTable& sessions, service::ApiServer& server,
                  Health& health, int reconfigure_fd, kernel::LocalAddresses& local, FileFollow* follow) {
  // A --lan interface that appeared, or one re-created with a new index.
  auto reattach = [&] {
    agent.run_locked([&](const core::CompiledRules* running) { attached.update(o, running, dp, net, false); });
  };
  sigset_t set = handled_signals();
  const core::Fd sfd(signalfd(-1, &set, SFD_CLOEXEC));
  auto watch = kernel::HostWatch::open();
  if (!watch) log_warning("interface changes are seen by polling each second: " + watch.error().what());
  notify("READY=1");
  auto last_expire = std::chrono::steady_clock::now(), last_look = last_expire;
  for (;;) {
    pollfd fds[4] = {{sfd.get(), POLLIN, 0},
                     {reconfigure_fd, POLLIN, 0},
                     {watch ? watch->fd() : -1, POLLIN, 0},
                     {follow ? follow->follower->fd() : -1, POLLIN, 0}};
    poll(fds, 4, follow_timeout_ms(follow, poll_timeout_ms(agent)));
    if (follow) follow_poll(agent, *follow, fds[3].revents != 0);
    if (fds[2].revents && watch->drain()) {  // an interface or address changed
      if (auto st = agent.refresh_link_state(true); !st) log_warning("link state: " + st.error().what());
      reattach();
      if (auto st = local.refresh(); !st) log_warning("the host's addresses: " + st.error().what());
    }
    if (fds[1].revents) {  // an apply happened: the links to watch may have changed
      char buf[64];
      while (read(reconfigure_fd, buf, sizeof buf) > 0) {
      }
      health.configure();
    }
    if (fds[0].revents) {
      signalfd_siginfo si{};
      if (read(sfd.get(), &si, sizeof si) != sizeof si) continue;
      if (si.ssi_signo == SIGHUP) {
        reload(o, agent, follow);
        continue;
      }
      log_info("stopping; steering stays in the kernel (clovisd --uninstall removes it)");
      notify("STOPPING=1");
      server.shutdown();
      return 0;
    }
    tick(o, agent, dp, telemetry, sessions, &last_expire, &last_look, watch.ok(), reattach);
  }
}

// The API, once the agent runs what it should: the socket appears when
// clovisd can answer, and READY=1 follows.
int serve(const DaemonOptions& o, Agent& agent, kernel::BpfDataplane& dp, kernel::NetlinkHost& net,
          Attachments& attached, service::SocketLock lock, std::optional<service::SocketLock> authz_lock,
          std::chrono::steady_clock::time_point started, FileFollow* follow) {
  // The hook runs under the agent's lock: it only wakes the loop, which then
  // reconfigures health outside the lock.
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    log_error(std::string("pipe: ") + std::strerror(errno));
    return 1;
  }
  const core::Fd wake[2] = {core::Fd(pipe_fds[0]), core::Fd(pipe_fds[1])};
  metrics::Events events;  // counted whether or not metrics are served: a few atomic adds
  agent.set_apply_hook([&o, &dp, &net, &attached, &wake, &events](ApplyCause cause, const std::string& source,
                                                                  const ApplyResult& r,
                                                                  const core::CompiledRules* running) {
    on_apply(o, source, r, running, dp, net, attached);
    if (auto k = apply_kind(cause, r.ok())) events.note_apply(*k);
    if (write(wake[1].get(), "x", 1) < 0) { /* already pending */
    }
  });
  // The hook writes to `wake`, which closes when serve() returns: it is
  // cleared on every way out, the early error returns too, before the pipe
  // closes (declared after it, so destroyed first).
  struct ClearApplyHook {
    Agent& agent;
    ~ClearApplyHook() { agent.set_apply_hook({}); }
  } clear_hook{agent};
  Health health(agent);
  health.on_rounds([&events](const std::string& link, const std::vector<health::ProbeResult>& round) {
    events.note_probe_round(link, probe_outcomes(round));
  });
  health.configure();
  auto exporter = start_exporter(
      o.metrics_listen, agent, dp, [&health] { return health.snapshot(); }, events);
  if (!exporter) {
    log_error(exporter.error().what());
    return 1;
  }
  service::ServiceOptions so;
  so.pin_dir = o.bpf.pin_dir;
  if (*exporter) so.metrics_url = (*exporter)->url();
  so.attachments = [&o] { return kernel::TcAttacher(o.bpf.pin_dir, o.agent.state_dir).pinned(); };
  so.started = started;
  SessionTable sessions(o.l7_sessions);
  so.sessions = &sessions;
  so.max_watchers = o.max_watchers;
  if (follow) {
    follow->events = &events;
    so.config_file = [follow] { return follow->status.get(); };
  }
  Telemetry telemetry(dp);  // rates, Simulate's classifier, the trim clock
  service::AgentService api(agent, telemetry, so);
  auto server = service::ApiServer::start(o.api, api, std::move(lock));
  if (!server) {
    log_error("API socket " + server.error().what());
    return 1;
  }
  for (const auto& n : (*server)->notes()) log_warning(n);
  log_info(fmt::format("listening on {}", (*server)->path()));
  kernel::LocalAddresses local;
  if (auto st = local.refresh(); !st) log_warning("the host's addresses: " + st.error().what());
  service::AuthzService authz(agent, dp, &sessions, [&local](const core::IpAddr& a) { return local.contains(a); });
  authz.set_observer([&events](service::AuthzService::Outcome r, double s) {
    using O = service::AuthzService::Outcome;
    events.note_check(r == O::kDenied  ? metrics::CheckResult::kDenied
                      : r == O::kError ? metrics::CheckResult::kError
                                       : metrics::CheckResult::kAllowed,
                      s);
  });
  std::unique_ptr<service::ApiServer> authz_server;
  if (authz_lock) {
    auto s = service::ApiServer::start(o.authz, authz.grpc_service(), authz.serving(o.authz_threads),
                                       std::move(*authz_lock));
    if (!s) {
      log_error("ext_authz socket " + s.error().what());
      return 1;
    }
    authz_server = std::move(*s);
    for (const auto& n : authz_server->notes()) log_warning(n);
    log_info(fmt::format("ext_authz (envoy.service.auth.v3.Authorization) on {}{}", authz_server->path(),
                         authz_server->tcp_port() ? fmt::format(" and TCP port {}", authz_server->tcp_port()) : ""));
  }
  int rc =
      resident_loop(o, agent, dp, net, attached, telemetry, sessions, **server, health, wake[0].get(), local, follow);
  if (authz_server) authz_server->shutdown();
  if (follow) follow->events = nullptr;  // `events` ends with this function
  return rc;
}

// A resident agent on a small edge host, not a throughput server: glibc's
// defaults trade memory for speed it does not need. Without these, every
// gRPC thread gets an arena of its own that keeps what it freed (one arena:
// the per-thread caches take most small blocks without its lock), and
// blocks above the (self-raising) mmap threshold stay in the heap after a
// large listing or watch; with them, blocks of 256 KiB and more (kernel
// batch buffers, a watch's flow map) go back to the kernel when freed.
void tune_malloc() {
  mallopt(M_ARENA_MAX, 1);
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
}

}  // namespace

int run_daemon(const DaemonOptions& o) {
  tune_malloc();
  const auto started = std::chrono::steady_clock::now();
  // Blocked from the start (read later through a signalfd): a SIGHUP or
  // SIGTERM during start-up is handled once the loop runs, not fatal.
  sigset_t set = handled_signals();
  sigprocmask(SIG_BLOCK, &set, nullptr);
  if (!o.netns.empty() && !enter_netns(o.netns)) return 1;
  auto net = kernel::NetlinkHost::open();
  if (!net) {
    log_error(net.error().what());
    return 1;
  }
  if (o.dump) return dump_state(o.bpf, o.agent.state_dir, std::cout);
  if (o.lan.empty() && !o.uninstall) {
    log_error("no LAN interface given: use --lan IFACE (the interfaces application traffic enters from)");
    return 2;
  }
  const core::Fd lock = take_lock(o.agent.state_dir);
  if (!lock) return 1;
  if (o.uninstall) return uninstall(o);
  // Before the kernel is touched: a second clovisd for this socket stops here.
  std::optional<service::SocketLock> api_lock;
  if (!o.once) {
    auto l = service::SocketLock::take(o.api.socket_path);
    if (!l) {
      log_error("API socket " + l.error().what());
      return 1;
    }
    api_lock = std::move(*l);
  }
  std::optional<service::SocketLock> authz_lock;
  if (o.authz.socket_path.empty() && !o.authz.tcp_listen.empty()) {
    log_error("--authz-listen serves the ext_authz service beside its socket: give --authz-socket a path");
    return 1;
  }
  if (!o.once && o.authz.socket_path == o.api.socket_path) {
    log_error("--authz-socket and --socket must be different paths");
    return 2;
  }
  if (!o.once && !o.authz.socket_path.empty()) {
    auto l = service::SocketLock::take(o.authz.socket_path);
    if (!l) {
      log_error("ext_authz socket " + l.error().what());
      return 1;
    }
    authz_lock = std::move(*l);
  }
  auto dp = kernel::BpfDataplane::open(o.bpf);
  if (!dp) {
    log_error(dp.error().what());
    return 1;
  }
  if ((*dp)->options().flow_table_size != o.bpf.flow_table_size)
    log_warning(
        fmt::format("the flow table keeps its pinned size of {} entries (asked {}); "
                    "clovisd --uninstall, then start again to resize",
                    (*dp)->options().flow_table_size, o.bpf.flow_table_size));
  Agent agent(o.agent, **dp, **net);
  std::unique_ptr<FileFollow> follow;
  if (!start_mapping(o, agent, &follow)) return 1;
  malloc_trim(0);  // what parsing and compiling the start-up mapping freed
  Attachments attached;
  if (!attached.update(o, agent.running().get(), **dp, **net, true)) return 1;
  // An older clovisd's program was attached until now: what it added to the
  // maps open() migrated is copied too (a failure leaves the old pins for the
  // next start to resume; the flows copied so far are steered already).
  if (auto st = (*dp)->finish_migration(); !st) log_error(st.error().what());
  if (o.once) return 0;
  return serve(o, agent, **dp, **net, attached, std::move(*api_lock), std::move(authz_lock), started, follow.get());
}

}  // namespace clovis::agent
