// The health of one WAN link, as a pure state machine: carrier events and
// probe rounds in, state (up / degraded / down), since when, why, and
// smoothed latency, jitter and loss out. No sockets, no clock: callers pass
// the time, so tests drive it with synthetic time.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "core/model.hpp"
#include "link/link_state.hpp"

namespace clovis::agent::health {

using Clock = std::chrono::steady_clock;

struct ProbeResult {
  std::string target;  // "icmp 192.0.2.1", "tcp 203.0.113.5:443"
  bool ok = false;
  double rtt_ms = 0;
  // Non-empty when the probe could not be sent at all for a reason of this
  // host (no socket: a missing capability): why. Such a result says nothing
  // about the link and counts neither as answered nor as lost.
  std::string cannot_probe;
  // Why a probe failed when there is more to say than "unanswered":
  // "http 503", "connection refused", "dns SERVFAIL", "timeout".
  std::string why;
};

struct Transition {
  LinkState from, to;
  Clock::time_point at;
  std::string reason;
};

class LinkMonitor {
 public:
  // Without a health section only the carrier decides.
  LinkMonitor(std::optional<core::Health> cfg, bool carrier, Clock::time_point now);

  // Carrier (IFF_LOWER_UP) changes are believed at once: the cheapest, fastest signal.
  std::optional<Transition> carrier(bool up, Clock::time_point now);
  // One round: a result per configured probe target.
  std::optional<Transition> round(const std::vector<ProbeResult>& results, Clock::time_point now);

  LinkState state() const { return state_; }
  Clock::time_point since() const { return since_; }
  const std::string& reason() const { return reason_; }
  const Quality& quality() const { return quality_; }
  bool has_probes() const { return cfg_.has_value() && !cfg_->probes.empty(); }
  uint64_t transitions() const { return transitions_; }

 private:
  std::optional<Transition> move(LinkState to, Clock::time_point now, std::string reason);
  void smooth(const std::vector<ProbeResult>& results);
  std::string quality_problem() const;  // empty when within the thresholds

  std::optional<core::Health> cfg_;
  bool carrier_;
  LinkState state_;
  Clock::time_point since_;
  std::string reason_;
  Quality quality_;
  double last_rtt_ = -1;
  uint32_t bad_rounds_ = 0, good_rounds_ = 0;
  uint64_t transitions_ = 0;
};

}  // namespace clovis::agent::health
