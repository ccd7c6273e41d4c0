// Runs link health for every link of the running mapping on one thread:
// carrier from netlink events, active probe rounds on each link's interval,
// a LinkMonitor per link. Reports every state change to its owner, which
// turns the states into the kernel's link masks.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/fd.hpp"
#include "link_events.hpp"
#include "link_monitor.hpp"
#include "prober.hpp"

namespace clovis::agent::health {

struct HealthLink {
  int slot = 0;
  std::string name;
  std::string interface;
  uint32_t mark = 0;  // probes carry it: the link's routing table
  std::optional<core::Health> health;
};

struct LinkStatus {
  int slot = 0;
  std::string name;
  LinkState state = LinkState::kDown;
  Clock::time_point since{};
  std::string reason;
  Quality quality;
  uint64_t transitions = 0;
};

struct HealthEvent {
  int slot = 0;
  std::string link;
  Transition transition;
  Quality quality;
};

class HealthManager {
 public:
  using OnChange = std::function<void(const HealthEvent&)>;
  // carrier(name) gives the carrier of an interface now (seeded once per link).
  HealthManager(OnChange on_change, std::function<bool(const std::string&)> carrier);
  ~HealthManager();
  HealthManager(const HealthManager&) = delete;
  HealthManager& operator=(const HealthManager&) = delete;

  // New link set (after an apply). Links whose name, interface and health are
  // unchanged keep their state and history.
  void configure(const std::vector<HealthLink>& links);
  std::vector<LinkStatus> snapshot() const;
  // Told of each finished probe round of a link (the metrics' per-target
  // counters). Runs on the health thread under its lock: it must not call
  // back. Set before or after configure().
  using OnRound = std::function<void(const std::string& link, const std::vector<ProbeResult>&)>;
  void set_round_observer(OnRound f);
  // The kernel's view: up (not down) and degraded masks by slot.
  void masks(uint64_t* up, uint64_t* degraded) const;

 private:
  struct Entry {
    HealthLink cfg;
    LinkMonitor monitor;
    std::unique_ptr<LinkProber> prober;
    Clock::time_point next_round{};
  };
  void run();
  void handle_event(const LinkEvent& ev, Clock::time_point now);
  void tick(Clock::time_point now, std::vector<HealthEvent>* events);
  Clock::time_point next_wakeup() const;

  OnChange on_change_;
  OnRound on_round_;  // under mu_
  std::function<bool(const std::string&)> carrier_;
  mutable std::mutex mu_;
  std::map<int, Entry> links_;  // by slot
  std::atomic<bool> stop_{false};
  core::Fd wake_[2];  // self-pipe: configure() and the destructor wake the loop
  std::thread thread_;
};

}  // namespace clovis::agent::health
