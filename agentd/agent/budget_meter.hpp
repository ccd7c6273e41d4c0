// Metered links' budgets as the agent keeps them: each one's count for the
// current period, read from its interface's counters (HostNetwork), and
// STATE_DIR/budget.json, which carries the counts across restarts of
// clovisd and reboots of the host:
//
//   {"links": {NAME: {"period_start": UNIX_S, "used": BYTES,
//                     "rx": BYTES, "tx": BYTES, "ifindex": N, "boot_id": ID}}}
//
// rx/tx/ifindex/boot_id are the reading `used` counts up to: a restarted
// clovisd adds what the interface moved since, and a reboot or a re-created
// interface is told by its new boot id or index (core::count_budget). The
// file is written (atomically) when a link crosses its budget or a period
// ends, and otherwise at most every kSaveEvery: a crash of clovisd loses
// nothing (the next reading counts from the saved one); a crash of the host
// or a re-made interface loses at most what the link moved in the kSaveEvery
// before it. A file that is not what clovisd writes is set aside, and the
// links count again from their next reading. Under the agent's lock.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/budget.hpp"
#include "core/compiled.hpp"
#include "link/link_state.hpp"
#include "ports/host_network.hpp"

namespace clovis::agent {

// A metered link went over its budget, or back under it (a new period, a
// larger budget).
struct BudgetChange {
  int slot = 0;
  std::string link;
  BudgetStatus status;
};

class BudgetMeter {
 public:
  static constexpr int64_t kSaveEvery = 10;  // seconds

  explicit BudgetMeter(std::string state_dir) : path_(std::move(state_dir) + "/budget.json") {}

  // Reads budget.json (a bad one is set aside).
  void load();
  // Reads the counters of `c`'s metered links and counts them at `now_unix_s`;
  // returns the links whose over-budget state changed since the last call.
  std::vector<BudgetChange> sample(const core::CompiledRules& c, HostNetwork& net, int64_t now_unix_s);
  // The first reading of `c`'s metered links that have none yet, at once
  // (an apply that gives a link its budget): the count starts there, not
  // at the next sample().
  void baseline(const core::CompiledRules& c, HostNetwork& net, int64_t now_unix_s);
  // The slots of `c`'s links over budget at `now_unix_s`, as counted so far.
  uint64_t over_mask(const core::CompiledRules& c, int64_t now_unix_s) const;
  std::optional<BudgetStatus> status(const core::CompiledRules& c, int slot, int64_t now_unix_s) const;
  // Writes budget.json when something changed and it is due (or `force`).
  core::Status save(int64_t now_unix_s, bool force = false);

 private:
  std::string path_;
  std::map<std::string, core::BudgetCount> counts_;  // by link name: slots change across applies
  std::map<std::string, std::string> errors_;        // by link name: why its counters could not be read
  std::map<std::string, bool> over_;                 // as last reported by sample()
  bool dirty_ = false;
  int64_t saved_unix_s_ = 0;
};

}  // namespace clovis::agent
