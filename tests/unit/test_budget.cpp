// Metered links (#17 item 4): budget: and metered: in the mapping, the
// billing periods (UTC, month-end reset days, leap years), the counting of
// interface counters across resets, and over-budget links leaving policies.
#include <doctest/doctest.h>

#include "core/budget.hpp"
#include "core/classifier.hpp"
#include "helpers.hpp"

using namespace clovis;
using test::check;
using test::has;
using test::kLinks;

namespace {

const char* kMetered = R"(version: 1
links:
  - name: fiber
    interface: wan0
    gateway: 192.0.2.1
  - name: lte
    interface: wan1
    gateway: 198.51.100.1
    budget: @BUDGET@
policies:
  - name: web
    members: [fiber, lte]
  - name: urgent
    failover: [fiber, lte]
    metered: allow
rules:
  - {name: u, priority: 10, match: {dport: 22, proto: tcp}, policy: urgent}
  - {name: direct, priority: 20, match: {dport: 23, proto: tcp}, link: lte}
default: {policy: web}
)";

std::string metered(const std::string& budget) {
  std::string m = kMetered;
  m.replace(m.find("@BUDGET@"), 8, budget);
  return m;
}

// 00:00 UTC of a date, in Unix seconds (the test's own arithmetic, not the
// code's: days counted from known anchors).
constexpr int64_t kDay = 86400;
constexpr int64_t k2024_01_01 = 1704067200;  // date -u -d 2024-01-01 +%s
constexpr int64_t k2025_01_01 = 1735689600;
constexpr int64_t k2100_01_01 = 4102444800;

}  // namespace

TEST_CASE("budget: amounts of data parse in decimal and binary units") {
  CHECK(core::parse_bytes("20GiB") == 20ull << 30);
  CHECK(core::parse_bytes("2 MiB") == 2ull << 20);
  CHECK(core::parse_bytes("500MB") == 500'000'000ull);
  CHECK(core::parse_bytes("1.5GB") == 1'500'000'000ull);
  CHECK(core::parse_bytes("1000") == 1000ull);
  CHECK_FALSE(core::parse_bytes("20 gigs"));
  CHECK_FALSE(core::parse_bytes("0GiB"));
  CHECK_FALSE(core::parse_bytes("GiB"));
  CHECK_FALSE(core::parse_bytes("99999999TiB"));
  CHECK(core::format_bytes(20ull << 30) == "20 GiB");
  CHECK(core::format_bytes(1536ull << 10) == "1.5 MiB");
  CHECK(core::format_bytes(512) == "512 B");
}

TEST_CASE("budget: the compact and the long form load; errors say where and what to write") {
  auto c = check(metered("20GiB per month"));
  INFO(test::dump(c));
  REQUIRE(c.ok());
  const auto& l = c.mapping->links[1];
  REQUIRE(l.budget);
  CHECK(l.budget->limit_bytes == 20ull << 30);
  CHECK(l.budget->reset_day == 1);
  CHECK_FALSE(c.mapping->links[0].budget);
  CHECK_FALSE(c.mapping->policies[0].metered_allow);
  CHECK(c.mapping->policies[1].metered_allow);
  const int lte = c.compiled->link_slot("lte");
  REQUIRE(c.compiled->link_info[lte].budget);
  CHECK(c.compiled->policy_info[c.compiled->policy_index("urgent")].metered_allow);
  CHECK_FALSE(c.compiled->policy_info[c.compiled->policy_index("web")].metered_allow);

  auto m = check(metered("{limit: 2MiB, per: month, reset-day: 31}"));
  INFO(test::dump(m));
  REQUIRE(m.ok());
  CHECK(m.mapping->links[1].budget->limit_bytes == 2ull << 20);
  CHECK(m.mapping->links[1].budget->reset_day == 31);

  CHECK(has(check(metered("20 gigs per month")), 9, "is not an amount of data"));
  CHECK(has(check(metered("20GiB per week")), 9, "budgets are per month"));
  CHECK(has(check(metered("{limit: 1GiB, reset-day: 32}")), 9, ""));
  CHECK(has(check(metered("{limit: 1GiB, per: year}")), 9, "month"));
  CHECK(has(check(metered("{reset-day: 3}")), 9, "budget has no 'limit'"));
  CHECK(has(check(metered("{limit: 1GiB, reset_day: 3}")), 9, "did you mean 'reset-day'"));
  auto typo = check(std::string(kLinks) + "    metered: alow\n");
  CHECK(has(typo, 13, "alow"));
}

TEST_CASE("budget: validation warns of policies whose members are all metered, and of a needless allow") {
  auto all = check(R"(version: 1
links:
  - {name: lte1, interface: wan0, gateway: 192.0.2.1, budget: 1GiB per month}
  - {name: lte2, interface: wan1, gateway: 198.51.100.1, budget: 1GiB per month}
policies:
  - name: p
    members: [lte1, lte2]
default: {policy: p}
)");
  CHECK(all.ok());
  CHECK(has(all, 6, "every member of policy 'p' is metered", core::Severity::kWarning));
  auto needless = check(std::string(kLinks) + "    metered: allow\n");
  CHECK(has(needless, 13, "none of its members has a budget", core::Severity::kWarning));
  // Existing mappings keep their meaning: no budget, no warning.
  CHECK_FALSE(has(check(kLinks), 0, "metered", core::Severity::kWarning));
}

TEST_CASE("budget: periods start at 00:00 UTC on the reset day, or the month's last day") {
  // 2024-03-15 12:00 UTC, reset day 1: March.
  const int64_t mar15 = k2024_01_01 + (31 + 29 + 14) * kDay + 12 * 3600;
  auto p = core::budget_period(mar15, 1);
  CHECK(core::utc_date(p.start) == "2024-03-01");
  CHECK(core::utc_date(p.end) == "2024-04-01");
  // Reset day 20: still in the period that began 20 February.
  p = core::budget_period(mar15, 20);
  CHECK(core::utc_date(p.start) == "2024-02-20");
  CHECK(core::utc_date(p.end) == "2024-03-20");
  // Reset day 31 in a leap February: the 29th; in March the 31st.
  p = core::budget_period(mar15, 31);
  CHECK(core::utc_date(p.start) == "2024-02-29");
  CHECK(core::utc_date(p.end) == "2024-03-31");
  // And in a common year, the 28th.
  const int64_t feb28_2025 = k2025_01_01 + (31 + 27) * kDay;
  p = core::budget_period(feb28_2025, 31);
  CHECK(core::utc_date(p.start) == "2025-02-28");
  CHECK(core::utc_date(p.end) == "2025-03-31");
  CHECK(core::utc_date(core::budget_period(feb28_2025 - 1, 31).start) == "2025-01-31");
  // Reset day 30 across 30 April -> 30 May; 2100 is not a leap year.
  const int64_t feb_2100 = k2100_01_01 + (31 + 28) * kDay - 1;  // 2100-02-28 23:59:59
  p = core::budget_period(feb_2100, 29);
  CHECK(core::utc_date(p.start) == "2100-02-28");
  CHECK(core::utc_date(p.end) == "2100-03-29");
  // The second the period ends, the next begins; across the year's end too.
  const int64_t jan1 = k2025_01_01;
  CHECK(core::budget_period(jan1 - 1, 1).end == jan1);
  CHECK(core::budget_period(jan1, 1).start == jan1);
  CHECK(core::utc_date(core::budget_period(jan1 - 1, 1).start) == "2024-12-01");
}

TEST_CASE("budget: counting survives counter resets and starts again in a new period") {
  const int64_t t0 = k2024_01_01 + 10 * kDay;
  core::BudgetCount c;
  // The first reading is the baseline: what came before is not known to be
  // of this period.
  CHECK(core::count_budget(c, {1000, 500, 7, "boot-a"}, t0, 1) == 0);
  CHECK(c.used == 0);
  CHECK(core::count_budget(c, {1600, 900, 7, "boot-a"}, t0 + 60, 1) == 1000);
  CHECK(c.used == 1000);
  // The interface made again (new index): its counters start at 0.
  CHECK(core::count_budget(c, {300, 200, 9, "boot-a"}, t0 + 120, 1) == 500);
  // A reboot with counters that grew past the old ones is still a reset.
  CHECK(core::count_budget(c, {5000, 5000, 9, "boot-b"}, t0 + 180, 1) == 10000);
  // Counters that went backwards (a driver reset) count from 0.
  CHECK(core::count_budget(c, {10, 0, 9, "boot-b"}, t0 + 240, 1) == 10);
  CHECK(c.used == 11510);
  // A new period: used starts at 0 and counts what came since the last reading.
  const int64_t feb = k2024_01_01 + 31 * kDay + 5;
  CHECK(core::count_budget(c, {110, 0, 9, "boot-b"}, feb, 1) == 100);
  CHECK(c.used == 100);
  CHECK(c.period_start == k2024_01_01 + 31 * kDay);
  CHECK(core::over_budget(c, {100, 1, {}}));
  CHECK_FALSE(core::over_budget(c, {101, 1, {}}));
}

TEST_CASE("budget: over-budget links leave the policies that do not allow them") {
  auto c = check(metered("2MiB per month"));
  REQUIRE(c.ok());
  const auto& rc = *c.compiled;
  const int lte = rc.link_slot("lte"), fiber = rc.link_slot("fiber");
  std::vector<bool> allow;
  for (const auto& pi : rc.policy_info) allow.push_back(pi.metered_allow);
  std::vector<uint64_t> leave;
  // Nobody over budget: the policies as compiled.
  auto same = core::budget_policies(rc.policies, allow, 0, &leave);
  CHECK(core::same_policies(same, rc.policies));
  CHECK(leave == std::vector<uint64_t>(rc.policies.size(), 0));
  auto out = core::budget_policies(rc.policies, allow, 1ull << lte, &leave);
  REQUIRE(out.size() == rc.policies.size());
  auto weight_of = [&](const std::string& policy, int slot) {
    const clv_policy& p = out[static_cast<size_t>(rc.policy_index(policy))];
    for (int i = 0; i < p.n_members; ++i)
      if (p.members[i].link == slot) return static_cast<int>(p.members[i].weight);
    return -1;
  };
  CHECK(weight_of("web", lte) == 0);
  CHECK(weight_of("web", fiber) == 1);
  CHECK(weight_of("urgent", lte) == 1);  // metered: allow
  CHECK(leave[static_cast<size_t>(rc.policy_index("web"))] == 1ull << lte);
  CHECK(leave[static_cast<size_t>(rc.policy_index("urgent"))] == 0);
  // The rule that names lte directly keeps it.
  for (size_t i = 0; i < rc.policy_info.size(); ++i)
    if (rc.policy_info[i].implicit) CHECK(leave[i] == 0);
}

TEST_CASE("budget: simulate says a member is skipped because its link is over budget") {
  auto c = check(metered("2MiB per month"));
  REQUIRE(c.ok());
  const auto& rc = *c.compiled;
  const core::Classifier cls(rc);
  core::FlowQuery fq;
  fq.tuple.family = CLV_AF_INET;
  fq.tuple.src[0] = core::IpAddr::parse("10.0.0.5")->words()[0];
  fq.tuple.dst[0] = core::IpAddr::parse("203.0.113.9")->words()[0];
  fq.tuple.proto = 6;
  fq.tuple.dport = 443;  // web: members [fiber, lte] in one tier
  const uint64_t over = 1ull << rc.link_slot("lte");
  for (uint16_t sport = 1000; sport < 1064; ++sport) {
    fq.tuple.sport = sport;
    const auto d = cls.decide(fq, rc.all_up_state(), core::LinkQualities{}, {}, over);
    REQUIRE(d.verdict == core::Verdict::kSteer);
    CHECK(rc.link_info[d.link].name == "fiber");
    REQUIRE(d.members.size() == 2);
    CHECK(d.members[1].note == "skipped: over budget (metered: avoid)");
  }
  fq.tuple.dport = 22;  // urgent: metered: allow, lte first
  const auto d = cls.decide(fq, rc.all_up_state(), core::LinkQualities{}, {}, over);
  CHECK(rc.link_info[d.link].name == "fiber");  // failover: [fiber, lte]: fiber is tier 1
  CHECK(d.members[1].note.find("over budget") == std::string::npos);
}
