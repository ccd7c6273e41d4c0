// The agent after an apply: a timed apply on disk before it runs, a full
// disk, the link-change queue, auto-rollback, and the apply hook's causes.
#include <filesystem>
#include <tuple>

#include <doctest/doctest.h>

#include "agent/agent.hpp"
#include "agent_env.hpp"
#include "helpers.hpp"

using namespace clovis;
using namespace clovis::test::agent_env;

TEST_CASE("an unconfirmed mapping is on disk with its deadline before the kernel runs it") {
  Env e;
  REQUIRE(e.a->apply(kMapping, "wan.yaml"));
  const std::string next = std::string(kMapping) + "# next\n";
  bool checked = false;
  e.dp.on_apply = [&] {
    auto p = agent::load_pending_confirm(e.dir);
    REQUIRE(p);
    CHECK(p->generation == 2);
    CHECK(p->fallback_generation == 1);
    CHECK(p->fallback_text == kMapping);
    CHECK(p->deadline_unix_ms > agent::now_unix_ms());
    CHECK(core::read_file(e.dir + "/mapping.yaml").value() == next);
    checked = true;
  };
  REQUIRE(e.a->submit(next, "api", agent::ApplyOptions{false, 30}));
  CHECK(checked);
  e.dp.on_apply = nullptr;
  // Killed now, the restarted agent still reverts at the deadline.
  auto restarted = e.make();
  REQUIRE(restarted->restore());
  const int64_t deadline = restarted->confirm_deadline_unix_ms();
  CHECK(deadline > 0);
  auto reverted = restarted->check_confirm(deadline + 1);
  REQUIRE(reverted);
  REQUIRE(*reverted);
  CHECK(restarted->running_mapping().text == kMapping);
}

TEST_CASE("a full disk refuses the apply plainly and changes nothing") {
  Env e;
  REQUIRE(e.a->apply(kMapping, "wan.yaml"));
  const auto applies = e.dp.applied.size();
  // /dev/full answers every write with ENOSPC, as a full state partition does.
  std::filesystem::create_symlink("/dev/full", e.dir + "/mapping.yaml.tmp");
  auto r = e.a->submit(std::string(kMapping) + "# bigger\n", "api", {});
  REQUIRE_FALSE(r);
  CHECK(r.error().kind == agent::ApplyFailure::kHost);
  CHECK(r.error().message().find("No space left on device") != std::string::npos);
  CHECK(r.error().message().find("nothing was applied") != std::string::npos);
  CHECK(e.dp.applied.size() == applies);
  CHECK(e.a->generation() == 1);
  CHECK(core::read_file(e.dir + "/mapping.yaml").value() == kMapping);
  // Confirm-applies too: the deadline can't be saved, so nothing runs.
  std::filesystem::create_symlink("/dev/full", e.dir + "/confirm.json.tmp");
  auto c = e.a->submit(std::string(kMapping) + "# bigger\n", "api", agent::ApplyOptions{false, 30});
  REQUIRE_FALSE(c);
  CHECK(c.error().message().find("confirmation deadline") != std::string::npos);
  CHECK(e.dp.applied.size() == applies);
  CHECK(e.a->confirm_deadline_unix_ms() == 0);
}

TEST_CASE("the agent's link changes: the newest 256, numbered, and a reader waits for the next") {
  agent::LinkChanges q;
  uint64_t seq = 1;
  CHECK(q.list(&seq).empty());
  CHECK(seq == 0);
  for (int i = 0; i < 300; ++i) {
    agent::LinkChange c;
    c.time_unix_ms = i;
    q.push(c);
  }
  auto all = q.list(&seq);
  CHECK(seq == 300);
  REQUIRE(all.size() == agent::LinkChanges::kMax);
  CHECK(all.front().time_unix_ms == 300 - static_cast<int64_t>(agent::LinkChanges::kMax));  // the oldest went
  CHECK(all.back().time_unix_ms == 299);
  CHECK_FALSE(q.wait(seq, std::chrono::milliseconds(10)));  // nothing newer
  CHECK(q.wait(seq - 1, std::chrono::milliseconds(0)));     // newer than that: at once
}

namespace {

// A mapping whose only link's interface does not exist: applied, it leaves
// the host no usable link.
const char* kNoLinkMapping = R"(version: 1
auto-rollback: {after: 5s}
links:
  - {name: gone, interface: nosuch0, gateway: 192.0.2.1, mode: route}
default: {link: gone}
)";

}  // namespace

TEST_CASE("auto-rollback: a mapping that leaves no usable link for its 'after' is rolled back to the one before") {
  Env e;
  REQUIRE(e.a->apply(kMapping, "wan.yaml"));
  REQUIRE(e.dp.state.up != 0);
  auto r = e.a->submit(kNoLinkMapping, "/etc/clovis/wan.yaml", {});
  REQUIRE(r);
  CHECK(e.dp.state.up == 0);
  CHECK(e.a->auto_rollback_after_ms() == 5000);
  CHECK(e.a->confirm_deadline_unix_ms() == 0);  // no operator's deadline
  const int64_t t0 = agent::now_unix_ms();
  CHECK_FALSE(e.a->check_confirm(t0 + 4000));  // not yet: 4 s without a link
  auto rolled = e.a->check_confirm(t0 + 5500);
  REQUIRE(rolled);
  REQUIRE(*rolled);
  CHECK(e.a->running_mapping().text == kMapping);
  CHECK(e.a->running_mapping().source.starts_with("rollback to generation 1 (wan.yaml): auto-rollback: generation 2"));
  CHECK(e.a->generation() == 3);
  CHECK(e.a->auto_rolled_back() == 2);
  CHECK(e.dp.state.up != 0);
  CHECK(e.a->auto_rollback_after_ms() == 0);
  auto events = e.a->events();
  REQUIRE_FALSE(events.empty());
  CHECK(events.back().source == agent::LinkChange::Source::kConfig);
  CHECK(events.back().what == "rolled back");
  CHECK(events.back().reason.find("no usable link for 5 s") != std::string::npos);
  // The rolled-back-to mapping is not guarded again, and nothing more happens.
  CHECK_FALSE(e.a->check_confirm(t0 + 60000));
}

TEST_CASE("auto-rollback: a usable link for 'after' keeps the mapping and ends the guard; none before: not armed") {
  Env e;
  // The first mapping: nothing to roll back to.
  auto first = e.a->submit(std::string(kMapping) + "auto-rollback: {after: 2s}\n", "wan.yaml", {});
  REQUIRE(first);
  CHECK(e.a->auto_rollback_after_ms() == 0);
  CHECK(first->report.notes.back().find("none to roll back to") != std::string::npos);
  auto second = e.a->submit(std::string(kMapping) + "auto-rollback: {after: 2s}\n# 2\n", "wan.yaml", {});
  REQUIRE(second);
  CHECK(e.a->auto_rollback_after_ms() == 2000);
  const int64_t t0 = agent::now_unix_ms();
  CHECK_FALSE(e.a->check_confirm(t0 + 2500));  // a link was usable for 2 s: kept
  CHECK(e.a->auto_rollback_after_ms() == 0);
  CHECK(e.a->generation() == 2);
  CHECK(e.a->events().back().what == "kept");
  // Every link lost later (an outage, not the mapping): no rollback.
  e.dp.state.up = 0;
  CHECK_FALSE(e.a->check_confirm(t0 + 60000));
  CHECK(e.a->generation() == 2);
}

TEST_CASE("auto-rollback: the guard survives a restart, and is not armed when the mapping before had no link either") {
  Env e;
  REQUIRE(e.a->apply(kMapping, "wan.yaml"));
  REQUIRE(e.a->submit(kNoLinkMapping, "file", {}));
  auto restarted = e.make();
  REQUIRE(restarted->restore());
  CHECK(restarted->auto_rollback_after_ms() == 5000);
  const int64_t t0 = agent::now_unix_ms();
  CHECK_FALSE(restarted->check_confirm(t0));  // its clock starts again
  auto rolled = restarted->check_confirm(t0 + 5000);
  REQUIRE(rolled);
  CHECK(restarted->running_mapping().text == kMapping);

  Env none;
  REQUIRE(none.a->apply(kNoLinkMapping, "file"));  // no link usable
  auto again = none.a->submit(std::string(kNoLinkMapping) + "# again\n", "file", {});
  REQUIRE(again);
  CHECK(none.a->auto_rollback_after_ms() == 0);
  CHECK(again->report.notes.back().find("no link was usable under generation 1 either") != std::string::npos);
}

TEST_CASE("the apply hook is told what started each apply (clovis_applies_total counts by it)") {
  Env e;
  std::vector<std::tuple<agent::ApplyCause, std::string, bool>> seen;
  e.a->set_apply_hook([&](agent::ApplyCause cause, const std::string& source, const agent::ApplyResult& r,
                          const core::CompiledRules*) { seen.emplace_back(cause, source, r.ok()); });
  using C = agent::ApplyCause;
  REQUIRE(e.a->submit(kMapping, "wan.yaml", {}));
  REQUIRE_FALSE(e.a->submit("version: 1\nlinks: []\n", "api", {}));
  REQUIRE(e.a->submit(std::string(kMapping) + "# 2\n", "api", agent::ApplyOptions{false, 30}));
  REQUIRE(e.a->check_confirm(e.a->confirm_deadline_unix_ms() + 1));
  REQUIRE(e.a->rollback(2, false, 0));
  e.host.ifs["wan0"].ifindex = 40;  // re-created with another index
  REQUIRE(e.a->refresh_link_state(true));
  e.a->set_apply_hook({});
  REQUIRE(seen.size() == 6);
  CHECK(seen[0] == std::tuple{C::kSubmit, std::string("wan.yaml"), true});
  CHECK(seen[1] == std::tuple{C::kSubmit, std::string("api"), false});
  CHECK(seen[2] == std::tuple{C::kSubmit, std::string("api"), true});
  CHECK(std::get<0>(seen[3]) == C::kRevert);
  CHECK(std::get<1>(seen[3]).starts_with("revert to generation 1"));
  CHECK(std::get<0>(seen[4]) == C::kRollback);
  CHECK(std::get<1>(seen[4]).starts_with("rollback to generation 2 (api)"));
  CHECK(seen[5] == std::tuple{C::kReapply, std::string("interface change"), true});
}
