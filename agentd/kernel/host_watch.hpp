// Changes of the host's interfaces and addresses as they happen: an
// rtnetlink socket subscribed to link and address notifications. The agent
// re-reads what it needs when one arrives (a WAN that gets its DHCP lease,
// an LTE modem's interface that appears), so a link is usable within a
// netlink round trip instead of a polling period.
#pragma once

#include "result.hpp"

namespace clovis::agent::kernel {

class HostWatch {
 public:
  static core::Result<HostWatch> open();
  HostWatch(HostWatch&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  HostWatch& operator=(HostWatch&&) = delete;
  HostWatch(const HostWatch&) = delete;
  ~HostWatch();

  int fd() const { return fd_; }
  // Reads every pending notification (non-blocking); true when one was
  // about a link or an address, or when some were lost (a full buffer).
  bool drain();

 private:
  explicit HostWatch(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace clovis::agent::kernel
