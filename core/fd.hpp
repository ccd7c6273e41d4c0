// Fd: owns one file descriptor and closes it exactly once. Every fd the
// agent opens lives in one of these, so no error path can leak it and no
// move can close it twice.
#pragma once

#include <unistd.h>

#include <utility>

namespace clovis::core {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }
  // Hands the fd to a new owner (libbpf, gRPC...), which will close it.
  [[nodiscard]] int release() { return std::exchange(fd_, -1); }
  // Closes the fd held, if any, and takes `fd`.
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace clovis::core
