// HostNetwork over rtnetlink.
#pragma once

#include <memory>

#include "netlink/netlink.hpp"
#include "ports/host_network.hpp"

namespace clovis::agent::kernel {

class NetlinkHost final : public HostNetwork {
 public:
  static core::Result<std::unique_ptr<NetlinkHost>> open();

  core::Result<InterfaceState> interface(const std::string& name) override;
  core::Result<core::CounterSample> interface_counters(const std::string& name) override;
  core::Status install_route_link(const RouteLink& r) override;
  core::Status remove_route_link(const RouteLink& r) override;
  core::Status set_neighbor(const core::IpAddr& addr, const std::array<uint8_t, 6>& mac, int ifindex) override;

 private:
  explicit NetlinkHost(Netlink nl) : nl_(std::move(nl)) {}
  Netlink nl_;
};

}  // namespace clovis::agent::kernel
