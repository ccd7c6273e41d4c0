#include "telemetry/link_sampler.hpp"

namespace clovis::agent {

namespace {

double per_second(uint64_t now, uint64_t before, double seconds) {
  return now >= before ? static_cast<double>(now - before) / seconds : 0.0;
}

}  // namespace

void LinkSampler::add(const LinkCounters& c, Clock::time_point t) {
  prev_ = std::move(last_);
  last_ = Sample{c, t};
}

std::array<LinkRates, CLV_MAX_LINKS> LinkSampler::rates() const {
  std::array<LinkRates, CLV_MAX_LINKS> out{};
  if (!prev_ || !last_) return out;
  const double dt = std::chrono::duration<double>(last_->t - prev_->t).count();
  if (dt <= 0) return out;
  for (size_t s = 0; s < CLV_MAX_LINKS; ++s) {
    const clv_link_stats &a = prev_->counters[s], &b = last_->counters[s];
    out[s] = {per_second(b.tx_packets, a.tx_packets, dt), per_second(b.tx_bytes, a.tx_bytes, dt),
              per_second(b.rx_packets, a.rx_packets, dt), per_second(b.rx_bytes, a.rx_bytes, dt)};
  }
  return out;
}

std::optional<LinkSampler::Clock::time_point> LinkSampler::last_time() const {
  if (!last_) return std::nullopt;
  return last_->t;
}

}  // namespace clovis::agent
