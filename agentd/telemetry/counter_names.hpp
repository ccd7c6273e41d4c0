// Names of the kernel's global counters (clv_stats, CLV_STAT_*), as
// `clovisd --dump` and the Status RPC show them.
#pragma once

#include <array>
#include <string_view>

#include "core/abi.hpp"

namespace clovis::agent {

inline constexpr std::array<const char*, CLV_STAT_MAX> kStatNames = {
    "packets",       "not_ip",        "fragment",     "malformed",       "flow_hit",     "new_flow",
    "local",         "not_steered",   "bypass",       "drop_rule",       "drop_no_link", "ttl_expired",
    "redirect_err",  "nat_exhausted", "reclassified", "migrated",        "return",       "icmp_err_in",
    "icmp_err_out",  "too_big",       "frag_unknown", "unparsed_drop",   "promoted",     "promote_full",
    "nat_port_busy", "ended",         "wrong_lan",    "ended_unreplied", "left",         "left_nat"};

// A counter added to abi.h without its name here would leave a null name
// (std::array fills the rest): Status would build a std::string from it.
inline constexpr bool every_stat_named() {
  for (const char* n : kStatNames)
    if (n == nullptr) return false;
  return true;
}
static_assert(every_stat_named(), "a CLV_STAT_* counter has no name in kStatNames");

// Names of the per-link drop reasons (clv_link_drops, CLV_LINK_DROP_*), as
// the Status RPC, clovisctl counters and the metrics show them.
inline constexpr std::array<const char*, CLV_LINK_DROP_REASONS> kLinkDropNames = {"too_big", "nat_refused",
                                                                                  "redirect_error", "link_down"};
static_assert(kLinkDropNames[CLV_LINK_DROP_REASONS - 1] != nullptr, "a CLV_LINK_DROP_* reason has no name");
// Why the program moved a flow: its link went down (clv_migrations), or its
// policy leaves the link (clv_moves, by CLV_MOVE_*).
inline constexpr const char* kMigrationReason = "link_down";
inline constexpr std::array<const char*, CLV_MOVE_REASONS> kMoveReasons = {"sla", "return", "budget", "reason3"};
// The names clovisctl status reads back (render/links.cpp), at their indices.
static_assert(std::string_view(kStatNames[CLV_STAT_NAT_EXHAUSTED]) == "nat_exhausted");
static_assert(std::string_view(kStatNames[CLV_STAT_PROMOTED]) == "promoted");
static_assert(std::string_view(kStatNames[CLV_STAT_PROMOTE_FULL]) == "promote_full");
static_assert(std::string_view(kStatNames[CLV_STAT_NAT_PORT_BUSY]) == "nat_port_busy");
static_assert(std::string_view(kStatNames[CLV_STAT_ENDED]) == "ended");
static_assert(std::string_view(kStatNames[CLV_STAT_WRONG_LAN]) == "wrong_lan");

}  // namespace clovis::agent
