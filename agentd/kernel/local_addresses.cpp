#include "local_addresses.hpp"

#include <netinet/in.h>

#include <algorithm>

#include "netlink/netlink.hpp"

namespace clovis::agent::kernel {

core::Status LocalAddresses::refresh() {
  auto nl = Netlink::open();
  if (!nl) return core::error_of(nl);
  auto found = nl->local_addresses();
  if (!found) return core::error_of(found);
  auto next = std::make_shared<std::vector<core::IpAddr>>();
  for (const auto& f : *found) {
    core::IpAddr a;
    a.family = f.family == AF_INET ? core::Family::kV4 : core::Family::kV6;
    a.bytes = f.addr;
    next->push_back(a);
  }
  std::lock_guard lock(mu_);
  addrs_ = std::move(next);
  return core::Ok{};
}

bool LocalAddresses::contains(const core::IpAddr& a) const {
  if (a.family == core::Family::kV4 && a.bytes[0] == 127) return true;
  static const core::IpAddr kLoop6 = *core::IpAddr::parse("::1");
  if (a == kLoop6) return true;
  std::shared_ptr<const std::vector<core::IpAddr>> now;
  {
    std::lock_guard lock(mu_);
    now = addrs_;
  }
  return std::find(now->begin(), now->end(), a) != now->end();
}

}  // namespace clovis::agent::kernel
