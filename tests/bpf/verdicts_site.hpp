// The mapping and site the verdict tests (test_bpf_verdicts.cpp,
// test_bpf_nat.cpp) push their packet tables through: one route link, one
// redirect link with source NAT, one redirect link without.
#pragma once

#include <string>

#include <doctest/doctest.h>

#include "kernel_site.hpp"

namespace clovis::test::verdicts {

inline constexpr const char* kMapping = R"(version: 1
links:
  - {name: r, interface: wan0, gateway: [192.0.2.1, "2001:db8:ff::1"], mode: route, mark: 0x77}
  - {name: d, interface: wan0, gateway: [192.0.2.1, "2001:db8:ff::1"], mode: redirect,
     snat: [192.0.2.2, "2001:db8:ff::2"]}
  - {name: t, interface: wan0, gateway: 192.0.2.1, mode: redirect}
rules:
  - {name: https, priority: 10, match: {proto: tcp, dport: 443}, link: d}
  - {name: dns, priority: 20, match: {proto: udp, dport: 53}, link: r}
  - {name: blocked, priority: 30, match: {dst: 10.0.9.0/24}, action: drop}
  - {name: guests, priority: 40, match: {interface: lan1}, action: bypass}
  - {name: tunnel, priority: 50, match: {proto: udp, dport: 4789}, link: t}
  - {name: pings, priority: 60, match: {proto: [icmp, icmpv6]}, link: d}
default: {link: r}
)";

struct Site {
  test::KernelSite site;
  const core::CompiledRules* rules = nullptr;
  Site() {
    REQUIRE_MESSAGE(site.ok(), site.error());
    rules = &site.apply(kMapping);
  }
  std::string rule_of(const clv_flow& f) const { return rules->rules[f.rule_id].name; }
  std::string link_of(const clv_flow& f) const { return rules->link_info[f.link].name; }
};

}  // namespace clovis::test::verdicts
