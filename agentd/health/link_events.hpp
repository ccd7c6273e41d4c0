// Carrier changes as they happen: an rtnetlink socket subscribed to link
// notifications (RTMGRP_LINK). No polling: a pulled cable is seen at once.
#pragma once

#include <functional>
#include <string>

#include <utility>

#include "fd.hpp"
#include "result.hpp"

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
  int fd() const { return fd_.get(); }
  // Reads every pending notification (non-blocking).
  void drain(const std::function<void(const LinkEvent&)>& on_event);

 private:
  explicit LinkEvents(core::Fd fd) : fd_(std::move(fd)) {}
  core::Fd fd_;
};

}  // namespace clovis::agent::health
