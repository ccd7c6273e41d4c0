#include "health_manager.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>

namespace clovis::agent::health {

namespace {

bool same_health(const std::optional<core::Health>& a, const std::optional<core::Health>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a) return true;
  if (a->probes.size() != b->probes.size()) return false;
  for (size_t i = 0; i < a->probes.size(); ++i)
    if (a->probes[i].kind != b->probes[i].kind || !(a->probes[i].target == b->probes[i].target) ||
        a->probes[i].port != b->probes[i].port || a->probes[i].path != b->probes[i].path ||
        a->probes[i].name != b->probes[i].name)
      return false;
  return a->interval_ms == b->interval_ms && a->timeout_ms == b->timeout_ms && a->down_after == b->down_after &&
         a->up_after == b->up_after && a->reliability == b->reliability && a->max_loss_pct == b->max_loss_pct &&
         a->max_latency_ms == b->max_latency_ms && a->max_jitter_ms == b->max_jitter_ms;
}

std::unique_ptr<LinkProber> make_prober(const HealthLink& l) {
  if (!l.health || l.health->probes.empty()) return nullptr;
  LinkProbeSpec spec;
  spec.slot = l.slot;
  spec.name = l.name;
  spec.interface = l.interface;
  spec.mark = l.mark;
  spec.timeout = std::chrono::milliseconds(l.health->timeout_ms);
  for (const auto& p : l.health->probes) spec.targets.push_back({p.kind, p.target, p.port, p.path, p.name});
  return std::make_unique<LinkProber>(std::move(spec));
}

int64_t unix_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

LinkChange change(int slot, const std::string& link, const Transition& t, const Quality& q) {
  return {unix_ms(std::chrono::system_clock::now()),
          slot,
          link,
          t.from,
          t.to,
          t.reason,
          LinkChange::Source::kHealth,
          q,
          {}};
}

}  // namespace

HealthManager::HealthManager(OnUpdate on_update, std::function<bool(const std::string&)> carrier)
    : on_update_(std::move(on_update)), carrier_(std::move(carrier)) {
  if (int fds[2]; pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0) wake_[0].reset(fds[0]), wake_[1].reset(fds[1]);
  thread_ = std::thread([this] { run(); });
}

HealthManager::~HealthManager() {
  stop_ = true;
  if (wake_[1] && write(wake_[1].get(), "x", 1) < 0) { /* the loop wakes within a second anyway */
  }
  if (thread_.joinable()) thread_.join();
}

void HealthManager::configure(const std::vector<HealthLink>& links) {
  const auto now = Clock::now();
  std::lock_guard lock(mu_);
  std::map<int, Entry> next;
  for (const auto& l : links) {
    auto it = links_.find(l.slot);
    if (it != links_.end() && it->second.cfg.name == l.name && it->second.cfg.interface == l.interface &&
        it->second.cfg.mark == l.mark && same_health(it->second.cfg.health, l.health)) {
      next.emplace(l.slot, std::move(it->second));
      continue;
    }
    next.emplace(l.slot, Entry{l, LinkMonitor(l.health, carrier_(l.interface), now), make_prober(l), now});
  }
  links_ = std::move(next);
  if (wake_[1] && write(wake_[1].get(), "x", 1) < 0) { /* pipe full: the loop is awake already */
  }
}

void HealthManager::set_round_observer(OnRound f) {
  std::lock_guard lock(mu_);
  on_round_ = std::move(f);
}

std::vector<LinkVerdict> HealthManager::snapshot() const {
  // `since` on the wall clock: as long ago as the monitor's steady time.
  const auto steady = Clock::now();
  const int64_t wall = unix_ms(std::chrono::system_clock::now());
  std::lock_guard lock(mu_);
  std::vector<LinkVerdict> out;
  for (const auto& [slot, e] : links_) {
    const auto ago = std::chrono::duration_cast<std::chrono::milliseconds>(steady - e.monitor.since()).count();
    out.push_back({slot, e.cfg.name, e.monitor.state(), e.monitor.reason(), e.monitor.quality(),
                   e.monitor.transitions(), wall - ago});
  }
  return out;
}

void HealthManager::handle_event(const LinkEvent& ev, Clock::time_point now) {
  std::vector<LinkChange> changes;
  {
    std::lock_guard lock(mu_);
    for (auto& [slot, e] : links_) {
      if (e.cfg.interface != ev.name) continue;
      if (auto t = e.monitor.carrier(ev.up && ev.carrier && !ev.removed, now))
        changes.push_back(change(slot, e.cfg.name, *t, e.monitor.quality()));
    }
  }
  if (!changes.empty()) on_update_(changes);
}

bool HealthManager::tick(Clock::time_point now, std::vector<LinkChange>* changes) {
  bool rounds = false;
  for (auto& [slot, e] : links_) {
    if (!e.prober) continue;
    e.prober->expire(now);
    if (auto results = e.prober->take_round()) {
      rounds = true;
      if (on_round_) on_round_(e.cfg.name, *results);
      if (auto t = e.monitor.round(*results, now))
        changes->push_back(change(slot, e.cfg.name, *t, e.monitor.quality()));
    }
    if (now >= e.next_round && !e.prober->in_round()) {
      e.prober->start_round(now);
      e.next_round = now + std::chrono::milliseconds(e.cfg.health->interval_ms);
    }
  }
  return rounds;
}

Clock::time_point HealthManager::next_wakeup() const {
  auto at = Clock::now() + std::chrono::seconds(1);
  for (const auto& [slot, e] : links_) {
    if (!e.prober) continue;
    at = std::min(at, e.next_round);
    if (e.prober->in_round()) at = std::min(at, e.prober->deadline());
  }
  return at;
}

void HealthManager::run() {
  auto events = LinkEvents::open();  // without it, probes (and the agent's poll) still work
  while (!stop_) {
    std::vector<pollfd> fds;
    fds.push_back({wake_[0].get(), POLLIN, 0});
    if (events) fds.push_back({events->fd(), POLLIN, 0});
    const size_t first_probe_fd = fds.size();
    Clock::time_point wake_at;
    {
      std::lock_guard lock(mu_);
      for (const auto& [slot, e] : links_)
        if (e.prober) e.prober->fds(&fds);
      wake_at = next_wakeup();
    }
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(wake_at - Clock::now()).count();
    poll(fds.data(), fds.size(), static_cast<int>(std::clamp<long long>(wait, 0, 1000)));
    const auto now = Clock::now();
    if (fds[0].revents) {
      char buf[64];
      while (read(wake_[0].get(), buf, sizeof buf) > 0) {
      }
    }
    if (events && fds[1].revents) events->drain([&](const LinkEvent& ev) { handle_event(ev, now); });
    std::vector<LinkChange> changed;
    bool measured = false;
    {
      std::lock_guard lock(mu_);
      for (size_t i = first_probe_fd; i < fds.size(); ++i) {
        if (!fds[i].revents) continue;
        for (auto& [slot, e] : links_)
          if (e.prober) e.prober->on_ready(fds[i].fd, fds[i].revents, now);
      }
      measured = tick(now, &changed);
    }
    if (measured || !changed.empty()) on_update_(changed);
  }
}

}  // namespace clovis::agent::health
