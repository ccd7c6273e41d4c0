// A throw-away network namespace for the calling thread, and the privilege
// checks of privileged tests and benchmarks. No test framework here.
#pragma once

#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

namespace clovis::test {

// True when the process may create namespaces and configure networking:
// effective CAP_SYS_ADMIN (unshare/setns; it also allows bpf() on every
// kernel) and CAP_NET_ADMIN. euid 0 alone is not enough: a container's root
// may lack both.
inline bool have_privileges() {
  __user_cap_header_struct header{};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capget, &header, data) != 0) return ::geteuid() == 0;
  auto has = [&](int cap) { return (data[cap / 32].effective & (1u << (cap % 32))) != 0; };
  return has(CAP_SYS_ADMIN) && has(CAP_NET_ADMIN);
}

inline bool privileged_required() {
  const char* v = std::getenv("CLOVIS_REQUIRE_PRIVILEGED");
  return v != nullptr && std::string(v) == "1";
}

// Puts the calling thread in a fresh, empty network namespace and returns it
// to the original one on destruction; whatever the test created inside
// (links, routes, rules) disappears with the namespace once nothing else
// holds it, so declare it before any socket opened inside.
class NetnsGuard {
 public:
  NetnsGuard() {
    original_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (original_ < 0) {
      error_ = std::string("open /proc/thread-self/ns/net: ") + std::strerror(errno);
      return;
    }
    if (::unshare(CLONE_NEWNET) != 0) {
      error_ = std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno);
      ::close(original_);
      original_ = -1;
    }
  }
  NetnsGuard(const NetnsGuard&) = delete;
  NetnsGuard& operator=(const NetnsGuard&) = delete;
  ~NetnsGuard() {
    if (original_ < 0) return;
    // Failing to get back would run every later test in this namespace.
    if (::setns(original_, CLONE_NEWNET) != 0) std::abort();
    ::close(original_);
  }

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

 private:
  int original_ = -1;
  std::string error_;
};

}  // namespace clovis::test
