#include "netlink_events.hpp"

#include <linux/if.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "netlink_codec.hpp"

namespace clovis::agent::kernel {

using core::ErrorCode;
using nlcodec::kHdrLen;
using nlcodec::kRxBufferSize;
using nlcodec::parse_link;
using nlcodec::take_message;

namespace nlcodec {

IfInfo parse_link(const NlMessage& m) {
  IfInfo info;
  const auto ifi = m.fixed<ifinfomsg>();
  if (!ifi) return info;
  info.ifindex = ifi->ifi_index;
  info.up = (ifi->ifi_flags & IFF_UP) != 0;
  info.carrier = (ifi->ifi_flags & IFF_LOWER_UP) != 0;
  for_each_attr(m.attrs<ifinfomsg>(), [&](uint16_t type, std::span<const std::byte> v) {
    if (type == IFLA_IFNAME) info.name = read_string(v);
    else if (type == IFLA_MTU && v.size() >= sizeof(uint32_t)) info.mtu = read_as<uint32_t>(v);
    else if (type == IFLA_OPERSTATE && !v.empty()) info.operstate = read_as<uint8_t>(v);
    else if (type == IFLA_ADDRESS && v.size() == info.mac.size())
      std::memcpy(info.mac.data(), v.data(), info.mac.size());
  });
  return info;
}

}  // namespace nlcodec

core::Result<NetlinkEvents> NetlinkEvents::open(uint32_t groups, const std::string& what) {
  core::Fd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!fd) return core::fail(ErrorCode::kIo, std::strerror(errno), "netlink " + what, errno);
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  if (groups & kLinks) sa.nl_groups |= RTMGRP_LINK;
  if (groups & kAddresses) sa.nl_groups |= RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0)
    return core::fail(ErrorCode::kIo, std::strerror(errno), "subscribe to " + what, errno);
  // A burst of changes must not be lost to a small buffer.
  const int size = 1 << 20;
  (void)::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  NetlinkEvents events(std::move(fd));
  events.rx_.resize(kRxBufferSize);
  return events;
}

bool NetlinkEvents::drain(const std::function<void(const HostEvent&)>& on_event) {
  bool lost = false;
  for (;;) {
    const ssize_t n = ::recv(fd_.get(), rx_.data(), rx_.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == ENOBUFS) {
      lost = true;
      continue;
    }
    if (n <= 0) return lost;  // EAGAIN: drained
    std::span<const std::byte> rest(rx_.data(), static_cast<size_t>(n));
    NlMessage m;
    while (rest.size() >= kHdrLen && take_message(&rest, &m)) {
      switch (m.hdr.nlmsg_type) {
        case RTM_NEWLINK:
        case RTM_DELLINK:
          on_event({m.hdr.nlmsg_type == RTM_DELLINK ? HostEvent::Kind::kLinkRemoved : HostEvent::Kind::kLink,
                    parse_link(m)});
          break;
        case RTM_NEWADDR:
        case RTM_DELADDR: on_event({HostEvent::Kind::kAddress, {}}); break;
        default: break;
      }
    }
  }
}

}  // namespace clovis::agent::kernel
