#include "host_watch.hpp"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace clovis::agent::kernel {

core::Result<HostWatch> HostWatch::open() {
  core::Fd fd(socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!fd) return core::fail(core::ErrorCode::kIo, std::strerror(errno), "netlink host events", errno);
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    int e = errno;
    return core::fail(core::ErrorCode::kIo, std::strerror(e), "subscribe to link and address events", e);
  }
  int size = 1 << 20;
  (void)setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  return HostWatch(std::move(fd));
}

// The rtnetlink walking macros are C casts; they are the kernel's ABI helpers.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wcast-align"
bool HostWatch::drain() {
  alignas(nlmsghdr) char buf[16384];
  bool changed = false;
  for (;;) {
    ssize_t n = recv(fd_.get(), buf, sizeof buf, 0);
    if (n < 0 && errno == ENOBUFS) {  // lost some: whatever they said, look again
      changed = true;
      continue;
    }
    if (n <= 0) return changed;
    size_t len = static_cast<size_t>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      switch (h->nlmsg_type) {
        case RTM_NEWLINK:
        case RTM_DELLINK:
        case RTM_NEWADDR:
        case RTM_DELADDR:
          changed = true;
          break;
        default:
          break;
      }
    }
  }
}
#pragma GCC diagnostic pop

}  // namespace clovis::agent::kernel
