// The agent's recent link changes, the health checker's and the host's,
// numbered for ListEvents and WatchEvents: a bounded queue that readers
// can wait on. Its own lock: a reader never waits for an apply.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

#include "link/link_state.hpp"

namespace clovis::agent {

class LinkChanges {
 public:
  static constexpr size_t kMax = 256;  // the oldest go beyond this

  void push(const LinkChange& c) {
    {
      std::lock_guard lock(mu_);
      changes_.push_back(c);
      if (changes_.size() > kMax) changes_.pop_front();
      ++seq_;
    }
    cv_.notify_all();
  }
  // Oldest first, and the number of the newest (`seq`, when given).
  std::vector<LinkChange> list(uint64_t* seq = nullptr) const {
    std::lock_guard lock(mu_);
    if (seq) *seq = seq_;
    return {changes_.begin(), changes_.end()};
  }
  // Waits until a change newer than `seq` arrives (or the timeout).
  bool wait(uint64_t seq, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return seq_ != seq; });
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::deque<LinkChange> changes_;
  uint64_t seq_ = 0;
};

}  // namespace clovis::agent
