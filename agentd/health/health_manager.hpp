// Runs link health for every link of the running mapping on one thread:
// carrier from netlink events, active probe rounds on each link's interval,
// a LinkMonitor per link. Reports every state change (a LinkChange) and
// every finished probe round to its owner, which hands the verdicts on to
// the agent (the kernel's link masks, and what Links shows).
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

class HealthManager {
 public:
  // Called on the manager's thread, outside its lock, after carrier events
  // or probe rounds: `changes` are the state changes they made, oldest
  // first; empty when rounds only measured (snapshot() has the new quality).
  using OnUpdate = std::function<void(const std::vector<LinkChange>& changes)>;
  // carrier(name) gives the carrier of an interface now (seeded once per link).
  HealthManager(OnUpdate on_update, std::function<bool(const std::string&)> carrier);
  ~HealthManager();
  HealthManager(const HealthManager&) = delete;
  HealthManager& operator=(const HealthManager&) = delete;

  // New link set (after an apply). Links whose name, interface and health are
  // unchanged keep their state and history.
  void configure(const std::vector<HealthLink>& links);
  // Every link's verdict now, by slot (masks_of() gives the kernel's masks).
  std::vector<LinkVerdict> snapshot() const;
  // Told of each finished probe round of a link (the metrics' per-target
  // counters). Runs on the health thread under its lock: it must not call
  // back. Set before or after configure().
  using OnRound = std::function<void(const std::string& link, const std::vector<ProbeResult>&)>;
  void set_round_observer(OnRound f);

 private:
  struct Entry {
    HealthLink cfg;
    LinkMonitor monitor;
    std::unique_ptr<LinkProber> prober;
    Clock::time_point next_round{};
  };
  void run();
  void handle_event(const LinkEvent& ev, Clock::time_point now);
  // False when no probe round finished.
  bool tick(Clock::time_point now, std::vector<LinkChange>* changes);
  Clock::time_point next_wakeup() const;

  OnUpdate on_update_;
  OnRound on_round_;  // under mu_
  std::function<bool(const std::string&)> carrier_;
  mutable std::mutex mu_;
  std::map<int, Entry> links_;  // by slot
  std::atomic<bool> stop_{false};
  core::Fd wake_[2];  // self-pipe: configure() and the destructor wake the loop
  std::thread thread_;
};

}  // namespace clovis::agent::health
