// A small rtnetlink client over a raw NETLINK_ROUTE socket: the policy
// routing (fwmark rules, per-link tables), neighbour and link queries that
// route-mode links need. No libnl and no `ip`: the agent must not depend on
// a userspace tool's output format or on a library the build does not ship.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "core/fd.hpp"
#include "core/result.hpp"
#include "netlink_events.hpp"

namespace clovis::agent::kernel {

// rtm_protocol of every route clovis installs (and FRA_PROTOCOL of its
// rules), so `ip route show proto 0xc1` finds ours and leftovers of a
// crashed agent can be told apart from the administrator's routes.
inline constexpr uint8_t kRtProtClovis = 0xc1;

struct IfAddr {
  int family = 0;
  std::array<uint8_t, 16> addr{};  // network order; IPv4 uses addr[0..3]
  uint8_t prefixlen = 0;
};

// One entry of a dump, as the kernel listed it. `raw` is the kernel's own
// message (family header and attributes): sent back as a delete, it names
// exactly that object, as `ip rule flush` and `ip neigh flush` do.
struct RuleEntry {
  int family = 0;
  uint32_t pref = 0;
  uint32_t table = 0;
  uint8_t action = 0;    // FR_ACT_*
  uint8_t protocol = 0;  // FRA_PROTOCOL: who added it (kRtProtClovis: clovis)
  bool has_mark = false;
  uint32_t mark = 0, mask = 0;
  std::vector<std::byte> raw;
};

struct RouteEntry {
  int family = 0;
  uint32_t table = 0;
  uint8_t protocol = 0;  // rtm_protocol
  uint8_t type = 0;      // RTN_*
  int oif = 0;
  std::vector<std::byte> raw;
};

struct NeighEntry {
  int family = 0;
  int ifindex = 0;
  std::array<uint8_t, 16> addr{};  // network order; IPv4 uses addr[0..3]
  bool has_lladdr = false;
  std::array<uint8_t, 6> lladdr{};
  uint16_t state = 0;    // NUD_*
  uint8_t protocol = 0;  // NDA_PROTOCOL (Linux >= 5.2); 0 when unset
  std::vector<std::byte> raw;
};

class NlRequest;   // a request being built; defined in netlink_codec.hpp
struct NlMessage;  // one received message; defined in netlink_codec.hpp

// Owns one NETLINK_ROUTE socket of the network namespace current at open()
// time. Every request asks for an ACK and waits for it, so each call either
// took effect or returns the kernel's errno. Not thread-safe: use one per
// thread, or lock around it.
class Netlink {
 public:
  static core::Result<Netlink> open();

  Netlink(Netlink&& other) noexcept = default;
  Netlink& operator=(Netlink&& other) noexcept = default;

  // ip rule add fwmark MARK/0xffffffff lookup TABLE pref PREF. An identical
  // existing rule is success, so re-applying a configuration is harmless.
  core::Status add_rule(int family, uint32_t mark, uint32_t table, uint32_t pref);
  // The inverse; a rule that is already gone is success.
  core::Status del_rule(int family, uint32_t mark, uint32_t table, uint32_t pref);

  // ip route replace default [via GW] dev IFINDEX table TABLE proto 0xc1.
  // gw (4 or 16 bytes, network order) == nullptr: a device route, for
  // point-to-point links.
  core::Status replace_default_route(int family, const uint8_t* gw, int ifindex, uint32_t table);
  // Deletes every route of `family` in `table`, whoever installed it.
  core::Status flush_table(int family, uint32_t table);

  // ip neigh replace ADDR lladdr MAC dev IFINDEX nud permanent protocol 0xc1
  core::Status set_neighbor(int family, const uint8_t* addr, const std::array<uint8_t, 6>& mac, int ifindex);
  // A neighbour that is already gone is success.
  core::Status del_neighbor(int family, const uint8_t* addr, int ifindex);

  // Every rule, route (of every table) or neighbour of `family` (AF_INET or
  // AF_INET6), for finding what clovis left behind; and the exact deletes of
  // listed entries (one already gone is success).
  core::Result<std::vector<RuleEntry>> rules(int family);
  core::Result<std::vector<RouteEntry>> routes(int family);
  core::Result<std::vector<NeighEntry>> neighbors(int family);
  core::Status delete_rule(const RuleEntry& r);
  core::Status delete_route(const RouteEntry& r);
  core::Status delete_neighbor(const NeighEntry& n);

  core::Result<IfInfo> link(const std::string& name);
  core::Result<IfInfo> link(int ifindex);
  // The interface's byte counters (IFLA_STATS64), as `ip -s link` shows them.
  struct LinkStats {
    int ifindex = 0;
    uint64_t rx_bytes = 0, tx_bytes = 0;
  };
  core::Result<LinkStats> link_stats(const std::string& name);
  // Global-scope addresses of `family` (AF_INET, AF_INET6 or AF_UNSPEC for
  // both) on the link, primary addresses before secondary/temporary ones.
  // Addresses that failed duplicate address detection are left out.
  core::Result<std::vector<IfAddr>> addresses(int ifindex, int family);
  // Every address of every interface, whatever its scope (the host's own:
  // what a packet addressed to is delivered locally).
  core::Result<std::vector<IfAddr>> local_addresses();

 private:
  using OnMessage = std::function<void(const NlMessage&)>;

  explicit Netlink(int fd, uint32_t port_id) : fd_(fd), port_id_(port_id) {}
  // Sends `req` and reads replies until its ACK (or NLMSG_DONE for dumps).
  // Errnos listed in `ok_errnos` count as success. `what` names the
  // operation in error messages.
  core::Status transact(NlRequest& req, const std::string& what, std::initializer_list<int> ok_errnos = {},
                        const OnMessage& on_message = {});
  // A dump that the kernel flagged as interrupted by a concurrent change is
  // retried from scratch; `reset` drops what the previous attempt collected.
  core::Status dump(NlRequest& req, const std::string& what, const std::function<void()>& reset,
                    const OnMessage& on_message);
  core::Status send(NlRequest& req, const std::string& what);
  core::Result<size_t> receive(const std::string& what);
  core::Status rule(uint16_t type, int family, uint32_t mark, uint32_t table, uint32_t pref);
  core::Status neighbor(uint16_t type, int family, const uint8_t* addr, const std::array<uint8_t, 6>* mac, int ifindex);
  // By index, or by name when `name` is not empty.
  core::Result<IfInfo> get_link(int ifindex, const std::string& name, const std::string& what);

  core::Fd fd_;
  uint32_t port_id_ = 0;
  uint32_t seq_ = 0;
  std::vector<std::byte> rx_;  // receive buffer, grown when a datagram does not fit
};

}  // namespace clovis::agent::kernel
