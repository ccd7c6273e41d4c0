// Following the config file: the pure parts (debounce, content hash, the
// auto-rollback judgement, the mapping's auto-rollback key) and the watcher
// on a real directory with real inotify: a Kubernetes ConfigMap swap, an
// editor's write-and-rename, a touch that changes nothing, a swapped
// symlinked directory.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <doctest/doctest.h>

#include "agent/config_follow.hpp"
#include "core/auto_rollback.hpp"
#include "core/loader.hpp"

using namespace clovis;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

using Clock = agent::ConfigFollower::Clock;

struct Dir {
  std::string path = "/tmp/clovis-unit-follow-" + std::to_string(::getpid());
  Dir() {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~Dir() { fs::remove_all(path); }
};

void write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

// The kubelet's atomic writer: a new timestamped directory with the files,
// a `..data_tmp` symlink to it renamed over `..data`, the old directory removed.
void configmap_swap(const std::string& dir, const std::string& stamp, const std::string& text) {
  const std::string old = fs::exists(dir + "/..data") ? fs::read_symlink(dir + "/..data").string() : "";
  fs::create_directory(dir + "/" + stamp);
  write(dir + "/" + stamp + "/wan.yaml", text);
  fs::create_symlink(stamp, dir + "/..data_tmp");
  fs::rename(dir + "/..data_tmp", dir + "/..data");
  if (!fs::is_symlink(dir + "/wan.yaml")) fs::create_symlink("..data/wan.yaml", dir + "/wan.yaml");
  if (!old.empty()) fs::remove_all(dir + "/" + old);
}

// Waits (up to 2 s) for inotify to report something, then drains it.
bool wait_events(agent::ConfigFollower& f, Clock::time_point now) {
  for (int i = 0; i < 200; ++i) {
    auto before = f.timeout_ms(now);
    f.drain(now);
    if (f.timeout_ms(now) >= 0 && before < 0) return true;
    usleep(10000);
  }
  return false;
}

std::optional<std::string> settled(agent::ConfigFollower& f, Clock::time_point now) {
  auto c = f.take(now + 10s);
  REQUIRE(c);
  if (!*c) return std::nullopt;
  return (*c)->text;
}

}  // namespace

TEST_CASE("debounce: one change per burst, due after a quiet time or at most after the first event") {
  agent::Debounce d(300ms, 3s);
  const auto t0 = Clock::now();
  CHECK_FALSE(d.due(t0));
  CHECK(d.timeout_ms(t0) == -1);
  d.note(t0);
  d.note(t0 + 100ms);
  CHECK_FALSE(d.due(t0 + 350ms));  // 250 ms after the last
  CHECK(d.timeout_ms(t0 + 350ms) == 51);
  CHECK(d.due(t0 + 400ms));
  d.clear();
  // A directory that never goes quiet still gets its change applied.
  for (int i = 0; i < 40; ++i) d.note(t0 + i * 100ms);
  CHECK(d.due(t0 + 3s));
  CHECK(d.timeout_ms(t0 + 3s) == 0);
}

TEST_CASE("content hash: the same content the same hash, any other content another") {
  CHECK(agent::content_hash("links: []\n") == agent::content_hash("links: []\n"));
  CHECK(agent::content_hash("links: []\n") != agent::content_hash("links: [] \n"));
  CHECK(agent::content_hash("").size() == 16);
  CHECK(agent::content_hash("") == "cbf29ce484222325");  // FNV-1a 64's offset basis
}

TEST_CASE("auto-rollback guard: a state that lasts 'after' decides, a change of state starts over") {
  core::AutoRollbackGuard g(5000);
  using V = core::AutoRollbackGuard::Verdict;
  CHECK(g.step(0, false) == V::kWait);
  CHECK(g.step(4000, false) == V::kWait);
  CHECK(g.step(4500, true) == V::kWait);  // a link came up: the clock starts again
  CHECK(g.step(8000, false) == V::kWait);
  CHECK(g.step(12999, false) == V::kWait);
  CHECK(g.step(13000, false) == V::kRollBack);
  core::AutoRollbackGuard k(5000);
  CHECK(k.step(100, true) == V::kWait);
  CHECK(k.step(5100, true) == V::kKeep);
}

TEST_CASE("the mapping's auto-rollback: a duration from 1s to 1h, alone means 30 s, errors located") {
  const std::string links = "links:\n  - {name: a, interface: eth0, gateway: 192.0.2.1}\n";
  auto r = core::load_mapping("version: 1\nauto-rollback: {after: 45s}\n" + links);
  REQUIRE(r);
  REQUIRE(r->auto_rollback);
  CHECK(r->auto_rollback->after_ms == 45000);
  auto bare = core::load_mapping("version: 1\nauto-rollback:\n" + links);
  REQUIRE(bare);
  CHECK(bare->auto_rollback->after_ms == 30000);
  CHECK_FALSE(core::load_mapping("version: 1\n" + links)->auto_rollback);
  auto bad = core::load_mapping("version: 1\nauto-rollback: {after: 100ms}\n" + links);
  REQUIRE_FALSE(bad);
  REQUIRE_FALSE(bad.error().items().empty());
  CHECK(bad.error().items()[0].loc.line == 2);
  CHECK(bad.error().items()[0].message.find("out of range") != std::string::npos);
  auto typo = core::load_mapping("version: 1\nauto-rollback: {afterr: 10s}\n" + links);
  REQUIRE_FALSE(typo);
}

TEST_CASE("following: a ConfigMap's ..data swap is seen, a touch or the same content applies nothing") {
  Dir d;
  configmap_swap(d.path, "..2026_12_07_20_00_00.000000001", "first\n");
  auto f = agent::ConfigFollower::open(d.path + "/wan.yaml");
  REQUIRE(f);
  (*f)->seen(agent::content_hash("first\n"));
  const auto now = Clock::now();
  configmap_swap(d.path, "..2026_12_07_20_01_00.000000002", "second\n");
  REQUIRE(wait_events(**f, now));
  CHECK_FALSE((*f)->take(now)->has_value());  // not settled yet
  CHECK(settled(**f, now) == "second\n");
  // The kubelet swapping in the same content again (a resync), or a touch.
  configmap_swap(d.path, "..2026_12_07_20_02_00.000000003", "second\n");
  REQUIRE(wait_events(**f, now));
  CHECK_FALSE(settled(**f, now));
  // SIGHUP applies it anyway.
  auto forced = (*f)->take(now, true);
  REQUIRE(forced);
  REQUIRE(*forced);
  CHECK((*forced)->text == "second\n");
}

TEST_CASE("following: an editor's write-and-rename and a write in place are seen; a removed file is an error") {
  Dir d;
  const std::string path = d.path + "/wan.yaml";
  write(path, "one\n");
  auto f = agent::ConfigFollower::open(path);
  REQUIRE(f);
  (*f)->seen(agent::content_hash("one\n"));
  const auto now = Clock::now();
  write(path + ".swp", "two\n");
  fs::rename(path + ".swp", path);
  REQUIRE(wait_events(**f, now));
  CHECK(settled(**f, now) == "two\n");
  write(path, "three\n");
  REQUIRE(wait_events(**f, now));
  CHECK(settled(**f, now) == "three\n");
  fs::remove(path);
  REQUIRE(wait_events(**f, now));
  auto gone = (*f)->take(now + 10s);
  REQUIRE_FALSE(gone);
  CHECK(gone.error().what().find("wan.yaml") != std::string::npos);
  // Back with the content last applied: applied again, for its outcome
  // replaces "unreadable"; after that the same content is nothing to do.
  write(path, "three\n");
  REQUIRE(wait_events(**f, now));
  CHECK(settled(**f, now) == "three\n");
  write(path, "three\n");
  REQUIRE(wait_events(**f, now));
  CHECK_FALSE(settled(**f, now));
}

TEST_CASE("following: a file in a directory reached through a symlink that is swapped") {
  Dir d;
  fs::create_directories(d.path + "/v1");
  fs::create_directories(d.path + "/v2");
  write(d.path + "/v1/wan.yaml", "v1\n");
  write(d.path + "/v2/wan.yaml", "v2\n");
  fs::create_directory_symlink("v1", d.path + "/current");
  auto f = agent::ConfigFollower::open(d.path + "/current/wan.yaml");
  REQUIRE(f);
  (*f)->seen(agent::content_hash("v1\n"));
  const auto now = Clock::now();
  fs::create_directory_symlink("v2", d.path + "/current.tmp");
  fs::rename(d.path + "/current.tmp", d.path + "/current");
  REQUIRE(wait_events(**f, now));
  CHECK(settled(**f, now) == "v2\n");
  // The watch follows the new target: a change inside v2 is seen.
  write(d.path + "/v2/wan.yaml", "v2 edited\n");
  REQUIRE(wait_events(**f, now));
  CHECK(settled(**f, now) == "v2 edited\n");
}

TEST_CASE("following: a directory that does not exist is refused with what to do") {
  auto f = agent::ConfigFollower::open("/nonexistent-clovis-dir/wan.yaml");
  REQUIRE_FALSE(f);
  CHECK(f.error().what().find("/nonexistent-clovis-dir") != std::string::npos);
}
