// Per-link rates from successive samples of the kernel's cumulative counters:
// packets and bytes per second each way, over the interval between the last
// two samples. A counter that went backwards (maps recreated) rates 0.
#pragma once

#include <array>
#include <chrono>
#include <optional>

#include "ports/dataplane.hpp"

namespace clovis::agent {

struct LinkRates {
  double tx_pps = 0, tx_bps = 0;  // bytes per second
  double rx_pps = 0, rx_bps = 0;
};

class LinkSampler {
 public:
  using Clock = std::chrono::steady_clock;

  void add(const LinkCounters& c, Clock::time_point t);
  // Zero rates until there are two samples.
  std::array<LinkRates, CLV_MAX_LINKS> rates() const;
  // When the last sample was taken; nullopt before the first.
  std::optional<Clock::time_point> last_time() const;
  const LinkCounters* last() const { return last_ ? &last_->counters : nullptr; }

 private:
  struct Sample {
    LinkCounters counters;
    Clock::time_point t;
  };
  std::optional<Sample> prev_, last_;
};

}  // namespace clovis::agent
