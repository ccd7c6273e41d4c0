// The judgement behind a mapping's auto-rollback (clovis-wan.yaml(5)): after
// an apply, the host's links are looked at every second or so; a state
// (some link usable / none) that lasts `after_ms` decides. None usable that
// long: roll back. Some usable that long: the mapping is kept and the guard
// ends, so that a later outage of every WAN (the ISP's, not the mapping's
// fault) never swaps mappings. A flapping host keeps the guard waiting.
#pragma once

#include <cstdint>
#include <optional>

namespace clovis::core {

class AutoRollbackGuard {
 public:
  enum class Verdict { kWait, kKeep, kRollBack };

  explicit AutoRollbackGuard(uint32_t after_ms) : after_ms_(after_ms) {}

  // One look at `now_ms` (any monotonic or wall clock, the same each call).
  Verdict step(int64_t now_ms, bool usable) {
    if (!since_ms_ || usable != usable_) {
      since_ms_ = now_ms;
      usable_ = usable;
    }
    if (now_ms - *since_ms_ < int64_t{after_ms_}) return Verdict::kWait;
    return usable_ ? Verdict::kKeep : Verdict::kRollBack;
  }
  uint32_t after_ms() const { return after_ms_; }

 private:
  uint32_t after_ms_;
  std::optional<int64_t> since_ms_;
  bool usable_ = false;
};

}  // namespace clovis::core
