// RouteKeeper: routes.json is written before routing goes in and settles
// to what is installed, a restarted agent counts the ledger as installed,
// and refused routing is retried on a host event or after kRetry only.
#include <filesystem>
#include <map>

#include <doctest/doctest.h>

#include "agent/agent_state.hpp"
#include "agent/routes.hpp"

using namespace clovis;

namespace {

class Host : public agent::HostNetwork {
 public:
  std::map<uint32_t, agent::RouteLink> routes;  // by table
  int installs = 0;
  bool refuse = false;
  core::Result<agent::InterfaceState> interface(const std::string& name) override {
    return core::fail(core::ErrorCode::kNotFound, "No such device", name, 19);
  }
  core::Status install_route_link(const agent::RouteLink& r) override {
    ++installs;
    if (refuse) return core::fail(core::ErrorCode::kIo, "Nexthop has invalid gateway", r.interface, 22);
    routes[r.table] = r;
    return core::Ok{};
  }
  core::Status remove_route_link(const agent::RouteLink& r) override {
    routes.erase(r.table);
    return core::Ok{};
  }
  core::Status set_neighbor(const core::IpAddr&, const std::array<uint8_t, 6>&, int) override { return core::Ok{}; }
  core::Result<core::CounterSample> interface_counters(const std::string& name) override {
    return core::fail(core::ErrorCode::kNotFound, "No such device", name, 19);
  }
};

// Two route-mode links, wan0 (slot 0) and wan1 (slot 1), usable over IPv4.
struct Links {
  core::CompiledRules c;
  agent::ResolvedRules r;
  Links() {
    for (int s = 0; s < 2; ++s) {
      c.link_info[s].name = "l" + std::to_string(s);
      c.link_info[s].interface = "wan" + std::to_string(s);
      clv_link& l = r.links[s];
      l.ifindex = static_cast<uint32_t>(4 + s);
      l.mark = static_cast<uint32_t>(0x100 + s);
      l.table = static_cast<uint32_t>(100 + s);
      l.flags = CLV_LINK_GW4;
      l.gw4 = 0x010200c0u + static_cast<uint32_t>(s << 24);
      r.state.up |= 1ull << s;
      r.state.v4 |= 1ull << s;
    }
    r.rules = &c;
  }
};

struct Dir {
  std::string path = "/tmp/clovis-unit-routes-" + std::to_string(::getpid());
  Dir() {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~Dir() { std::filesystem::remove_all(path); }
};

}  // namespace

TEST_CASE("the ledger lists routing before it goes in, and settles to what is installed") {
  Dir d;
  Host host;
  agent::RouteKeeper keeper(d.path, 10000, host);
  Links l;
  host.refuse = true;  // the routing is refused: recorded in the ledger all the same
  auto plan = keeper.place_before_flip(l.r);
  REQUIRE(plan);
  CHECK(plan->routes.size() == 2);
  CHECK(plan->routes[1].pref == 10001);
  CHECK(agent::load_route_ledger(d.path).size() == 2);
  CHECK(plan->placed.empty());
  CHECK(l.r.down_reason[0].rfind("policy routing refused: ", 0) == 0);
  CHECK(l.r.down_reason[0].find("Nexthop has invalid gateway") != std::string::npos);
  CHECK((l.r.state.up & 1) == 0);
  host.refuse = false;
  Links again;
  plan = keeper.place_before_flip(again.r);
  REQUIRE(plan);
  keeper.place_after_flip(again.r, *plan);
  keeper.commit(*plan);
  CHECK(keeper.routed() == 0b11);
  CHECK(host.routes.size() == 2);

  // A restart finds the ledger and counts it installed: the uninstall
  // removes it, and the ledger is then empty.
  agent::RouteKeeper restarted(d.path, 10000, host);
  CHECK(restarted.installed().size() == 2);
  REQUIRE(restarted.remove_installed());
  CHECK(host.routes.empty());
  CHECK(agent::load_route_ledger(d.path).empty());
}

TEST_CASE("a link whose gateway changed keeps its routing after the old is removed") {
  Dir d;
  Host host;
  agent::RouteKeeper keeper(d.path, 10000, host);
  Links l;
  auto plan = keeper.place_before_flip(l.r);
  REQUIRE(plan);
  keeper.place_after_flip(l.r, *plan);
  keeper.commit(*plan);
  Links moved;
  moved.r.links[0].gw4 += 1u << 24;  // same mark, table and preference: the kernel's key
  plan = keeper.place_before_flip(moved.r);
  REQUIRE(plan);
  keeper.place_after_flip(moved.r, *plan);
  keeper.commit(*plan);
  REQUIRE(host.routes.count(100));
  CHECK(host.routes[100].gw4 == plan->placed[0].gw4);
  CHECK(agent::load_route_ledger(d.path).size() == 2);  // settled: the old gateway's entry is gone
}

TEST_CASE("refused routing is retried on a host event, else only after kRetry") {
  Dir d;
  Host host;
  agent::RouteKeeper keeper(d.path, 10000, host);
  Links l;
  host.refuse = true;
  std::array<std::string, CLV_MAX_LINKS> reason{};
  keeper.sync(l.r, true, reason);
  CHECK(host.installs == 2);
  CHECK(keeper.routed() == 0);
  reason = l.r.down_reason;  // what the agent keeps as the host's reasons

  Links periodic;  // a periodic look right after: not tried again, down for the same reason
  keeper.sync(periodic.r, false, reason);
  CHECK(host.installs == 2);
  CHECK(periodic.r.down_reason[1] == reason[1]);
  CHECK((periodic.r.state.up & 2) == 0);

  host.refuse = false;
  Links event;  // the host changed: tried at once
  keeper.sync(event.r, true, reason);
  CHECK(host.installs == 4);
  CHECK(keeper.routed() == 0b11);

  Links gone;  // a link that cannot carry traffic loses its claim, and gets routing again when it can
  gone.r.down_reason[0] = "interface wan0 is down or has no carrier";
  keeper.sync(gone.r, true, {});
  CHECK(keeper.routed() == 0b10);
  Links back;
  keeper.sync(back.r, true, {});
  CHECK(host.installs == 5);
  CHECK(keeper.routed() == 0b11);
}
