// Changes of the host's interfaces and addresses as they happen: an
// rtnetlink socket subscribed to link and address notifications. The agent
// re-reads what it needs when one arrives (a WAN that gets its DHCP lease,
// an LTE modem's interface that appears), so a link is usable within a
// netlink round trip instead of a polling period.
#pragma once

#include <utility>

#include "fd.hpp"
#include "result.hpp"

namespace clovis::agent::kernel {

class HostWatch {
 public:
  static core::Result<HostWatch> open();
  int fd() const { return fd_.get(); }
  // Reads every pending notification (non-blocking); true when one was
  // about a link or an address, or when some were lost (a full buffer).
  bool drain();

 private:
  explicit HostWatch(core::Fd fd) : fd_(std::move(fd)) {}
  core::Fd fd_;
};

}  // namespace clovis::agent::kernel
