#include "agent/config_follow.hpp"

#include <sys/inotify.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "core/pipeline.hpp"

namespace clovis::agent {

namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

// The directory's entries coming and going, and the file written in place.
// IN_MOVED_FROM and IN_DELETE too: the kubelet's last step removes the old
// timestamped directory, and a removed file is reported as unreadable.
constexpr uint32_t kDirMask =
    IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ATTRIB;
constexpr uint32_t kParentMask = IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_ONLYDIR;

std::string dir_of(const std::string& path) {
  auto d = std::filesystem::path(path).parent_path().string();
  return d.empty() ? "." : d;
}

}  // namespace

std::string content_hash(std::string_view text) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return fmt::format("{:016x}", h);
}

void Debounce::note(Clock::time_point now) {
  if (!first_) first_ = now;
  last_ = now;
}

bool Debounce::due(Clock::time_point now) const {
  return first_ && (now - *last_ >= quiet_ || now - *first_ >= most_);
}

int Debounce::timeout_ms(Clock::time_point now) const {
  if (!first_) return -1;
  const auto at = std::min(*last_ + quiet_, *first_ + most_);
  if (at <= now) return 0;
  return static_cast<int>(duration_cast<milliseconds>(at - now).count()) + 1;
}

core::Result<std::unique_ptr<ConfigFollower>> ConfigFollower::open(std::string path, milliseconds quiet,
                                                                   milliseconds most) {
  core::Fd fd(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!fd)
    return core::fail(core::ErrorCode::kIo, std::string("inotify: ") + std::strerror(errno), "following " + path,
                      errno);
  std::unique_ptr<ConfigFollower> f(new ConfigFollower(std::move(path), std::move(fd), quiet, most));
  if (auto st = f->watch(); !st) return core::error_of(st);
  return f;
}

// (Re)places the watches: inotify watches an inode, so a directory reached
// through a symlink that is swapped must be watched again at its new target
// (the parent's watch says when). Adding a watch on an inode already
// watched returns its number again.
core::Status ConfigFollower::watch() {
  const std::string dir = dir_of(path_);
  const int wd = inotify_add_watch(fd_.get(), dir.c_str(), kDirMask);
  if (wd < 0)
    return core::fail(core::ErrorCode::kIo, fmt::format("cannot watch directory {}: {}", dir, std::strerror(errno)),
                      "--follow-config needs the config file's directory to exist", errno);
  if (dir_wd_ >= 0 && dir_wd_ != wd) (void)inotify_rm_watch(fd_.get(), dir_wd_);
  dir_wd_ = wd;
  struct stat st {};
  if (parent_wd_ < 0 && lstat(dir.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    const std::string parent = dir_of(dir);
    parent_wd_ = inotify_add_watch(fd_.get(), parent.c_str(), kParentMask);
  }
  return core::Ok{};
}

void ConfigFollower::drain(Clock::time_point now) {
  alignas(inotify_event) char buf[4096];
  bool any = false;
  for (;;) {
    const ssize_t n = read(fd_.get(), buf, sizeof buf);
    if (n <= 0) break;
    any = true;
  }
  if (!any) return;
  debounce_.note(now);
}

core::Result<std::optional<ConfigFollower::Change>> ConfigFollower::take(Clock::time_point now, bool force) {
  if (!force && !debounce_.due(now)) return std::optional<Change>{};
  debounce_.clear();
  // The directory (or the symlink to it) may have been replaced: watch
  // whatever it is now. Failing that, the next look tries again.
  if (auto st = watch(); !st) {
    dir_wd_ = -1;
    debounce_.note(now);
    return core::error_of(st);
  }
  auto text = core::read_file(path_);
  if (!text) {
    unreadable_ = true;
    return core::error_of(text);
  }
  std::string hash = content_hash(*text);
  // A file back after it could not be read is applied even when unchanged:
  // its last outcome was "unreadable", and that is what Status shows.
  if (!force && !unreadable_ && hash == hash_) return std::optional<Change>{};
  unreadable_ = false;
  hash_ = hash;
  return std::optional<Change>{Change{std::move(*text), std::move(hash)}};
}

}  // namespace clovis::agent
