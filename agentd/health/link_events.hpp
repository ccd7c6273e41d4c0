// Carrier changes as they happen: an rtnetlink socket subscribed to link
// notifications (RTMGRP_LINK). No polling: a pulled cable is seen at once.
#pragma once

#include <functional>
#include <string>

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
  LinkEvents(LinkEvents&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  LinkEvents& operator=(LinkEvents&&) = delete;
  LinkEvents(const LinkEvents&) = delete;
  ~LinkEvents();

  int fd() const { return fd_; }
  // Reads every pending notification (non-blocking).
  void drain(const std::function<void(const LinkEvent&)>& on_event);

 private:
  explicit LinkEvents(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace clovis::agent::health
