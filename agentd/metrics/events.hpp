// What the exporter counts where it happens, for the events no snapshot
// keeps: applies by result, ext_authz Checks by result with their latency,
// probes sent and lost per target with their round-trip times. Each event is
// a few relaxed atomic adds (probes: one short lock per round of a link),
// nothing on the packet path; the collector reads them at scrape time.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace clovis::agent::metrics {

// A histogram of fixed buckets (upper bounds in seconds), updated lock-free:
// bucket counts are per bucket (made cumulative when read), the sum in
// nanoseconds. A read racing an observe may see the count before the sum.
class AtomicHistogram {
 public:
  static constexpr size_t kMaxBuckets = 16;
  explicit AtomicHistogram(std::span<const double> bounds);
  void observe(double seconds);
  struct Snapshot {
    std::vector<std::pair<double, uint64_t>> buckets;  // (le, cumulative), +Inf last
    uint64_t count = 0;
    double sum = 0;
  };
  Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  std::array<std::atomic<uint64_t>, kMaxBuckets + 1> counts_{};
  std::atomic<uint64_t> sum_ns_{0};
};

// Buckets of the histograms (seconds): a Check is answered in tens of
// microseconds; probes cross a WAN (milliseconds to a second).
inline constexpr std::array<double, 10> kCheckBuckets = {25e-6, 50e-6,  100e-6, 250e-6, 500e-6,
                                                         1e-3,  2.5e-3, 5e-3,   10e-3,  50e-3};
inline constexpr std::array<double, 12> kProbeBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                         0.1,   0.25,   0.5,   1,    2.5,   5};

// clovis_applies_total{result}: the daemon counts each apply the agent's hook
// reports by its cause (agent::ApplyCause) and outcome; the re-write of the
// running rule set after an interface change is no apply of a mapping.
enum class ApplyResultKind { kOk, kRejected, kReverted, kRolledBack };
inline constexpr std::array<const char*, 4> kApplyResults = {"ok", "rejected", "reverted", "rolled_back"};

// What reading and applying a followed config file (clovisd --follow-config)
// came to: applied, rejected (invalid: the running mapping stays), failed
// (the host refused the apply), unreadable (missing, no permission).
enum class FileApplyResult { kApplied, kRejected, kFailed, kUnreadable };
inline constexpr std::array<const char*, 4> kFileApplyResults = {"applied", "rejected", "failed", "unreadable"};

enum class CheckResult { kAllowed, kDenied, kError };
inline constexpr std::array<const char*, 3> kCheckResults = {"allowed", "denied", "error"};

// One probe's outcome (health::ProbeResult, without depending on health/).
struct ProbeOutcome {
  std::string target;
  bool sent = false;  // false: could not be sent for a reason of this host
  bool answered = false;
  double rtt_s = 0;
};

class Events {
 public:
  Events();
  void note_apply(ApplyResultKind k) { applies_[static_cast<size_t>(k)].fetch_add(1, std::memory_order_relaxed); }
  void note_file_apply(FileApplyResult r) {
    file_applies_[static_cast<size_t>(r)].fetch_add(1, std::memory_order_relaxed);
  }
  uint64_t file_applies(FileApplyResult r) const {
    return file_applies_[static_cast<size_t>(r)].load(std::memory_order_relaxed);
  }
  void note_check(CheckResult r, double seconds);
  void note_probe_round(const std::string& link, std::span<const ProbeOutcome> round);

  uint64_t applies(ApplyResultKind k) const { return applies_[static_cast<size_t>(k)].load(std::memory_order_relaxed); }
  uint64_t checks(CheckResult r) const { return checks_[static_cast<size_t>(r)].load(std::memory_order_relaxed); }
  AtomicHistogram::Snapshot check_latency() const { return check_latency_.snapshot(); }

  struct TargetCounts {
    uint64_t sent = 0, lost = 0;
  };
  struct LinkProbes {
    std::map<std::string, TargetCounts> targets;
    AtomicHistogram::Snapshot rtt;
  };
  // By link name: links probed since clovisd started (a removed link's
  // counters stay: Prometheus's counters do not go back).
  std::map<std::string, LinkProbes> probes() const;

 private:
  std::array<std::atomic<uint64_t>, kApplyResults.size()> applies_{};
  std::array<std::atomic<uint64_t>, kCheckResults.size()> checks_{};
  std::array<std::atomic<uint64_t>, kFileApplyResults.size()> file_applies_{};
  AtomicHistogram check_latency_;
  struct ProbeState {
    std::map<std::string, TargetCounts> targets;
    std::unique_ptr<AtomicHistogram> rtt;
  };
  mutable std::mutex probe_mu_;
  std::map<std::string, ProbeState> probes_;
};

}  // namespace clovis::agent::metrics
