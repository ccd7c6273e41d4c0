// Metered links: a link's data budget per month (`budget:` in the mapping),
// the billing period a moment falls in, the bytes a link used in it from its
// interface's counters, and the policies as the kernel is to hold them while
// links are over budget. Pure: the clock and the counters are passed in, so
// the agent, the simulator and the tests run the same code.
//
// What is counted is what a carrier bills: every byte the WAN interface
// received and sent (the kernel's rx_bytes + tx_bytes of the interface, as
// `ip -s link` shows them), not only the flows clovis steered. Traffic clovis
// bypasses, the host's own, probes and other tools' traffic cost the same
// on the bill.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "abi.hpp"
#include "diagnostics.hpp"

namespace clovis::core {

// budget: {limit: 20GiB, per: month, reset-day: 1} or "20GiB per month".
// Periods start at 00:00 UTC on `reset_day` (1-31); in a month shorter than
// that, on its last day (reset-day: 31 resets on 30 April, 28 or 29
// February).
struct Budget {
  uint64_t limit_bytes = 0;
  uint32_t reset_day = 1;
  SourceLoc loc;
};

// "20GiB", "500MB", "2 MiB", "1000000" (bytes) -> bytes. Units: B, kB/KB,
// MB, GB, TB (powers of 1000, as carriers sell) and KiB, MiB, GiB, TiB
// (powers of 1024). nullopt when it is none of these or 0 or overflows.
std::optional<uint64_t> parse_bytes(std::string_view text);
// 20 GiB, 1.5 MiB, 512 B: how budgets read in tables and events.
std::string format_bytes(uint64_t bytes);
// "20GiB per month" -> limit; the compact form of budget: (reset day 1).
// nullopt with `why` set otherwise.
std::optional<uint64_t> parse_budget_text(std::string_view text, std::string* why);

// A billing period: [start, end) in Unix seconds.
struct BudgetPeriod {
  int64_t start = 0, end = 0;
};
// The period `now_unix_s` falls in, for periods that start on `reset_day`.
BudgetPeriod budget_period(int64_t now_unix_s, uint32_t reset_day);
// "2027-01-01" (UTC) for a Unix time in seconds.
std::string utc_date(int64_t unix_s);

// One reading of a link's interface counters.
struct CounterSample {
  uint64_t rx_bytes = 0, tx_bytes = 0;
  int ifindex = 0;      // a recreated interface has new counters and, mostly, a new index
  std::string boot_id;  // the host's boot (/proc/sys/kernel/random/boot_id): a reboot zeroes counters
};

// What is kept of one link's budget, on disk and in memory.
struct BudgetCount {
  int64_t period_start = 0;           // the period `used` counts in (Unix s); 0: never sampled
  uint64_t used = 0;                  // bytes in that period, both directions
  std::optional<CounterSample> last;  // the reading `used` counts up to
};

// Adds what the interface moved since `c.last` to `c.used`; starts a new
// period (used 0) when `now_unix_s` is past the counted one. The first
// reading of a link only sets the baseline: what the interface moved before
// clovis counted is not known to be of this period. When the counters went
// backwards, or the interface index or the boot changed, the counters were
// reset (a reboot, an interface made again): the new readings count whole,
// since they count from 0. Returns the bytes added.
uint64_t count_budget(BudgetCount& c, const CounterSample& s, int64_t now_unix_s, uint32_t reset_day);

inline bool over_budget(const BudgetCount& c, const Budget& b) {
  return c.used >= b.limit_bytes;
}

// Over-budget links leave the policies that do not allow metered links: the
// members on those links get weight 0 (as a last-resort SLA fallback does),
// so the kernel picks among the others, or the policy's last-resort when
// none is left. `metered_allow[i]` is policy i's `metered: allow` (rules that
// name a link directly are allowed: the link is all they asked for).
// `over_mask`: bit per link slot. `leave`, when given, gets per policy the
// slots that were taken out (a mask of link slots), for moving the flows
// live on them.
std::vector<clv_policy> budget_policies(const std::vector<clv_policy>& policies, const std::vector<bool>& metered_allow,
                                        uint64_t over_mask, std::vector<uint64_t>* leave = nullptr);

}  // namespace clovis::core
