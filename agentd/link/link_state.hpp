// A link's state, the one model: what the health checker judges
// (LinkVerdict), what changed and who saw it (LinkChange), and what a
// reader is shown of a link (LinkView). health/ makes verdicts and changes,
// agent/ keeps them and builds views, service/ converts them for the wire.
// Depends on core only, so that every one of those folders may use it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/model.hpp"

namespace clovis::agent {

enum class LinkState { kUp, kDegraded, kDown };
// "up", "degraded", "down": the wire's and the log's words.
inline const char* to_string(LinkState s) {
  switch (s) {
    case LinkState::kUp: return "up";
    case LinkState::kDegraded: return "degraded";
    case LinkState::kDown: return "down";
  }
  return "?";
}

struct Quality {
  double latency_ms = 0;  // EWMA of round-trip times of answered probes
  double jitter_ms = 0;   // EWMA of |rtt - previous rtt|
  double loss_pct = 0;    // EWMA of the share of unanswered probes per round
  bool measured = false;  // at least one answered probe
};

// The health checker's view of one link.
struct LinkVerdict {
  int slot = 0;
  std::string name;
  LinkState state = LinkState::kDown;
  std::string reason;
  Quality quality;
  uint64_t transitions = 0;
  int64_t since_unix_ms = 0;
};

// The kernel's link masks by slot as verdicts ask for them: `judged` holds
// the slots with a verdict (the others keep what the host says).
struct LinkMasks {
  uint64_t up = 0, degraded = 0, judged = 0;
};
inline LinkMasks masks_of(const std::vector<LinkVerdict>& verdicts) {
  LinkMasks m;
  for (const auto& v : verdicts) {
    if (v.slot < 0 || v.slot >= 64) continue;
    const uint64_t bit = 1ull << v.slot;
    m.judged |= bit;
    if (v.state != LinkState::kDown) m.up |= bit;
    if (v.state == LinkState::kDegraded) m.degraded |= bit;
  }
  return m;
}

// A link's state changed: the one event type, whoever saw it. kConfig: not
// a link but the mapping (a followed config file applied or rejected, an
// auto-rollback): `what` says which, `reason` why; `link` and the states
// are unused. kSteering: the link's state is unchanged, what steering does
// with it changed: `what` is "over budget" / "within budget" (a metered
// link's budget crossed) or "flows leave" / "flows stay" (a policy's live
// flows start or stop leaving it), `reason` why; the states are unused.
struct LinkChange {
  enum class Source { kHealth, kHost, kConfig, kSteering };
  int64_t time_unix_ms = 0;
  int slot = 0;
  std::string link;
  LinkState from = LinkState::kDown, to = LinkState::kDown;
  std::string reason;
  Source source = Source::kHealth;
  std::optional<Quality> quality;  // the checker's measurements then (kHealth)
  std::string what;                // kConfig, kSteering: what happened ("applied", "over budget", ...)
};

// A metered link's budget as Links, events and metrics show it.
struct BudgetStatus {
  uint64_t limit_bytes = 0;
  uint64_t used_bytes = 0;    // in the current period, both directions
  int64_t resets_unix_s = 0;  // when the current period ends (00:00 UTC)
  bool over = false;
  std::string error;  // why the counters could not be read (empty: they were)
};

// An event of the mapping's (Source::kConfig).
inline LinkChange config_event(int64_t time_unix_ms, std::string what, std::string reason) {
  LinkChange c;
  c.time_unix_ms = time_unix_ms;
  c.source = LinkChange::Source::kConfig;
  c.what = std::move(what);
  c.reason = std::move(reason);
  return c;
}

// A link as Links and `clovisctl links` show it: the mapping's facts, the
// state the kernel uses and since when, and the checker's last verdict.
struct LinkView {
  int slot = 0;
  std::string name, interface;
  core::SteerMode mode = core::SteerMode::kRoute;
  std::vector<std::string> labels;
  LinkState state = LinkState::kDown;
  int64_t since_unix_ms = 0;
  std::string host_reason;  // why the host can't use it now (empty: it can)
  std::optional<LinkVerdict> verdict;
  std::optional<BudgetStatus> budget;  // a metered link
};

}  // namespace clovis::agent
