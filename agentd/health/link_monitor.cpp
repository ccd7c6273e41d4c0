#include "link_monitor.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace clovis::agent::health {

namespace {

// Smoothing weight of a new sample: ~5 rounds of memory, enough to ride out
// one lost probe without hiding a sustained change.
constexpr double kAlpha = 0.2;

double ewma(double avg, double sample, bool first) {
  return first ? sample : avg + kAlpha * (sample - avg);
}

}  // namespace

LinkMonitor::LinkMonitor(std::optional<core::Health> cfg, bool carrier, Clock::time_point now)
    : cfg_(std::move(cfg)),
      carrier_(carrier),
      state_(carrier ? LinkState::kUp : LinkState::kDown),
      since_(now),
      reason_(carrier ? "carrier up" : "no carrier") {}

std::optional<Transition> LinkMonitor::move(LinkState to, Clock::time_point now, std::string reason) {
  reason_ = reason;
  if (to == state_) return std::nullopt;
  Transition t{state_, to, now, std::move(reason)};
  state_ = to;
  since_ = now;
  ++transitions_;
  return t;
}

std::optional<Transition> LinkMonitor::carrier(bool up, Clock::time_point now) {
  if (up == carrier_) return std::nullopt;
  carrier_ = up;
  bad_rounds_ = good_rounds_ = 0;
  if (!up) return move(LinkState::kDown, now, "carrier lost");
  // With probes, the link must prove itself (up threshold) before it carries
  // traffic again: a flapping cable must not pull flows back and forth.
  if (has_probes()) return std::nullopt;
  return move(LinkState::kUp, now, "carrier up");
}

void LinkMonitor::smooth(const std::vector<ProbeResult>& results) {
  size_t lost = 0;
  for (const auto& r : results) {
    if (!r.ok) {
      ++lost;
      continue;
    }
    const bool first = !quality_.measured;
    quality_.latency_ms = ewma(quality_.latency_ms, r.rtt_ms, first);
    if (last_rtt_ >= 0) quality_.jitter_ms = ewma(quality_.jitter_ms, std::fabs(r.rtt_ms - last_rtt_), false);
    last_rtt_ = r.rtt_ms;
    quality_.measured = true;
  }
  const double loss = results.empty() ? 0 : 100.0 * static_cast<double>(lost) / static_cast<double>(results.size());
  quality_.loss_pct = ewma(quality_.loss_pct, loss, false);
}

std::string LinkMonitor::quality_problem() const {
  const core::Health& h = *cfg_;
  if (h.max_loss_pct && quality_.loss_pct > *h.max_loss_pct)
    return fmt::format("loss {:.1f}% over {:.1f}%", quality_.loss_pct, *h.max_loss_pct);
  if (!quality_.measured) return {};
  if (h.max_latency_ms && quality_.latency_ms > *h.max_latency_ms)
    return fmt::format("latency {:.1f} ms over {} ms", quality_.latency_ms, *h.max_latency_ms);
  if (h.max_jitter_ms && quality_.jitter_ms > *h.max_jitter_ms)
    return fmt::format("jitter {:.1f} ms over {} ms", quality_.jitter_ms, *h.max_jitter_ms);
  return {};
}

std::optional<Transition> LinkMonitor::round(const std::vector<ProbeResult>& all, Clock::time_point now) {
  if (!has_probes() || !carrier_) return std::nullopt;
  // A probe this host could not send (no socket) tells nothing about the
  // link: leave it out rather than count it lost, which would take a working
  // link down for a missing capability.
  std::vector<ProbeResult> results;
  std::string unprobed;
  for (const auto& r : all) {
    if (r.cannot_probe.empty()) results.push_back(r);
    else unprobed += fmt::format("{}{}: {}", unprobed.empty() ? "" : "; ", r.target, r.cannot_probe);
  }
  if (results.empty()) {
    // Nothing measured: the carrier (up, or we would have returned) alone
    // decides, and the reason says so until probing works.
    bad_rounds_ = good_rounds_ = 0;
    return move(LinkState::kUp, now, "cannot probe (" + unprobed + "); judged by carrier only");
  }
  smooth(results);
  size_t answered = 0;
  std::string unanswered, failed;  // failed: the probes that said why
  for (const auto& r : results) {
    if (r.ok) ++answered;
    else if (r.why.empty()) unanswered += (unanswered.empty() ? "" : ", ") + r.target;
    else failed += fmt::format("{}{}: {}", failed.empty() ? "" : "; ", r.target, r.why);
  }
  if (!unanswered.empty()) failed = unanswered + " unanswered" + (failed.empty() ? "" : "; " + failed);
  const bool good = answered >= std::min<size_t>(cfg_->reliability, results.size());
  if (good) ++good_rounds_, bad_rounds_ = 0;
  else ++bad_rounds_, good_rounds_ = 0;
  if (state_ == LinkState::kDown) {
    if (good_rounds_ >= cfg_->up_after)
      return move(LinkState::kUp, now, fmt::format("{} good probe rounds", good_rounds_));
    return std::nullopt;
  }
  if (bad_rounds_ >= cfg_->down_after)
    return move(LinkState::kDown, now, fmt::format("{} probe rounds failed ({})", bad_rounds_, failed));
  const std::string problem = quality_problem();
  if (!problem.empty()) return move(LinkState::kDegraded, now, problem);
  if (state_ == LinkState::kDegraded) return move(LinkState::kUp, now, "quality within thresholds");
  return std::nullopt;
}

}  // namespace clovis::agent::health
