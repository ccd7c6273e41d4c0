// Following the config file (clovisd --follow-config): its directory is
// watched with inotify, so that every way of replacing the file is seen: an
// editor's write-and-rename, a plain write, and Kubernetes' ConfigMap
// volume, whose files are symlinks into a `..data` symlink that the kubelet
// swaps with a rename (the file itself never changes). A burst of events is
// one change (Debounce), and the content decides (its hash): a touch, or a
// swap to the same content, applies nothing. The daemon applies what
// take() returns through the agent, as `clovisctl apply` would, and records
// the outcome here for Status (FollowStatus).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "core/fd.hpp"
#include "core/result.hpp"

namespace clovis::agent {

// FNV-1a, 64 bits, as 16 hex digits: tells one content from another, not a
// signature (the file is the operator's own).
std::string content_hash(std::string_view text);

// Events that come in a burst (a ConfigMap swap is 4-6 of them, an editor's
// save 2-3) make one change: due once `quiet` passed without an event, or
// `most` after the first, however busy the directory stays.
class Debounce {
 public:
  using Clock = std::chrono::steady_clock;
  Debounce(std::chrono::milliseconds quiet, std::chrono::milliseconds most) : quiet_(quiet), most_(most) {}
  void note(Clock::time_point now);
  bool due(Clock::time_point now) const;
  // Until due (0: now), -1 when nothing is pending: a poll(2) timeout.
  int timeout_ms(Clock::time_point now) const;
  void clear() { first_.reset(); }
  bool pending() const { return first_.has_value(); }

 private:
  std::chrono::milliseconds quiet_, most_;
  std::optional<Clock::time_point> first_, last_;
};

// What Status shows of the followed file.
struct FileState {
  std::string path;
  std::string hash;          // of the content last read; empty: not read yet
  std::string result;        // applied, rejected, failed (the host refused), unreadable
  std::string error;         // rejected: "path:line:col: message"; else the reason
  uint32_t generation = 0;   // the generation the file's content last ran as (0: never)
  int64_t time_unix_ms = 0;  // of that outcome
};

// FileState shared between the resident loop (writes) and the API (reads).
class FollowStatus {
 public:
  void set(FileState s) {
    std::lock_guard lock(mu_);
    state_ = std::move(s);
  }
  FileState get() const {
    std::lock_guard lock(mu_);
    return state_;
  }

 private:
  mutable std::mutex mu_;
  FileState state_;
};

class ConfigFollower {
 public:
  using Clock = Debounce::Clock;
  // Watches the directory of `path` (and, when that directory is reached
  // through a symlink, the directory holding the symlink, so a swap of it is
  // seen too). An error when the directory cannot be watched.
  static core::Result<std::unique_ptr<ConfigFollower>> open(
      std::string path, std::chrono::milliseconds quiet = std::chrono::milliseconds(300),
      std::chrono::milliseconds most = std::chrono::seconds(3));

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }
  // Reads the pending inotify events (call when fd() is readable); any of
  // them may be the file's change.
  void drain(Clock::time_point now);
  int timeout_ms(Clock::time_point now) const { return debounce_.timeout_ms(now); }

  struct Change {
    std::string text, hash;
  };
  // When a change is due: the file's content if it differs from the last
  // content returned, or the last read failed (or `force`: SIGHUP, which
  // applies it anyway). An unreadable file: an error (the caller reports it,
  // the mapping stays).
  core::Result<std::optional<Change>> take(Clock::time_point now, bool force = false);
  // The hash of what was read at start-up, so that take() returns only a change.
  void seen(std::string hash) { hash_ = std::move(hash); }

 private:
  ConfigFollower(std::string path, core::Fd fd, std::chrono::milliseconds quiet, std::chrono::milliseconds most)
      : path_(std::move(path)), fd_(std::move(fd)), debounce_(quiet, most) {}
  core::Status watch();

  std::string path_;
  core::Fd fd_;
  Debounce debounce_;
  int dir_wd_ = -1, parent_wd_ = -1;
  std::string hash_;
  bool unreadable_ = false;  // the last read failed
};

}  // namespace clovis::agent
