#include "link_events.hpp"

#include <linux/if.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace clovis::agent::health {

core::Result<LinkEvents> LinkEvents::open() {
  core::Fd fd(socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!fd) return core::fail(core::ErrorCode::kIo, std::strerror(errno), "netlink link events", errno);
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = RTMGRP_LINK;
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    int e = errno;
    return core::fail(core::ErrorCode::kIo, std::strerror(e), "subscribe to link events", e);
  }
  // A burst of changes must not be lost to a small buffer.
  int size = 1 << 20;
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  return LinkEvents(std::move(fd));
}

// The rtnetlink walking macros are C casts; they are the kernel's ABI helpers.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wcast-align"
void LinkEvents::drain(const std::function<void(const LinkEvent&)>& on_event) {
  alignas(nlmsghdr) char buf[32768];
  for (;;) {
    ssize_t n = recv(fd_.get(), buf, sizeof buf, 0);
    if (n <= 0) return;  // EAGAIN: drained (ENOBUFS: lost some; the poll fallback catches up)
    size_t len = static_cast<size_t>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type != RTM_NEWLINK && h->nlmsg_type != RTM_DELLINK) continue;
      const auto* ifi = static_cast<const ifinfomsg*>(NLMSG_DATA(h));
      LinkEvent ev;
      ev.ifindex = ifi->ifi_index;
      ev.up = ifi->ifi_flags & IFF_UP;
      ev.carrier = ifi->ifi_flags & IFF_LOWER_UP;
      ev.removed = h->nlmsg_type == RTM_DELLINK;
      int alen = static_cast<int>(IFLA_PAYLOAD(h));
      for (auto* a = IFLA_RTA(ifi); RTA_OK(a, alen); a = RTA_NEXT(a, alen))
        if (a->rta_type == IFLA_IFNAME) ev.name = static_cast<const char*>(RTA_DATA(a));
      on_event(ev);
    }
  }
}

#pragma GCC diagnostic pop

}  // namespace clovis::agent::health
