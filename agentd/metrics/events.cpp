#include "metrics/events.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace clovis::agent::metrics {

AtomicHistogram::AtomicHistogram(std::span<const double> bounds) : bounds_(bounds.begin(), bounds.end()) {
  if (bounds_.size() > kMaxBuckets) bounds_.resize(kMaxBuckets);
}

void AtomicHistogram::observe(double seconds) {
  if (!(seconds >= 0)) seconds = 0;  // NaN or a clock step back
  const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), seconds);
  counts_[static_cast<size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<uint64_t>(std::llround(seconds * 1e9)), std::memory_order_relaxed);
}

AtomicHistogram::Snapshot AtomicHistogram::snapshot() const {
  Snapshot s;
  uint64_t cum = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cum += counts_[i].load(std::memory_order_relaxed);
    s.buckets.emplace_back(i < bounds_.size() ? bounds_[i] : std::numeric_limits<double>::infinity(), cum);
  }
  s.count = cum;
  s.sum = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
  return s;
}

Events::Events() : check_latency_(kCheckBuckets) {}

void Events::note_check(CheckResult r, double seconds) {
  checks_[static_cast<size_t>(r)].fetch_add(1, std::memory_order_relaxed);
  check_latency_.observe(seconds);
}

void Events::note_probe_round(const std::string& link, std::span<const ProbeOutcome> round) {
  std::lock_guard lock(probe_mu_);
  auto& st = probes_[link];
  if (!st.rtt) st.rtt = std::make_unique<AtomicHistogram>(kProbeBuckets);
  for (const auto& p : round) {
    if (!p.sent) continue;  // says nothing about the link (ProbeResult::cannot_probe)
    auto& t = st.targets[p.target];
    ++t.sent;
    if (!p.answered) ++t.lost;
    else st.rtt->observe(p.rtt_s);
  }
}

std::map<std::string, Events::LinkProbes> Events::probes() const {
  std::lock_guard lock(probe_mu_);
  std::map<std::string, LinkProbes> out;
  for (const auto& [link, st] : probes_) out[link] = {st.targets, st.rtt->snapshot()};
  return out;
}

}  // namespace clovis::agent::metrics
