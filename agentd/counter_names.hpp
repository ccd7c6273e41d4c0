// Names of the kernel's global counters (clv_stats, CLV_STAT_*), as
// `clovisd --dump` and the Status RPC show them.
#pragma once

#include <array>

#include "abi.hpp"

namespace clovis::agent {

inline constexpr std::array<const char*, CLV_STAT_MAX> kStatNames = {
    "packets",      "not_ip",        "fragment",   "malformed",   "flow_hit",    "new_flow",
    "local",        "not_steered",   "bypass",     "drop_rule",   "drop_no_link", "ttl_expired",
    "redirect_err", "nat_exhausted", "reclassified", "migrated",  "return",      "icmp_err_in",
    "icmp_err_out", "too_big",    "frag_unknown", "unparsed_drop"};

}  // namespace clovis::agent
