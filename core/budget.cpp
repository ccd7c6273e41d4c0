#include "budget.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>

#include <fmt/format.h>

namespace clovis::core {

namespace {

struct Unit {
  std::string_view name;
  uint64_t factor;
};
constexpr std::array<Unit, 10> kUnits = {{{"B", 1},
                                          {"KiB", 1ull << 10},
                                          {"MiB", 1ull << 20},
                                          {"GiB", 1ull << 30},
                                          {"TiB", 1ull << 40},
                                          {"kB", 1000},
                                          {"KB", 1000},
                                          {"MB", 1000'000},
                                          {"GB", 1000'000'000},
                                          {"TB", 1000'000'000'000}}};

// Days since 1970-01-01 of a civil date, and back (H. Hinnant's algorithms,
// proleptic Gregorian): no time zone database, no locale, no libc state.
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

struct Civil {
  int64_t y;
  unsigned m, d;
};
Civil civil_from_days(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {static_cast<int64_t>(yoe) + era * 400 + (m <= 2), m, d};
}

unsigned days_in_month(int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

int64_t floor_div(int64_t a, int64_t b) {
  return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

// 00:00 UTC of the reset day of month `m` of `y` (the month's last day when
// it is shorter), in Unix seconds.
int64_t reset_of(int64_t y, unsigned m, uint32_t reset_day) {
  const unsigned d = std::min<unsigned>(reset_day, days_in_month(y, m));
  return days_from_civil(y, m, d) * 86400;
}

Civil next_month(Civil c) {
  return c.m == 12 ? Civil{c.y + 1, 1, 1} : Civil{c.y, c.m + 1, 1};
}
Civil prev_month(Civil c) {
  return c.m == 1 ? Civil{c.y - 1, 12, 1} : Civil{c.y, c.m - 1, 1};
}

}  // namespace

std::optional<uint64_t> parse_bytes(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  std::string_view num = text.substr(0, i), unit = text.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  uint64_t factor = unit.empty() ? 1 : 0;
  for (const Unit& u : kUnits)
    if (u.name == unit) factor = u.factor;
  double v = 0;
  auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), v);
  if (num.empty() || factor == 0 || ec != std::errc() || p != num.data() + num.size()) return std::nullopt;
  const double bytes = std::round(v * static_cast<double>(factor));
  if (!(bytes >= 1) || bytes >= 1.8e19) return std::nullopt;
  return static_cast<uint64_t>(bytes);
}

std::string format_bytes(uint64_t bytes) {
  static constexpr std::string_view kNames[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  size_t u = 0;
  while (v >= 1024 && u + 1 < std::size(kNames)) v /= 1024, ++u;
  if (u == 0) return fmt::format("{} B", bytes);
  const double r = std::round(v * 10) / 10;
  return r == std::floor(r) ? fmt::format("{:.0f} {}", r, kNames[u]) : fmt::format("{:.1f} {}", r, kNames[u]);
}

std::optional<uint64_t> parse_budget_text(std::string_view text, std::string* why) {
  constexpr std::string_view kPer = " per month";
  if (text.size() > kPer.size() && text.substr(text.size() - kPer.size()) == kPer) {
    text.remove_suffix(kPer.size());
  } else if (text.find(" per ") != std::string_view::npos) {
    *why = "budgets are per month";
    return std::nullopt;
  }
  auto b = parse_bytes(text);
  if (!b) *why = fmt::format("'{}' is not an amount of data", text);
  return b;
}

BudgetPeriod budget_period(int64_t now_unix_s, uint32_t reset_day) {
  reset_day = std::clamp<uint32_t>(reset_day, 1, 31);
  const Civil today = civil_from_days(floor_div(now_unix_s, 86400));
  // This month's reset, or the previous month's when it is still ahead.
  Civil start = today;
  if (now_unix_s < reset_of(today.y, today.m, reset_day)) start = prev_month(today);
  const Civil next = next_month(start);
  return {reset_of(start.y, start.m, reset_day), reset_of(next.y, next.m, reset_day)};
}

std::string utc_date(int64_t unix_s) {
  const Civil c = civil_from_days(floor_div(unix_s, 86400));
  return fmt::format("{:04}-{:02}-{:02}", c.y, c.m, c.d);
}

uint64_t count_budget(BudgetCount& c, const CounterSample& s, int64_t now_unix_s, uint32_t reset_day) {
  const BudgetPeriod p = budget_period(now_unix_s, reset_day);
  if (c.period_start != p.start) c.period_start = p.start, c.used = 0;
  uint64_t added = 0;
  if (c.last) {
    const CounterSample& l = *c.last;
    const bool reset =
        s.ifindex != l.ifindex || s.boot_id != l.boot_id || s.rx_bytes < l.rx_bytes || s.tx_bytes < l.tx_bytes;
    added = reset ? s.rx_bytes + s.tx_bytes : (s.rx_bytes - l.rx_bytes) + (s.tx_bytes - l.tx_bytes);
  }
  c.used += added;
  c.last = s;
  return added;
}

std::vector<clv_policy> budget_policies(const std::vector<clv_policy>& policies, const std::vector<bool>& metered_allow,
                                        uint64_t over_mask, std::vector<uint64_t>* leave) {
  std::vector<clv_policy> out = policies;
  if (leave) leave->assign(policies.size(), 0);
  if (!over_mask) return out;
  for (size_t i = 0; i < out.size(); ++i) {
    if (i < metered_allow.size() && metered_allow[i]) continue;
    clv_policy& p = out[i];
    for (int m = 0; m < p.n_members && m < CLV_POLICY_MAX_MEMBERS; ++m) {
      const int slot = p.members[m].link & (CLV_MAX_LINKS - 1);
      if (!(over_mask >> slot & 1)) continue;
      p.members[m].weight = 0;
      if (leave) (*leave)[i] |= 1ull << slot;
    }
  }
  return out;
}

}  // namespace clovis::core
