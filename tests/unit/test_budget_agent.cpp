// Metered links in the agent (#17 item 4): the budget counted from the
// interface's counters, the kernel's policies written again when a link
// crosses it, the count kept across restarts (budget.json) and a corrupt
// budget.json set aside.
#include <ctime>
#include <filesystem>
#include <fstream>

#include <doctest/doctest.h>

#include "agent/agent.hpp"
#include "fakes.hpp"

using namespace clovis;

namespace {

const char* kMapping = R"(version: 1
links:
  - {name: fiber, interface: wan0, gateway: 192.0.2.1}
  - {name: lte, interface: wan1, gateway: 198.51.100.1, budget: 1MB per month}
policies:
  - {name: web, failover: [lte, fiber]}
  - {name: urgent, failover: [lte, fiber], metered: allow}
default: {policy: web}
)";

// The agent reads the clock itself when it applies and shows a link: the
// samples are taken in the current period, a few seconds into it.
const core::BudgetPeriod kPeriod = core::budget_period(std::time(nullptr), 1);
const int64_t kT0 = kPeriod.start + 5;

struct Site {
  test::TempDir dir{"budget-agent"};
  test::FakeDataplane dp;
  test::FakeHost host;
  Site() {
    host.set_interface("wan0", {4, true, core::IpAddr::parse("192.0.2.2"), std::nullopt});
    host.set_interface("wan1", {5, true, core::IpAddr::parse("198.51.100.2"), std::nullopt});
    counters(0, 0);
  }
  void counters(uint64_t rx, uint64_t tx, int ifindex = 5, const std::string& boot = "boot-a") {
    host.set_counters("wan1", {rx, tx, ifindex, boot});
  }
  std::unique_ptr<agent::Agent> start() {
    auto a = std::make_unique<agent::Agent>(agent::AgentOptions{dir.path + "/state", 10000}, dp, host);
    REQUIRE(a->apply(kMapping, "wan.yaml"));
    return a;
  }
  // lte's weight in `policy` as the kernel holds it.
  int kernel_weight(const agent::Agent& a, const std::string& policy) {
    const auto r = a.running();
    const clv_policy p = dp.policies()[static_cast<size_t>(r->policy_index(policy))];
    for (int i = 0; i < p.n_members; ++i)
      if (p.members[i].link == r->link_slot("lte")) return p.members[i].weight;
    return -1;
  }
  std::optional<agent::BudgetStatus> lte(agent::Agent& a) {
    auto links = a.links();
    REQUIRE(links);
    for (const auto& l : *links)
      if (l.name == "lte") return l.budget;
    return std::nullopt;
  }
};

}  // namespace

TEST_CASE("budget agent: crossing the budget takes the link out of policies, in the kernel, with an event") {
  Site s;
  auto a = s.start();
  REQUIRE(a->sample_budgets(kT0));  // the baseline
  CHECK(s.kernel_weight(*a, "web") == 1);
  const int applies = s.dp.applies();
  s.counters(400'000, 500'000);  // 0.9 MB
  REQUIRE(a->sample_budgets(kT0 + 1));
  CHECK(s.dp.applies() == applies);  // nothing to write
  REQUIRE(s.lte(*a));
  CHECK(s.lte(*a)->used_bytes == 900'000);
  CHECK_FALSE(s.lte(*a)->over);
  s.counters(500'000, 500'000);  // 1 MB: the budget
  REQUIRE(a->sample_budgets(kT0 + 2));
  CHECK(s.dp.applies() == applies + 1);
  CHECK(s.kernel_weight(*a, "web") == 0);
  CHECK(s.kernel_weight(*a, "urgent") == 1);  // metered: allow
  CHECK(s.lte(*a)->over);
  const auto leave = a->budget_leave();
  CHECK(leave[static_cast<size_t>(a->running()->policy_index("web"))] == 1ull << a->running()->link_slot("lte"));
  auto ev = a->events();
  REQUIRE_FALSE(ev.empty());
  CHECK(ev.back().link == "lte");
  CHECK(ev.back().source == agent::LinkChange::Source::kSteering);
  CHECK(ev.back().what == "over budget");
  CHECK(ev.back().reason == "976.6 KiB of 976.6 KiB used, resets on " + core::utc_date(kPeriod.end));
  // The next period: back in the policy.
  s.counters(500'100, 500'000);
  REQUIRE(a->sample_budgets(kPeriod.end + 5));
  CHECK(s.kernel_weight(*a, "web") == 1);
  CHECK(a->events().back().what == "within budget");
  CHECK(a->events().back().reason.rfind("100 B of 976.6 KiB used", 0) == 0);
}

TEST_CASE("budget agent: the count survives a restart of clovisd and a reboot of the host") {
  Site s;
  {
    auto a = s.start();
    REQUIRE(a->sample_budgets(kT0));
    s.counters(300'000, 300'000);
    REQUIRE(a->sample_budgets(kT0 + 1));
    // Not written yet (at most every kSaveEvery)...
    s.counters(350'000, 300'000);
    REQUIRE(a->sample_budgets(kT0 + 1 + agent::BudgetMeter::kSaveEvery));  // ...now it is
  }
  {
    // A restarted clovisd: it counts on from the saved reading.
    s.counters(400'000, 300'000);
    auto a = s.start();
    REQUIRE(a->sample_budgets(kT0 + 30));
    CHECK(s.lte(*a)->used_bytes == 700'000);
    // A reboot: new boot id, counters from 0; they count whole.
    s.counters(200'000, 100'000, 5, "boot-b");
    REQUIRE(a->sample_budgets(kT0 + 60));
    CHECK(s.lte(*a)->used_bytes == 1'000'000);
    CHECK(s.lte(*a)->over);
  }
  // Over budget at start: the first apply already leaves the link out.
  auto a = s.start();
  CHECK(s.kernel_weight(*a, "web") == 0);
  CHECK(s.lte(*a)->over);
}

TEST_CASE("budget agent: a corrupt budget.json is set aside and the links count again") {
  Site s;
  std::filesystem::create_directories(s.dir.path + "/state");
  std::ofstream(s.dir.path + "/state/budget.json") << R"({"links": {"lte": {"period_start": "x"}}})";
  auto a = s.start();
  REQUIRE(a->sample_budgets(kT0));
  CHECK(s.lte(*a)->used_bytes == 0);
  bool set_aside = false;
  for (const auto& e : std::filesystem::directory_iterator(s.dir.path + "/state"))
    set_aside |= e.path().filename().string().rfind("budget.json.corrupt-", 0) == 0;
  CHECK(set_aside);
  s.counters(1000, 0);
  REQUIRE(a->sample_budgets(kT0 + 1));
  CHECK(s.lte(*a)->used_bytes == 1000);
}
