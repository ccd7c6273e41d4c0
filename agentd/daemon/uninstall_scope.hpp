// Which of the kernel's rules, routes and neighbours are clovis's, for
// clovisd --uninstall: pure decisions over what rtnetlink listed, so they
// are tested without root (tests/unit/test_uninstall_scope.cpp).
#pragma once

#include <array>
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/compiled.hpp"
#include "netlink/netlink.hpp"

namespace clovis::agent {

// What clovis's mappings made, as far as the state directory remembers.
struct KnownLinks {
  std::set<std::pair<uint32_t, uint32_t>> mark_table;  // the links' fwmark rules
  std::set<uint32_t> tables;
  struct GatewayMac {
    int family;
    std::array<uint8_t, 16> addr;
    std::array<uint8_t, 6> mac;
  };
  std::vector<GatewayMac> gateway_macs;

  void add(const core::CompiledRules& c);
};

// The persisted mapping with its slots, and every mapping of the history
// (their slots, and so default marks, may differ: the protocol tag is what
// finds rules; these add the gateway MACs made before neighbours had one).
KnownLinks known_links(const std::string& state_dir);

// Tagged with clovis's protocol, or exactly a known link's fwmark rule in
// clovis's preference range.
bool clovis_rule(const kernel::RuleEntry& r, const KnownLinks& k, uint32_t pref_base);
// Tagged, or in one of `tables` (never main, local or default).
bool clovis_route(const kernel::RouteEntry& r, const std::set<uint32_t>& tables);
// Permanent, and tagged or a known gateway-mac (address and MAC).
bool clovis_neighbor(const kernel::NeighEntry& n, const KnownLinks& k);

}  // namespace clovis::agent
