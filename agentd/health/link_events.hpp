// Carrier changes as they happen: link notifications of rtnetlink
// (kernel/netlink_events.hpp). No polling: a pulled cable is seen at once.
#pragma once

#include <functional>
#include <string>
#include <utility>

#include "core/result.hpp"
#include "netlink/netlink_events.hpp"

namespace clovis::agent::health {

struct LinkEvent {
  int ifindex = 0;
  std::string name;
  bool up = false;       // IFF_UP
  bool carrier = false;  // IFF_LOWER_UP
  bool removed = false;  // RTM_DELLINK
};

class LinkEvents {
 public:
  static core::Result<LinkEvents> open();

  int fd() const { return events_.fd(); }
  // Reads every pending notification (non-blocking).
  void drain(const std::function<void(const LinkEvent&)>& on_event);

 private:
  explicit LinkEvents(kernel::NetlinkEvents events) : events_(std::move(events)) {}
  kernel::NetlinkEvents events_;
};

}  // namespace clovis::agent::health
