// clovis_netlink against the real kernel, each case in its own network
// namespace. `ip` is the independent witness: what the module did must show
// up in iproute2's view of the kernel, not just in the module's own reads.
#include <arpa/inet.h>
#include <linux/if.h>
#include <poll.h>
#include <sys/wait.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "netlink/netlink.hpp"
#include "netns_guard.hpp"

namespace clovis::test {
namespace {

using agent::kernel::HostEvent;
using agent::kernel::IfAddr;
using agent::kernel::Netlink;
using agent::kernel::NetlinkEvents;

const std::array<uint8_t, 6> kMac0 = {0x02, 0, 0, 0, 0, 0x01};
const std::array<uint8_t, 6> kMac1 = {0x02, 0, 0, 0, 0, 0x02};

struct Cmd {
  int status = -1;
  std::string out;
};

Cmd sh(const std::string& cmd) {
  Cmd r;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// Runs a setup or inspection command that must succeed; returns its output.
std::string run(const std::string& cmd) {
  const Cmd r = sh(cmd);
  INFO(cmd, "\n", r.out);
  REQUIRE(r.status == 0);
  return r.out;
}

size_t count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

std::array<uint8_t, 16> ip(const char* text) {
  std::array<uint8_t, 16> a{};
  const int family = std::string(text).find(':') != std::string::npos ? AF_INET6 : AF_INET;
  REQUIRE(::inet_pton(family, text, a.data()) == 1);
  return a;
}

std::string str(const IfAddr& a) {
  char text[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(a.family, a.addr.data(), text, sizeof text);
  return std::string(text) + "/" + std::to_string(a.prefixlen);
}

template <typename R>
std::string err(const R& r) {
  return r.ok() ? std::string() : r.error().what();
}

// v0 <-> v1, both up, with known MACs and addresses on v0. Returns v0's index.
int make_veth(Netlink& nl) {
  run("ip link add v0 address 02:00:00:00:00:01 type veth peer name v1 address 02:00:00:00:00:02");
  run("ip link set v0 up && ip link set v1 up");
  run("ip addr add 10.0.0.1/24 dev v0 && ip addr add 2001:db8:1::1/64 dev v0 nodad");
  auto info = nl.link("v0");
  REQUIRE_MESSAGE(info.ok(), err(info));
  return info->ifindex;
}

Netlink open_netlink() {
  auto nl = Netlink::open();
  REQUIRE_MESSAGE(nl.ok(), err(nl));
  return std::move(nl).value();
}

#define CLOVIS_NETNS()           \
  CLOVIS_REQUIRE_ROOT_OR_SKIP(); \
  NetnsGuard netns_guard;        \
  REQUIRE_MESSAGE(netns_guard.ok(), netns_guard.error())

TEST_CASE("netlink: link() by name and by index") {
  CLOVIS_NETNS();
  Netlink nl = open_netlink();
  const int ifindex = make_veth(nl);
  run("ip link set v0 mtu 1400");

  auto by_name = nl.link("v0");
  REQUIRE_MESSAGE(by_name.ok(), err(by_name));
  CHECK(by_name->ifindex == ifindex);
  CHECK(by_name->name == "v0");
  CHECK(by_name->mac == kMac0);
  CHECK(by_name->mtu == 1400);
  CHECK(by_name->up);
  CHECK(by_name->carrier);

  auto by_index = nl.link(ifindex);
  REQUIRE_MESSAGE(by_index.ok(), err(by_index));
  CHECK(by_index->name == "v0");
  CHECK(by_index->mac == kMac0);

  // operstate follows carrier asynchronously (linkwatch), so wait for it.
  uint8_t operstate = 0;
  for (int i = 0; i < 50 && operstate != IF_OPER_UP; ++i) {
    auto l = nl.link("v0");
    REQUIRE(l.ok());
    operstate = l->operstate;
    if (operstate != IF_OPER_UP) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(operstate == IF_OPER_UP);

  SUBCASE("peer down: still up, no carrier") {
    run("ip link set v1 down");
    auto l = nl.link("v0");
    REQUIRE(l.ok());
    CHECK(l->up);
    CHECK_FALSE(l->carrier);
  }
  SUBCASE("admin down: neither") {
    run("ip link set v0 down");
    auto l = nl.link(ifindex);
    REQUIRE(l.ok());
    CHECK_FALSE(l->up);
    CHECK_FALSE(l->carrier);
  }
  auto peer = nl.link("v1");
  REQUIRE(peer.ok());
  CHECK(peer->mac == kMac1);
}

TEST_CASE("netlink: unknown links are errors") {
  CLOVIS_NETNS();
  Netlink nl = open_netlink();

  auto missing = nl.link("nonexistent0");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == core::ErrorCode::kNotFound);
  CHECK(missing.error().sys_errno == ENODEV);
  CHECK(missing.error().message.find("get link nonexistent0") != std::string::npos);

  CHECK_FALSE(nl.link(999999).ok());
  CHECK(nl.link(std::string(IFNAMSIZ, 'x')).error().code == core::ErrorCode::kInvalidArgument);
}

TEST_CASE("netlink: fwmark rules are idempotent and removable") {
  CLOVIS_NETNS();
  Netlink nl = open_netlink();

  bool v6 = false;  // each SUBCASE reruns the case in a fresh namespace
  SUBCASE("ipv4") {
    v6 = false;
  }
  SUBCASE("ipv6") {
    v6 = true;
  }
  const int family = v6 ? AF_INET6 : AF_INET;
  const std::string show = v6 ? "ip -6 rule show" : "ip -4 rule show";
  // Table 100 fits rtm_table; 1000 only travels in FRA_TABLE.
  for (const uint32_t table : {100u, 1000u}) {
    CAPTURE(table);
    // iproute2 prints the mask only when it is not 0xffffffff, and our
    // protocol number in decimal.
    const std::string line = "1000:\tfrom all fwmark 0x100 lookup " + std::to_string(table) + " proto 193";
    auto first = nl.add_rule(family, 0x100, table, 1000);
    REQUIRE_MESSAGE(first.ok(), err(first));
    auto again = nl.add_rule(family, 0x100, table, 1000);
    REQUIRE_MESSAGE(again.ok(), err(again));
    const std::string rules = run(show);
    INFO(rules);
    CHECK(count(rules, line) == 1);

    auto del = nl.del_rule(family, 0x100, table, 1000);
    REQUIRE_MESSAGE(del.ok(), err(del));
    CHECK(count(run(show), "fwmark 0x100") == 0);
    auto del_again = nl.del_rule(family, 0x100, table, 1000);
    CHECK_MESSAGE(del_again.ok(), err(del_again));
  }
  // The other family is untouched by a rule of this one.
  CHECK(nl.add_rule(family, 0x200, 200, 2000).ok());
  CHECK(count(run(v6 ? "ip -4 rule show" : "ip -6 rule show"), "fwmark 0x200") == 0);
}

TEST_CASE("netlink: default routes per table, replace and flush") {
  CLOVIS_NETNS();
  Netlink nl = open_netlink();
  const int ifindex = make_veth(nl);

  bool v6 = false;  // each SUBCASE reruns the case in a fresh namespace
  SUBCASE("ipv4") {
    v6 = false;
  }
  SUBCASE("ipv6") {
    v6 = true;
  }
  const int family = v6 ? AF_INET6 : AF_INET;
  const std::string ipf = v6 ? "ip -6 " : "ip -4 ";
  const auto gw1 = ip(v6 ? "2001:db8:1::2" : "10.0.0.2");
  const auto gw2 = ip(v6 ? "2001:db8:1::3" : "10.0.0.3");

  auto r = nl.replace_default_route(family, gw1.data(), ifindex, 100);
  REQUIRE_MESSAGE(r.ok(), err(r));
  std::string t100 = run(ipf + "route show table 100");
  INFO(t100);
  CHECK(count(t100, std::string("default via ") + (v6 ? "2001:db8:1::2" : "10.0.0.2") + " dev v0 proto 193") == 1);
  CHECK(run(ipf + "route show proto 0xc1 table all").find("table 100") != std::string::npos);

  // Replace, not add: still exactly one default route, now via gw2.
  r = nl.replace_default_route(family, gw2.data(), ifindex, 100);
  REQUIRE_MESSAGE(r.ok(), err(r));
  t100 = run(ipf + "route show table 100");
  CHECK(count(t100, "default") == 1);
  CHECK(t100.find(v6 ? "via 2001:db8:1::3" : "via 10.0.0.3") != std::string::npos);

  // A device route (point-to-point style) in a table >= 256.
  r = nl.replace_default_route(family, nullptr, ifindex, 1000);
  REQUIRE_MESSAGE(r.ok(), err(r));
  const std::string t1000 = run(ipf + "route show table 1000");
  CHECK(t1000.find("default dev v0 proto 193") != std::string::npos);
  if (!v6) CHECK(t1000.find("scope link") != std::string::npos);

  run(ipf + "route add " + (v6 ? "2001:db8:9::/64" : "192.0.2.0/24") + " dev v0 table 100");
  auto f = nl.flush_table(family, 100);
  REQUIRE_MESSAGE(f.ok(), err(f));
  CHECK(run(ipf + "route show table 100").empty());
  CHECK(run(ipf + "route show table 1000").find("default") != std::string::npos);
  CHECK(run(ipf + "route show table main").find(v6 ? "2001:db8:1::/64" : "10.0.0.0/24") != std::string::npos);
  f = nl.flush_table(family, 100);
  CHECK_MESSAGE(f.ok(), err(f));
  CHECK(nl.flush_table(family, 254).error().code == core::ErrorCode::kInvalidArgument);
}

TEST_CASE("netlink: flush_table reads multi-part dumps to the end") {
  CLOVIS_NETNS();
  Netlink nl = open_netlink();
  make_veth(nl);

  bool v6 = false;
  SUBCASE("ipv4") {
    v6 = false;
  }
  SUBCASE("ipv6") {
    v6 = true;
  }
  const std::string ipf = v6 ? "ip -6 " : "ip -4 ";
  // Thousands of routes cannot fit one 32 KiB datagram; a neighbouring
  // table checks the filter holds across every part.
  const std::string prefix = v6 ? R"(printf "route add 2001:db8:2::%x/128 dev v0 table %s\n")"
                                : R"(printf "route add 198.18.%d.%d/32 dev v0 table %s\n")";
  for (const char* table : {"100", "101"}) {
    const std::string args = v6 ? " $i " : " $((i / 256)) $((i % 256)) ";
    run("for i in $(seq 0 2999); do " + prefix + args + table + "; done | " + ipf + "-batch -");
  }
  CHECK(count(run(ipf + "route show table 100"), "\n") == 3000);

  auto f = nl.flush_table(v6 ? AF_INET6 : AF_INET, 100);
  REQUIRE_MESSAGE(f.ok(), err(f));
  CHECK(run(ipf + "route show table 100").empty());
  CHECK(count(run(ipf + "route show table 101"), "\n") == 3000);
}

TEST_CASE("netlink: route errors name the operation") {
  CLOVIS_NETNS();
  Netlink nl = open_netlink();
  const int ifindex = make_veth(nl);

  const auto gw = ip("10.0.0.2");
  auto r = nl.replace_default_route(AF_INET, gw.data(), 999999, 100);
  REQUIRE_FALSE(r.ok());
  const std::string msg = r.error().message;
  INFO(msg);
  CHECK(msg.find("replace ipv4 default route via 10.0.0.2 dev #999999 table 100: ") == 0);
  CHECK(r.error().sys_errno != 0);  // the kernel checks the gateway before the device
  r = nl.replace_default_route(AF_INET, nullptr, 999999, 100);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("replace ipv4 default route dev #999999 table 100: ") == 0);
  CHECK(r.error().sys_errno == ENODEV);
  CHECK(r.error().code == core::ErrorCode::kNotFound);

  // Unreachable gateway: the kernel's extended ACK text is kept.
  const auto far = ip("198.51.100.1");
  r = nl.replace_default_route(AF_INET, far.data(), ifindex, 100);
  REQUIRE_FALSE(r.ok());
  INFO(r.error().message);
  CHECK(r.error().sys_errno != 0);
  CHECK(r.error().message.find("(") != std::string::npos);

  CHECK(nl.replace_default_route(AF_PACKET, gw.data(), ifindex, 100).error().code == core::ErrorCode::kInvalidArgument);
  CHECK_FALSE(nl.add_rule(AF_INET, 0x100, 0, 1000).ok());
}

TEST_CASE("netlink: permanent neighbours") {
  CLOVIS_NETNS();
  Netlink nl = open_netlink();
  const int ifindex = make_veth(nl);

  bool v6 = false;  // each SUBCASE reruns the case in a fresh namespace
  SUBCASE("ipv4") {
    v6 = false;
  }
  SUBCASE("ipv6") {
    v6 = true;
  }
  const int family = v6 ? AF_INET6 : AF_INET;
  const std::string text = v6 ? "2001:db8:1::5" : "10.0.0.5";
  const auto addr = ip(text.c_str());

  auto s = nl.set_neighbor(family, addr.data(), {0x02, 0, 0, 0, 0, 0x05}, ifindex);
  REQUIRE_MESSAGE(s.ok(), err(s));
  CHECK(count(run("ip neigh show dev v0"), text + " lladdr 02:00:00:00:00:05 PERMANENT") == 1);
  // Replace with another MAC: one entry, the new MAC.
  s = nl.set_neighbor(family, addr.data(), {0x02, 0, 0, 0, 0, 0x06}, ifindex);
  REQUIRE_MESSAGE(s.ok(), err(s));
  const std::string neigh = run("ip neigh show dev v0");
  CHECK(count(neigh, text + " ") == 1);
  CHECK(count(neigh, text + " lladdr 02:00:00:00:00:06 PERMANENT") == 1);

  auto d = nl.del_neighbor(family, addr.data(), ifindex);
  REQUIRE_MESSAGE(d.ok(), err(d));
  CHECK(count(run("ip neigh show dev v0"), text + " ") == 0);
  d = nl.del_neighbor(family, addr.data(), ifindex);
  CHECK_MESSAGE(d.ok(), err(d));
  CHECK_FALSE(nl.set_neighbor(family, addr.data(), kMac1, 999999).ok());
}

TEST_CASE("netlink: global addresses, primary first") {
  CLOVIS_NETNS();
  Netlink nl = open_netlink();
  const int ifindex = make_veth(nl);
  run("ip addr add 10.0.0.9/24 dev v0 && ip addr add 172.16.0.1/16 dev v0");
  run("ip addr add 10.1.0.1/8 dev v0 scope link");

  auto v4 = nl.addresses(ifindex, AF_INET);
  REQUIRE_MESSAGE(v4.ok(), err(v4));
  REQUIRE(v4->size() == 3);
  // 10.0.0.9 is a secondary of 10.0.0.0/24: after both primaries.
  CHECK(str((*v4)[0]) == "10.0.0.1/24");
  CHECK(str((*v4)[1]) == "172.16.0.1/16");
  CHECK(str((*v4)[2]) == "10.0.0.9/24");

  auto v6 = nl.addresses(ifindex, AF_INET6);
  REQUIRE_MESSAGE(v6.ok(), err(v6));
  REQUIRE(v6->size() == 1);  // not fe80::, which is link scope
  CHECK(str((*v6)[0]) == "2001:db8:1::1/64");

  auto both = nl.addresses(ifindex, AF_UNSPEC);
  REQUIRE(both.ok());
  CHECK(both->size() == 4);

  auto peer = nl.link("v1");
  REQUIRE(peer.ok());
  auto none = nl.addresses(peer->ifindex, AF_INET);
  REQUIRE(none.ok());
  CHECK(none->empty());
}

TEST_CASE("netlink: a moved-from handle leaves the socket with the new owner") {
  CLOVIS_NETNS();
  Netlink a = open_netlink();
  Netlink b = std::move(a);
  auto lo = b.link("lo");
  REQUIRE_MESSAGE(lo.ok(), err(lo));
  CHECK(lo->ifindex == 1);
  Netlink c = open_netlink();
  c = std::move(b);
  CHECK(c.link(1).ok());
}

// Everything `ev` reports within ~1 s, until `done` says enough.
std::vector<HostEvent> collect(NetlinkEvents& ev, const std::function<bool(const std::vector<HostEvent>&)>& done) {
  std::vector<HostEvent> got;
  for (int i = 0; i < 20 && !done(got); ++i) {
    pollfd p{ev.fd(), POLLIN, 0};
    if (::poll(&p, 1, 50) > 0) (void)ev.drain([&](const HostEvent& e) { got.push_back(e); });
  }
  return got;
}

bool has(const std::vector<HostEvent>& got, HostEvent::Kind kind, const std::string& name, bool carrier = false) {
  for (const auto& e : got)
    if (e.kind == kind && e.link.name == name && (kind != HostEvent::Kind::kLink || e.link.carrier == carrier))
      return true;
  return false;
}

TEST_CASE("netlink events: carrier changes, address changes and removals, decoded") {
  CLOVIS_NETNS();
  Netlink nl = open_netlink();
  auto all = NetlinkEvents::open(NetlinkEvents::kLinks | NetlinkEvents::kAddresses, "test events");
  REQUIRE_MESSAGE(all.ok(), err(all));
  auto links = NetlinkEvents::open(NetlinkEvents::kLinks, "test link events");
  REQUIRE_MESSAGE(links.ok(), err(links));
  make_veth(nl);
  run("ip link set v1 down");
  run("ip addr add 10.9.0.1/24 dev v0");
  run("ip link del v0");
  using Kind = HostEvent::Kind;
  auto got = collect(*all, [](const auto& g) { return has(g, Kind::kLinkRemoved, "v0"); });
  CHECK(has(got, Kind::kLink, "v0", true));   // the veth came up
  CHECK(has(got, Kind::kLink, "v0", false));  // and lost its peer
  CHECK(has(got, Kind::kLinkRemoved, "v0"));
  bool address = false;
  for (const auto& e : got) address = address || e.kind == Kind::kAddress;
  CHECK(address);

  got = collect(*links, [](const auto& g) { return has(g, Kind::kLinkRemoved, "v0"); });
  CHECK(has(got, Kind::kLinkRemoved, "v0"));
  for (const auto& e : got) CHECK(e.kind != Kind::kAddress);  // not subscribed
}

}  // namespace
}  // namespace clovis::test
