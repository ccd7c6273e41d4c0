// Where the watch streams' work runs: a few threads of the hub's own, each
// taking the next watch whose interval is up, so that the number of watches
// open costs memory, not threads (see watch_stream.hpp). Also counts the
// streams open against the most clovisd serves (--max-watchers).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <set>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

namespace clovis::agent::service {

// The default of --max-watchers: WatchFlows and WatchEvents streams at once.
// Issue #13's bar is 500 with the unary calls still answered promptly; each
// flow watch holds its own copy of the (filtered) flow table.
inline constexpr size_t kDefaultMaxWatchers = 1024;

class WatchTask {
 public:
  using Clock = std::chrono::steady_clock;
  virtual ~WatchTask() = default;
  // One round of the watch's work; when the next is due, or nullopt once
  // the watch has ended.
  virtual std::optional<Clock::time_point> run() = 0;
  // Ends the watch's stream with `st` (clovisd is stopping); may run while
  // run() does, on another thread.
  virtual void end(const grpc::Status& st) = 0;
};

class WatchHub {
 public:
  WatchHub(size_t max_watchers, unsigned threads);
  ~WatchHub();
  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;

  // A slot for one more stream; false when max_watchers are open.
  bool take_slot();
  void give_slot();
  size_t max_watchers() const { return max_; }
  // The status a stream past the limit gets.
  grpc::Status refusal() const;

  // Runs `t` at once, then whenever it asks; false when stopping.
  bool schedule(std::shared_ptr<WatchTask> t);
  // Ends every watch (UNAVAILABLE: clovisd is stopping) and joins the
  // threads. Idempotent.
  void stop();
  bool stopping() const;

 private:
  struct Due {
    WatchTask::Clock::time_point at;
    uint64_t order;  // first come, first served among equals
    std::shared_ptr<WatchTask> task;
    bool operator>(const Due& o) const { return at != o.at ? at > o.at : order > o.order; }
  };
  void work();

  const size_t max_;
  std::atomic<size_t> open_{0};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::priority_queue<Due, std::vector<Due>, std::greater<>> due_;
  std::set<std::shared_ptr<WatchTask>> tasks_;  // scheduled or running
  uint64_t order_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace clovis::agent::service
