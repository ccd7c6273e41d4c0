#include "telemetry/telemetry.hpp"

#include <time.h>

namespace clovis::agent {

namespace {

// Rates come from the resident loop's samples; when those are older than
// this (no loop, as in tests), a request samples itself.
constexpr auto kSampleStale = std::chrono::seconds(3);

}  // namespace

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

core::Result<PinnedFlows> Telemetry::pinned_flows() {
  PinnedFlows pinned{};
  FlowBuffer buf;
  auto st = dp_.scan_flows(
      [&pinned](const FlowBatch& b) {
        for (const auto& f : b.flows) count_pinned(f, &pinned);
        return true;
      },
      buf);
  if (!st) return core::error_of(st);
  return pinned;
}

void Telemetry::sample_links() {
  auto lc = dp_.link_counters();
  if (!lc) return;
  std::lock_guard lock(sample_mu_);
  sampler_.add(*lc, LinkSampler::Clock::now());
}

std::array<LinkRates, CLV_MAX_LINKS> Telemetry::rates(const LinkCounters& now) {
  std::lock_guard lock(sample_mu_);
  auto last = sampler_.last_time();
  const auto t = LinkSampler::Clock::now();
  if (!last || t - *last > kSampleStale) sampler_.add(now, t);
  return sampler_.rates();
}

bool Telemetry::trim_due() {
  constexpr uint64_t kQuiet = 1'000'000'000;
  uint64_t t = parsed_at_ns_.load();
  return t && monotonic_ns() - t >= kQuiet && parsed_at_ns_.compare_exchange_strong(t, 0);
}

}  // namespace clovis::agent
