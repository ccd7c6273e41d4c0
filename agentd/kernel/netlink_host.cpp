#include "netlink_host.hpp"

#include <sys/socket.h>

#include "core/pipeline.hpp"

namespace clovis::agent::kernel {

namespace {

int af(core::Family f) {
  return f == core::Family::kV4 ? AF_INET : AF_INET6;
}

}  // namespace

core::Result<std::unique_ptr<NetlinkHost>> NetlinkHost::open() {
  auto nl = Netlink::open();
  if (!nl) return core::error_of(nl);
  return std::unique_ptr<NetlinkHost>(new NetlinkHost(std::move(nl.value())));
}

core::Result<InterfaceState> NetlinkHost::interface(const std::string& name) {
  auto info = nl_.link(name);
  if (!info) return core::error_of(info);
  InterfaceState st;
  st.ifindex = info->ifindex;
  st.up = info->up && info->carrier;
  auto addrs = nl_.addresses(info->ifindex, AF_UNSPEC);
  if (!addrs) return core::error_of(addrs);
  for (const auto& a : *addrs) {
    core::IpAddr ip;
    ip.family = a.family == AF_INET ? core::Family::kV4 : core::Family::kV6;
    ip.bytes = a.addr;
    auto& slot = a.family == AF_INET ? st.addr4 : st.addr6;
    if (!slot) slot = ip;  // primary first
  }
  return st;
}

// The kernel's id of this boot: interface counters start again at each.
// Read once: it does not change while clovisd runs.
const std::string& boot_id() {
  static const std::string id = [] {
    auto t = core::read_file("/proc/sys/kernel/random/boot_id");
    std::string s = t ? *t : std::string();
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
  }();
  return id;
}

core::Result<core::CounterSample> NetlinkHost::interface_counters(const std::string& name) {
  auto st = nl_.link_stats(name);
  if (!st) return core::error_of(st);
  return core::CounterSample{st->rx_bytes, st->tx_bytes, st->ifindex, boot_id()};
}

core::Status NetlinkHost::install_route_link(const RouteLink& r) {
  for (core::Family f : {core::Family::kV4, core::Family::kV6}) {
    const auto& gw = f == core::Family::kV4 ? r.gw4 : r.gw6;
    if (!gw && !r.point_to_point) continue;
    if (auto st = nl_.replace_default_route(af(f), gw ? gw->bytes.data() : nullptr, r.ifindex, r.table); !st) return st;
    if (auto st = nl_.add_rule(af(f), r.mark, r.table, r.pref); !st) return st;
  }
  return core::Ok{};
}

core::Status NetlinkHost::remove_route_link(const RouteLink& r) {
  for (core::Family f : {core::Family::kV4, core::Family::kV6}) {
    if (auto st = nl_.del_rule(af(f), r.mark, r.table, r.pref); !st) return st;
    if (auto st = nl_.flush_table(af(f), r.table); !st) return st;
  }
  return core::Ok{};
}

core::Status NetlinkHost::set_neighbor(const core::IpAddr& addr, const std::array<uint8_t, 6>& mac, int ifindex) {
  return nl_.set_neighbor(af(addr.family), addr.bytes.data(), mac, ifindex);
}

}  // namespace clovis::agent::kernel
