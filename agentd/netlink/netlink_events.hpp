// The host's interface and address changes as they happen: a NETLINK_ROUTE
// socket subscribed to rtnetlink multicast groups, its notifications decoded
// by the same codec as netlink.hpp's requests. What health/ and the agent's
// host watch need of netlink, and nothing more.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/fd.hpp"
#include "core/result.hpp"

namespace clovis::agent::kernel {

struct IfInfo {
  int ifindex = 0;
  std::string name;
  bool up = false;               // IFF_UP: administratively up
  bool carrier = false;          // IFF_LOWER_UP
  uint8_t operstate = 0;         // IF_OPER_* (RFC 2863)
  std::array<uint8_t, 6> mac{};  // zero when the link has no 6-byte address
  uint32_t mtu = 0;
};

struct HostEvent {
  enum class Kind { kLink, kLinkRemoved, kAddress };
  Kind kind = Kind::kLink;
  IfInfo link;  // kLink, kLinkRemoved: the link as the notification described it
};

class NetlinkEvents {
 public:
  // Which notifications to subscribe to.
  enum Groups : uint32_t { kLinks = 1, kAddresses = 2 };

  // `what` names the subscription in error messages ("link events").
  static core::Result<NetlinkEvents> open(uint32_t groups, const std::string& what);

  int fd() const { return fd_.get(); }
  // Reads every pending notification (non-blocking) and calls on_event for
  // each link or address change. True when some were lost to a full receive
  // buffer (ENOBUFS): whatever they said, the caller should look again.
  bool drain(const std::function<void(const HostEvent&)>& on_event);

 private:
  explicit NetlinkEvents(core::Fd fd) : fd_(std::move(fd)) {}
  core::Fd fd_;
  std::vector<std::byte> rx_;
};

}  // namespace clovis::agent::kernel
