#include "netlink.hpp"

#include <arpa/inet.h>
#include <linux/fib_rules.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <span>
#include <system_error>
#include <utility>

#include <fmt/format.h>

#include "netlink_codec.hpp"

namespace clovis::agent::kernel {

namespace {

using core::ErrorCode;
using core::Ok;
using core::Status;
using nlcodec::align4;
using nlcodec::for_each_attr;
using nlcodec::kHdrLen;
using nlcodec::kRxBufferSize;
using nlcodec::parse_link;
using nlcodec::read_as;
using nlcodec::read_string;
using nlcodec::take_message;

// The kernel answers in microseconds; a reply that takes this long will not
// come, and a stuck control plane is worse than an error.
constexpr time_t kReplyTimeoutSec = 5;
// A dump restarted this many times in a row is given up.
constexpr int kDumpAttempts = 5;

core::Unexpected<core::Error> sys_fail(const std::string& what, int err, const std::string& detail = {}) {
  const ErrorCode code = err == ENOENT || err == ENODEV || err == ESRCH || err == ENXIO ? ErrorCode::kNotFound
                         : err == EINVAL || err == ERANGE                               ? ErrorCode::kInvalidArgument
                                                                                        : ErrorCode::kIo;
  std::string message = what + ": " + std::generic_category().message(err);
  if (!detail.empty()) message += " (" + detail + ")";
  return core::fail(code, std::move(message), {}, err);
}

core::Unexpected<core::Error> invalid(const std::string& what, const std::string& why) {
  return core::fail(ErrorCode::kInvalidArgument, what + ": " + why, {}, EINVAL);
}

bool is_ip_family(int family) {
  return family == AF_INET || family == AF_INET6;
}
size_t addr_len(int family) {
  return family == AF_INET ? 4 : 16;
}
const char* family_name(int family) {
  return family == AF_INET6 ? "ipv6" : "ipv4";
}

std::string addr_str(int family, const uint8_t* addr) {
  char text[INET6_ADDRSTRLEN] = {};
  if (!is_ip_family(family) || ::inet_ntop(family, addr, text, sizeof text) == nullptr) return "?";
  return text;
}

// The kernel's own explanation attached to an error (NETLINK_EXT_ACK).
std::string extack_message(const NlMessage& m) {
  if ((m.hdr.nlmsg_flags & NLM_F_ACK_TLVS) == 0) return {};
  const auto err = m.fixed<nlmsgerr>();
  if (!err) return {};
  size_t offset = sizeof(nlmsgerr);
  if ((m.hdr.nlmsg_flags & NLM_F_CAPPED) == 0) offset += err->msg.nlmsg_len - kHdrLen;
  offset = align4(offset);
  if (offset >= m.payload.size()) return {};
  std::string text;
  for_each_attr(m.payload.subspan(offset), [&](uint16_t type, std::span<const std::byte> v) {
    if (type == NLMSGERR_ATTR_MSG) text = read_string(v);
  });
  return text;
}

bool contains(std::initializer_list<int> errnos, int err) {
  return std::find(errnos.begin(), errnos.end(), err) != errnos.end();
}

uint32_t route_table(const NlMessage& m) {
  const auto rtm = m.fixed<rtmsg>();
  if (!rtm) return RT_TABLE_UNSPEC;
  uint32_t table = rtm->rtm_table;
  for_each_attr(m.attrs<rtmsg>(), [&](uint16_t type, std::span<const std::byte> v) {
    if (type == RTA_TABLE && v.size() >= sizeof(uint32_t)) table = read_as<uint32_t>(v);
  });
  return table;
}

struct FoundAddr {
  IfAddr addr;
  bool secondary = false;
};

// A global-scope, usable address of `ifindex`, or nothing.
std::optional<FoundAddr> parse_addr(const NlMessage& m, int ifindex) {
  const auto ifa = m.fixed<ifaddrmsg>();
  if (m.hdr.nlmsg_type != RTM_NEWADDR || !ifa) return std::nullopt;
  if (static_cast<int>(ifa->ifa_index) != ifindex || ifa->ifa_scope != RT_SCOPE_UNIVERSE ||
      !is_ip_family(ifa->ifa_family))
    return std::nullopt;
  uint32_t flags = ifa->ifa_flags;  // IFA_FLAGS, when present, has all 32 bits
  std::span<const std::byte> local, address;
  for_each_attr(m.attrs<ifaddrmsg>(), [&](uint16_t type, std::span<const std::byte> v) {
    if (type == IFA_FLAGS && v.size() >= sizeof(uint32_t)) flags = read_as<uint32_t>(v);
    if (type == IFA_LOCAL) local = v;
    if (type == IFA_ADDRESS) address = v;
  });
  // On point-to-point links IFA_ADDRESS is the peer; IFA_LOCAL is ours.
  const auto bytes = local.empty() ? address : local;
  const size_t len = addr_len(ifa->ifa_family);
  if ((flags & IFA_F_DADFAILED) != 0 || bytes.size() != len) return std::nullopt;

  FoundAddr found;
  found.addr.family = ifa->ifa_family;
  found.addr.prefixlen = ifa->ifa_prefixlen;
  std::memcpy(found.addr.addr.data(), bytes.data(), len);
  // IPv4 secondaries and IPv6 temporary (privacy) addresses share the bit.
  found.secondary = (flags & IFA_F_SECONDARY) != 0;
  return found;
}

}  // namespace

core::Result<Netlink> Netlink::open() {
  const int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return sys_fail("open NETLINK_ROUTE socket", errno);
  Netlink nl(fd, 0);  // owns fd from here on: every error path below closes it

  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&local), sizeof local) != 0)
    return sys_fail("bind NETLINK_ROUTE socket", errno);
  socklen_t len = sizeof local;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0)
    return sys_fail("getsockname on NETLINK_ROUTE socket", errno);
  nl.port_id_ = local.nl_pid;

  // Best effort: extended ACKs carry the kernel's own explanation ("Nexthop
  // has invalid gateway"), capped ACKs stop it echoing our whole request.
  const int one = 1;
  (void)::setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  (void)::setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  const timeval tv{kReplyTimeoutSec, 0};
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0)
    return sys_fail("set receive timeout on NETLINK_ROUTE socket", errno);

  nl.rx_.resize(kRxBufferSize);
  return nl;
}

Status Netlink::send(NlRequest& req, const std::string& what) {
  nlmsghdr& h = req.hdr();
  std::vector<std::byte>& body = req.body_bytes();
  h.nlmsg_len = static_cast<uint32_t>(kHdrLen + body.size());
  h.nlmsg_seq = ++seq_;
  h.nlmsg_pid = 0;

  sockaddr_nl kernel{.nl_family = AF_NETLINK, .nl_pad = 0, .nl_pid = 0, .nl_groups = 0};
  iovec iov[2] = {{&h, kHdrLen}, {body.data(), body.size()}};
  msghdr msg{.msg_name = &kernel,
             .msg_namelen = sizeof kernel,
             .msg_iov = iov,
             .msg_iovlen = 2,
             .msg_control = nullptr,
             .msg_controllen = 0,
             .msg_flags = 0};
  for (;;) {
    const ssize_t n = ::sendmsg(fd_.get(), &msg, 0);
    if (n >= 0 && static_cast<size_t>(n) == h.nlmsg_len) return Ok{};
    if (n >= 0) return sys_fail(what + ": short netlink send", EIO);
    if (errno != EINTR) return sys_fail(what + ": netlink send", errno);
  }
}

core::Result<size_t> Netlink::receive(const std::string& what) {
  for (;;) {
    // Peek at the real datagram size first so a big one grows the buffer
    // instead of being cut short.
    const ssize_t size = ::recv(fd_.get(), nullptr, 0, MSG_PEEK | MSG_TRUNC);
    if (size < 0 && errno == EINTR) continue;
    if (size < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return sys_fail(what + ": no reply from the kernel", ETIMEDOUT);
    if (size < 0) return sys_fail(what + ": netlink receive", errno);
    if (static_cast<size_t>(size) > rx_.size()) rx_.resize(align4(static_cast<size_t>(size)));

    sockaddr_nl from{};
    iovec iov{rx_.data(), rx_.size()};
    msghdr msg{.msg_name = &from,
               .msg_namelen = sizeof from,
               .msg_iov = &iov,
               .msg_iovlen = 1,
               .msg_control = nullptr,
               .msg_controllen = 0,
               .msg_flags = 0};
    const ssize_t n = ::recvmsg(fd_.get(), &msg, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_fail(what + ": netlink receive", errno);
    if ((msg.msg_flags & MSG_TRUNC) != 0) return sys_fail(what + ": netlink reply truncated", EMSGSIZE);
    if (from.nl_pid != 0) continue;  // only the kernel may answer us
    return static_cast<size_t>(n);
  }
}

Status Netlink::transact(NlRequest& req, const std::string& what, std::initializer_list<int> ok_errnos,
                         const OnMessage& on_message) {
  if (auto sent = send(req, what); !sent) return core::error_of(sent);
  const uint32_t seq = req.hdr().nlmsg_seq;
  bool interrupted = false;
  for (;;) {
    auto got = receive(what);
    if (!got) return core::error_of(got);
    std::span<const std::byte> rest(rx_.data(), *got);
    while (rest.size() >= kHdrLen) {
      NlMessage m;
      if (!take_message(&rest, &m)) return sys_fail(what + ": malformed netlink reply", EBADMSG);
      // Leftovers of an earlier request that gave up half-way are not ours.
      if (m.hdr.nlmsg_seq != seq || m.hdr.nlmsg_pid != port_id_) continue;
      if ((m.hdr.nlmsg_flags & NLM_F_DUMP_INTR) != 0) interrupted = true;
      if (m.hdr.nlmsg_type == NLMSG_ERROR || m.hdr.nlmsg_type == NLMSG_DONE) {
        // Both carry an int errno first: 0 (or absent) is success.
        const int err = m.payload.size() >= sizeof(int) ? -read_as<int>(m.payload) : 0;
        if (err != 0 && !contains(ok_errnos, err)) return sys_fail(what, err, extack_message(m));
        if (interrupted) return sys_fail(what + ": dump interrupted by a change", EINTR);
        return Ok{};
      }
      if (on_message) on_message(m);
    }
  }
}

Status Netlink::dump(NlRequest& req, const std::string& what, const std::function<void()>& reset,
                     const OnMessage& on_message) {
  req.hdr().nlmsg_flags |= NLM_F_DUMP;
  for (int attempt = 1;; ++attempt) {
    reset();
    auto st = transact(req, what, {}, on_message);
    if (st || st.error().sys_errno != EINTR || attempt == kDumpAttempts) return st;
  }
}

Status Netlink::rule(uint16_t type, int family, uint32_t mark, uint32_t table, uint32_t pref) {
  const bool add = type == RTM_NEWRULE;
  const std::string what = fmt::format("{} {} rule fwmark {:#x} table {} pref {}", add ? "add" : "delete",
                                       family_name(family), mark, table, pref);
  if (!is_ip_family(family)) return invalid(what, "family must be AF_INET or AF_INET6");
  if (table == RT_TABLE_UNSPEC) return invalid(what, "table 0 is not a routing table");

  fib_rule_hdr frh{};
  frh.family = static_cast<uint8_t>(family);
  frh.table = static_cast<uint8_t>(table < 256 ? table : RT_TABLE_UNSPEC);
  frh.action = FR_ACT_TO_TBL;
  // NLM_F_EXCL makes the kernel compare against existing rules: an identical
  // one yields EEXIST (which we accept) instead of a silent duplicate.
  NlRequest req(type, add ? NLM_F_CREATE | NLM_F_EXCL : 0);
  req.body(frh);
  req.attr_u32(FRA_FWMARK, mark);
  req.attr_u32(FRA_FWMASK, 0xffffffffu);
  req.attr_u32(FRA_TABLE, table);
  req.attr_u32(FRA_PRIORITY, pref);
  // On delete the protocol is left out: the kernel then matches any, so a
  // rule someone else added with the same selector is removed too.
  if (add) req.attr_u8(FRA_PROTOCOL, kRtProtClovis);
  return transact(req, what, {add ? EEXIST : ENOENT});
}

Status Netlink::add_rule(int family, uint32_t mark, uint32_t table, uint32_t pref) {
  return rule(RTM_NEWRULE, family, mark, table, pref);
}

Status Netlink::del_rule(int family, uint32_t mark, uint32_t table, uint32_t pref) {
  return rule(RTM_DELRULE, family, mark, table, pref);
}

Status Netlink::replace_default_route(int family, const uint8_t* gw, int ifindex, uint32_t table) {
  const std::string via = gw != nullptr ? " via " + addr_str(family, gw) : std::string();
  const std::string what =
      fmt::format("replace {} default route{} dev #{} table {}", family_name(family), via, ifindex, table);
  if (!is_ip_family(family)) return invalid(what, "family must be AF_INET or AF_INET6");
  if (table == RT_TABLE_UNSPEC) return invalid(what, "table 0 is not a routing table");
  if (ifindex <= 0) return invalid(what, "no such interface index");

  rtmsg rtm{};
  rtm.rtm_family = static_cast<uint8_t>(family);
  rtm.rtm_table = static_cast<uint8_t>(table < 256 ? table : RT_TABLE_UNSPEC);
  rtm.rtm_protocol = kRtProtClovis;
  // A gateway must be reached through a connected (link-scope) route; a
  // device route is itself the link.
  rtm.rtm_scope = gw != nullptr ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
  rtm.rtm_type = RTN_UNICAST;
  NlRequest req(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE);
  req.body(rtm);
  req.attr_u32(RTA_TABLE, table);
  req.attr_u32(RTA_OIF, static_cast<uint32_t>(ifindex));
  if (gw != nullptr) req.attr(RTA_GATEWAY, gw, addr_len(family));
  return transact(req, what);
}

Status Netlink::flush_table(int family, uint32_t table) {
  const std::string what = fmt::format("flush {} table {}", family_name(family), table);
  if (!is_ip_family(family)) return invalid(what, "family must be AF_INET or AF_INET6");
  // These hold the host's own connectivity; flushing one is always a bug.
  if (table == RT_TABLE_UNSPEC || table == RT_TABLE_MAIN || table == RT_TABLE_LOCAL || table == RT_TABLE_DEFAULT)
    return invalid(what, "refusing to flush a reserved table");

  rtmsg rtm{};
  rtm.rtm_family = static_cast<uint8_t>(family);
  NlRequest req(RTM_GETROUTE, 0);
  req.body(rtm);
  // Routes are collected first and deleted after the dump: a request sent
  // mid-dump would interleave its ACK with the dump's parts.
  std::vector<std::vector<std::byte>> routes;
  auto st = dump(
      req, what, [&] { routes.clear(); },
      [&](const NlMessage& m) {
        if (m.hdr.nlmsg_type == RTM_NEWROUTE && route_table(m) == table)
          routes.emplace_back(m.payload.begin(), m.payload.end());
      });
  if (!st) return st;

  for (const auto& route : routes) {
    // Sending the dumped route back as a delete names exactly that route,
    // whatever its destination, metric or nexthops.
    NlRequest del(RTM_DELROUTE, 0);
    del.append(route.data(), route.size());
    // Gone already (a concurrent delete, or its link vanished): that is fine.
    if (auto d = transact(del, what + ": delete route", {ESRCH, ENOENT}); !d) return d;
  }
  return Ok{};
}

Status Netlink::neighbor(uint16_t type, int family, const uint8_t* addr, const std::array<uint8_t, 6>* mac,
                         int ifindex) {
  const bool set = type == RTM_NEWNEIGH;
  std::string what = fmt::format("{} neighbour {}", set ? "set" : "delete", addr_str(family, addr));
  if (set) what += fmt::format(" lladdr {:02x}", fmt::join(*mac, ":"));
  what += fmt::format(" dev #{}", ifindex);
  if (!is_ip_family(family) || addr == nullptr) return invalid(what, "need an IPv4 or IPv6 address");
  if (ifindex <= 0) return invalid(what, "no such interface index");

  ndmsg nd{};
  nd.ndm_family = static_cast<uint8_t>(family);
  nd.ndm_ifindex = ifindex;
  // Permanent: the kernel never ages it out nor replaces it from ARP/ND.
  if (set) nd.ndm_state = NUD_PERMANENT;
  NlRequest req(type, set ? NLM_F_CREATE | NLM_F_REPLACE : 0);
  req.body(nd);
  req.attr(NDA_DST, addr, addr_len(family));
  if (set) req.attr(NDA_LLADDR, mac->data(), mac->size());
  // Tags it as clovis's, so clovisd --uninstall finds it without the state
  // that made it. Kernels before 5.2 ignore the attribute.
  if (set) req.attr_u8(NDA_PROTOCOL, kRtProtClovis);
  return transact(req, what, {set ? 0 : ENOENT});
}

Status Netlink::set_neighbor(int family, const uint8_t* addr, const std::array<uint8_t, 6>& mac, int ifindex) {
  return neighbor(RTM_NEWNEIGH, family, addr, &mac, ifindex);
}

Status Netlink::del_neighbor(int family, const uint8_t* addr, int ifindex) {
  return neighbor(RTM_DELNEIGH, family, addr, nullptr, ifindex);
}

core::Result<IfInfo> Netlink::get_link(int ifindex, const std::string& name, const std::string& what) {
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = ifindex;
  NlRequest req(RTM_GETLINK, 0);
  req.body(ifi);
  if (!name.empty()) req.attr(IFLA_IFNAME, name.c_str(), name.size() + 1);
  // Statistics are most of a link message and nobody here reads them.
  req.attr_u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  std::optional<IfInfo> found;
  auto st = transact(req, what, {}, [&](const NlMessage& m) {
    if (m.hdr.nlmsg_type == RTM_NEWLINK && !found) found = parse_link(m);
  });
  if (!st) return core::error_of(st);
  if (!found) return core::fail(ErrorCode::kInternal, what + ": the kernel sent no link", {}, EBADMSG);
  return *found;
}

core::Result<IfInfo> Netlink::link(const std::string& name) {
  const std::string what = "get link " + name;
  if (name.empty() || name.size() >= IFNAMSIZ)
    return invalid(what, fmt::format("an interface name has 1 to {} characters", IFNAMSIZ - 1));
  return get_link(0, name, what);
}

core::Result<IfInfo> Netlink::link(int ifindex) {
  const std::string what = fmt::format("get link #{}", ifindex);
  if (ifindex <= 0) return invalid(what, "no such interface index");
  return get_link(ifindex, {}, what);
}

core::Result<Netlink::LinkStats> Netlink::link_stats(const std::string& name) {
  const std::string what = "read counters of " + name;
  if (name.empty() || name.size() >= IFNAMSIZ)
    return invalid(what, fmt::format("an interface name has 1 to {} characters", IFNAMSIZ - 1));
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  NlRequest req(RTM_GETLINK, 0);
  req.body(ifi);
  req.attr(IFLA_IFNAME, name.c_str(), name.size() + 1);
  std::optional<LinkStats> found;
  auto st = transact(req, what, {}, [&](const NlMessage& m) {
    if (m.hdr.nlmsg_type != RTM_NEWLINK || found) return;
    const auto hdr = m.fixed<ifinfomsg>();
    if (!hdr) return;
    LinkStats ls;
    ls.ifindex = hdr->ifi_index;
    bool have = false;
    nlcodec::for_each_attr(m.attrs<ifinfomsg>(), [&](uint16_t type, std::span<const std::byte> v) {
      if (type != IFLA_STATS64 || v.size() < sizeof(rtnl_link_stats64)) return;
      rtnl_link_stats64 s{};
      std::memcpy(&s, v.data(), sizeof s);
      ls.rx_bytes = s.rx_bytes, ls.tx_bytes = s.tx_bytes, have = true;
    });
    if (have) found = ls;
  });
  if (!st) return core::error_of(st);
  if (!found) return core::fail(ErrorCode::kInternal, what + ": the kernel sent no IFLA_STATS64", {}, EBADMSG);
  return *found;
}

core::Result<std::vector<IfAddr>> Netlink::local_addresses() {
  ifaddrmsg ifa{};
  ifa.ifa_family = AF_UNSPEC;
  NlRequest req(RTM_GETADDR, 0);
  req.body(ifa);
  std::vector<IfAddr> out;
  auto st = dump(
      req, "list the host's addresses", [&] { out.clear(); },
      [&](const NlMessage& m) {
        const auto hdr = m.fixed<ifaddrmsg>();
        if (m.hdr.nlmsg_type != RTM_NEWADDR || !hdr || !is_ip_family(hdr->ifa_family)) return;
        std::span<const std::byte> local, address;
        for_each_attr(m.attrs<ifaddrmsg>(), [&](uint16_t type, std::span<const std::byte> v) {
          if (type == IFA_LOCAL) local = v;
          if (type == IFA_ADDRESS) address = v;
        });
        const auto bytes = local.empty() ? address : local;
        const size_t len = addr_len(hdr->ifa_family);
        if (bytes.size() != len) return;
        IfAddr a;
        a.family = hdr->ifa_family;
        a.prefixlen = hdr->ifa_prefixlen;
        std::memcpy(a.addr.data(), bytes.data(), len);
        out.push_back(a);
      });
  if (!st) return core::error_of(st);
  return out;
}

core::Result<std::vector<IfAddr>> Netlink::addresses(int ifindex, int family) {
  const std::string what = fmt::format("list addresses of link #{}", ifindex);
  if (!is_ip_family(family) && family != AF_UNSPEC)
    return invalid(what, "family must be AF_INET, AF_INET6 or AF_UNSPEC");
  ifaddrmsg ifa{};
  ifa.ifa_family = static_cast<uint8_t>(family);
  NlRequest req(RTM_GETADDR, 0);
  req.body(ifa);

  std::vector<FoundAddr> found;
  auto st = dump(
      req, what, [&] { found.clear(); },
      [&](const NlMessage& m) {
        if (auto a = parse_addr(m, ifindex)) found.push_back(*a);
      });
  if (!st) return core::error_of(st);
  std::stable_partition(found.begin(), found.end(), [](const auto& a) { return !a.secondary; });
  std::vector<IfAddr> out;
  out.reserve(found.size());
  for (const auto& a : found) out.push_back(a.addr);
  return out;
}

// ---- Dumps and exact deletes, for clovisd --uninstall ----

namespace {

std::vector<std::byte> copy_payload(const NlMessage& m) {
  return {m.payload.begin(), m.payload.end()};
}

RuleEntry parse_rule(const NlMessage& m) {
  RuleEntry r;
  const auto frh = m.fixed<fib_rule_hdr>();
  if (!frh) return r;
  r.family = frh->family;
  r.table = frh->table;
  r.action = frh->action;
  for_each_attr(m.attrs<fib_rule_hdr>(), [&](uint16_t type, std::span<const std::byte> v) {
    if (type == FRA_PRIORITY && v.size() >= 4) r.pref = read_as<uint32_t>(v);
    else if (type == FRA_TABLE && v.size() >= 4) r.table = read_as<uint32_t>(v);
    else if (type == FRA_FWMARK && v.size() >= 4) r.has_mark = true, r.mark = read_as<uint32_t>(v);
    else if (type == FRA_FWMASK && v.size() >= 4) r.mask = read_as<uint32_t>(v);
    else if (type == FRA_PROTOCOL && !v.empty()) r.protocol = read_as<uint8_t>(v);
  });
  r.raw = copy_payload(m);
  return r;
}

RouteEntry parse_route(const NlMessage& m) {
  RouteEntry r;
  const auto rtm = m.fixed<rtmsg>();
  if (!rtm) return r;
  r.family = rtm->rtm_family;
  r.protocol = rtm->rtm_protocol;
  r.type = rtm->rtm_type;
  r.table = route_table(m);
  for_each_attr(m.attrs<rtmsg>(), [&](uint16_t type, std::span<const std::byte> v) {
    if (type == RTA_OIF && v.size() >= 4) r.oif = static_cast<int>(read_as<uint32_t>(v));
  });
  r.raw = copy_payload(m);
  return r;
}

NeighEntry parse_neighbor(const NlMessage& m) {
  NeighEntry n;
  const auto nd = m.fixed<ndmsg>();
  if (!nd) return n;
  n.family = nd->ndm_family;
  n.ifindex = nd->ndm_ifindex;
  n.state = nd->ndm_state;
  for_each_attr(m.attrs<ndmsg>(), [&](uint16_t type, std::span<const std::byte> v) {
    if (type == NDA_DST && is_ip_family(n.family) && v.size() == addr_len(n.family))
      std::memcpy(n.addr.data(), v.data(), v.size());
    else if (type == NDA_LLADDR && v.size() == n.lladdr.size())
      n.has_lladdr = true, std::memcpy(n.lladdr.data(), v.data(), v.size());
    else if (type == NDA_PROTOCOL && !v.empty()) n.protocol = read_as<uint8_t>(v);
  });
  n.raw = copy_payload(m);
  return n;
}

// A dump request of `type` for `family`: every rtnetlink family header
// starts with its u8 family.
template <typename Fixed>
NlRequest dump_request(uint16_t type, int family) {
  Fixed fixed{};
  const auto f = static_cast<uint8_t>(family);
  std::memcpy(&fixed, &f, 1);
  NlRequest req(type, 0);
  req.body(fixed);
  return req;
}

}  // namespace

core::Result<std::vector<RuleEntry>> Netlink::rules(int family) {
  const std::string what = fmt::format("list {} rules", family_name(family));
  if (!is_ip_family(family)) return invalid(what, "family must be AF_INET or AF_INET6");
  auto req = dump_request<fib_rule_hdr>(RTM_GETRULE, family);
  std::vector<RuleEntry> out;
  auto st = dump(
      req, what, [&] { out.clear(); },
      [&](const NlMessage& m) {
        if (m.hdr.nlmsg_type == RTM_NEWRULE) out.push_back(parse_rule(m));
      });
  if (!st) return core::error_of(st);
  return out;
}

core::Result<std::vector<RouteEntry>> Netlink::routes(int family) {
  const std::string what = fmt::format("list {} routes", family_name(family));
  if (!is_ip_family(family)) return invalid(what, "family must be AF_INET or AF_INET6");
  auto req = dump_request<rtmsg>(RTM_GETROUTE, family);
  std::vector<RouteEntry> out;
  auto st = dump(
      req, what, [&] { out.clear(); },
      [&](const NlMessage& m) {
        if (m.hdr.nlmsg_type == RTM_NEWROUTE) out.push_back(parse_route(m));
      });
  if (!st) return core::error_of(st);
  return out;
}

core::Result<std::vector<NeighEntry>> Netlink::neighbors(int family) {
  const std::string what = fmt::format("list {} neighbours", family_name(family));
  if (!is_ip_family(family)) return invalid(what, "family must be AF_INET or AF_INET6");
  auto req = dump_request<ndmsg>(RTM_GETNEIGH, family);
  std::vector<NeighEntry> out;
  auto st = dump(
      req, what, [&] { out.clear(); },
      [&](const NlMessage& m) {
        if (m.hdr.nlmsg_type == RTM_NEWNEIGH) out.push_back(parse_neighbor(m));
      });
  if (!st) return core::error_of(st);
  return out;
}

Status Netlink::delete_rule(const RuleEntry& r) {
  NlRequest req(RTM_DELRULE, 0);
  req.append(r.raw.data(), r.raw.size());
  return transact(req, fmt::format("delete {} rule pref {} table {}", family_name(r.family), r.pref, r.table),
                  {ENOENT});
}

Status Netlink::delete_route(const RouteEntry& r) {
  NlRequest req(RTM_DELROUTE, 0);
  req.append(r.raw.data(), r.raw.size());
  return transact(req, fmt::format("delete {} route of table {}", family_name(r.family), r.table), {ESRCH, ENOENT});
}

Status Netlink::delete_neighbor(const NeighEntry& n) {
  NlRequest req(RTM_DELNEIGH, 0);
  req.append(n.raw.data(), n.raw.size());
  return transact(req, fmt::format("delete neighbour {} dev #{}", addr_str(n.family, n.addr.data()), n.ifindex),
                  {ENOENT});
}

}  // namespace clovis::agent::kernel
