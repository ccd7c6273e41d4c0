// What the agent needs from the host's network stack besides BPF: interface
// facts, and policy routing for route-mode links. agentd/kernel/ implements it
// with rtnetlink; tests of upper layers use a fake.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "core/budget.hpp"
#include "core/net.hpp"
#include "core/result.hpp"

namespace clovis::agent {

struct InterfaceState {
  int ifindex = 0;
  bool up = false;                           // administratively up and with carrier
  std::optional<core::IpAddr> addr4, addr6;  // primary global addresses
};

// One route-mode link's policy routing: "ip rule fwmark MARK lookup TABLE"
// and a default route in TABLE via the gateway (or the device when p2p).
struct RouteLink {
  int slot = -1;  // the link's slot (not part of the kernel's identity)
  std::string interface;
  int ifindex = 0;
  uint32_t mark = 0;
  uint32_t table = 0;
  uint32_t pref = 0;  // ip rule preference
  std::optional<core::IpAddr> gw4, gw6;
  bool point_to_point = false;
};

class HostNetwork {
 public:
  virtual ~HostNetwork() = default;
  virtual core::Result<InterfaceState> interface(const std::string& name) = 0;
  virtual core::Status install_route_link(const RouteLink& r) = 0;
  virtual core::Status remove_route_link(const RouteLink& r) = 0;
  // A static neighbour for a gateway whose MAC the mapping gives.
  virtual core::Status set_neighbor(const core::IpAddr& addr, const std::array<uint8_t, 6>& mac, int ifindex) = 0;
  // The interface's own byte counters (every byte it received and sent,
  // whoever sent it), its index and the host's boot: what a metered link's
  // budget counts.
  virtual core::Result<core::CounterSample> interface_counters(const std::string& name) = 0;
};

}  // namespace clovis::agent
