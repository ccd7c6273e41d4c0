// Confirmations: the deadline is on disk before the apply runs, a second
// timed apply keeps the first one's fallback, a failed apply leaves
// confirm.json as it was, and only an overdue confirmation is due.
#include <filesystem>

#include <doctest/doctest.h>

#include "agent/confirm.hpp"

using namespace clovis;

namespace {

struct Dir {
  std::string path = "/tmp/clovis-unit-confirm-" + std::to_string(::getpid());
  Dir() {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~Dir() { std::filesystem::remove_all(path); }
};

agent::PendingConfirm running(uint32_t generation) {
  return {0, 0, generation, "api", "text of generation " + std::to_string(generation)};
}

}  // namespace

TEST_CASE("a timed apply is on disk before it runs, and a second one keeps the first one's fallback") {
  Dir d;
  agent::Confirmations c(d.path);
  auto first = c.arm(30, running(3), 1000);
  REQUIRE(first);
  CHECK(first->deadline_unix_ms == 31000);
  CHECK(first->generation == 4);
  auto on_disk = agent::load_pending_confirm(d.path);
  REQUIRE(on_disk);
  CHECK(on_disk->deadline_unix_ms == 31000);
  CHECK_FALSE(c.pending());  // not pending until the apply ran
  std::vector<std::string> notes;
  c.applied(std::move(*first), 4, &notes);
  CHECK(notes.empty());
  CHECK(c.deadline_unix_ms() == 31000);

  auto second = c.arm(10, running(4), 2000);
  REQUIRE(second);
  CHECK(second->fallback_generation == 3);
  CHECK(second->fallback_text == "text of generation 3");
  c.applied(std::move(*second), 5, &notes);
  REQUIRE(notes.size() == 1);
  CHECK(notes[0] ==
        "replaces generation 4, which was waiting for confirmation; unconfirmed, generation 3's mapping comes back");

  CHECK_FALSE(c.due(11999));
  auto due = c.due(12000);
  REQUIRE(due);
  CHECK(due->generation == 5);

  // A restarted agent still reverts at the deadline.
  agent::Confirmations restarted(d.path);
  CHECK(restarted.deadline_unix_ms() == 12000);
  CHECK(restarted.confirm());
  CHECK_FALSE(restarted.confirm());
  CHECK_FALSE(agent::load_pending_confirm(d.path));
}

TEST_CASE("a failed timed apply leaves the confirmation as it was; an untimed one drops it with a note") {
  Dir d;
  agent::Confirmations c(d.path);
  std::vector<std::string> notes;
  auto armed = c.arm(30, running(1), 0);
  REQUIRE(armed);
  c.applied(std::move(*armed), 2, &notes);
  auto again = c.arm(60, running(2), 5000);
  REQUIRE(again);
  CHECK(agent::load_pending_confirm(d.path)->deadline_unix_ms == 65000);
  c.disarm();  // the apply failed
  CHECK(agent::load_pending_confirm(d.path)->deadline_unix_ms == 30000);
  CHECK(c.deadline_unix_ms() == 30000);

  c.applied(std::nullopt, 3, &notes);
  REQUIRE(notes.size() == 1);
  CHECK(notes[0] == "generation 2 was waiting for confirmation; this apply replaces it and stays without one");
  CHECK(c.deadline_unix_ms() == 0);
  CHECK_FALSE(agent::load_pending_confirm(d.path));
}
