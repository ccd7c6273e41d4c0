// Changes of the host's interfaces and addresses as they happen: link and
// address notifications of rtnetlink (netlink_events.hpp). The agent
// re-reads what it needs when one arrives (a WAN that gets its DHCP lease,
// an LTE modem's interface that appears), so a link is usable within a
// netlink round trip instead of a polling period.
#pragma once

#include <utility>

#include "core/result.hpp"
#include "netlink/netlink_events.hpp"

namespace clovis::agent::kernel {

class HostWatch {
 public:
  static core::Result<HostWatch> open();

  int fd() const { return events_.fd(); }
  // Reads every pending notification (non-blocking); true when one was
  // about a link or an address, or when some were lost (a full buffer).
  bool drain();

 private:
  explicit HostWatch(NetlinkEvents events) : events_(std::move(events)) {}
  NetlinkEvents events_;
};

}  // namespace clovis::agent::kernel
