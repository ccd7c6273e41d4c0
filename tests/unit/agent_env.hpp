// The agent over fakes of its ports, for the agent's unit tests
// (test_agent.cpp: apply, slots, restore; test_agent_confirm.cpp: what
// happens after an apply: confirmation, auto-rollback, the apply hook).
#pragma once

#include <unistd.h>
#include <filesystem>
#include <memory>
#include <string>

#include "agent/agent.hpp"
#include "fakes.hpp"

namespace clovis::test::agent_env {

class FakeDataplane : public agent::Dataplane {
 public:
  std::vector<agent::ResolvedRules> applied;
  std::vector<core::CompiledRules> rules;  // copies: ResolvedRules points into the agent
  clv_link_state state{};
  bool fail_next = false;

  core::Result<agent::ApplyStats> apply(const agent::ResolvedRules& r) override {
    if (fail_next) {
      fail_next = false;
      return core::fail(core::ErrorCode::kIo, "map update failed", "clv_rules", 12);
    }
    if (on_apply) on_apply();
    applied.push_back(r);
    rules.push_back(*r.rules);
    state = r.state;
    if (ops) ops->push_back("flip " + std::to_string(r.rules->generation));
    return agent::ApplyStats{static_cast<uint32_t>(applied.size() & 1), r.rules->entries.size(), 0, 0.1};
  }
  core::Status set_link_state(const clv_link_state& st) override {
    state = st;
    if (ops) ops->push_back("state");
    return core::Ok{};
  }
  std::vector<std::string>* ops = nullptr;
  std::function<void()> on_apply;  // runs as the kernel write begins
  core::Result<clv_link_state> link_state() override { return state; }
  core::Status scan_flows(const agent::FlowVisitor&, agent::FlowBuffer&) override { return core::Ok{}; }
  core::Result<agent::LinkCounters> link_counters() override { return agent::LinkCounters{}; }
  core::Result<agent::GlobalCounters> counters() override { return agent::GlobalCounters{}; }
  core::Result<agent::LinkDrops> link_drops() override { return agent::LinkDrops{}; }
  core::Result<agent::LinkMigrations> link_migrations() override { return agent::LinkMigrations{}; }
  core::Status set_leave(const std::vector<clv_leave>& l) override {
    leave = l;  // not in ops: the order tests follow the rule writes
    return core::Ok{};
  }
  std::vector<clv_leave> leave;
  core::Result<std::vector<agent::LinkMigrations>> link_moves() override {
    return std::vector<agent::LinkMigrations>(CLV_MOVE_REASONS);
  }
  core::Result<ActiveRules> active_rules() override {
    return ActiveRules{static_cast<uint32_t>(rules.size() & 1), rules.empty() ? 0u : rules.back().generation};
  }
  core::Result<bool> pin_flow(const clv_flow_key&, const clv_flow&) override { return true; }
  core::Result<size_t> expire_flows(uint64_t, const core::FlowTimeouts&) override { return size_t{0}; }
};

class FakeHost : public agent::HostNetwork {
 public:
  std::map<std::string, agent::InterfaceState> ifs;
  std::map<uint32_t, agent::RouteLink> routes;  // by table
  bool fail_routes = false;

  core::Result<agent::InterfaceState> interface(const std::string& name) override {
    auto it = ifs.find(name);
    if (it == ifs.end()) return core::fail(core::ErrorCode::kNotFound, "No such device", name, 19);
    return it->second;
  }
  // As the kernel does: a gateway needs an address of its family on an
  // interface that is up ("Nexthop has invalid gateway").
  core::Status install_route_link(const agent::RouteLink& r) override {
    if (fail_routes) return core::fail(core::ErrorCode::kIo, "Network is unreachable", r.interface, 101);
    auto it = std::find_if(ifs.begin(), ifs.end(), [&](const auto& i) { return i.second.ifindex == r.ifindex; });
    if (it == ifs.end() || !it->second.up || (r.gw4 && !it->second.addr4) || (r.gw6 && !it->second.addr6))
      return core::fail(core::ErrorCode::kIo, "Nexthop has invalid gateway", r.interface, 22);
    routes[r.table] = r;
    if (ops) ops->push_back("route " + r.interface);
    return core::Ok{};
  }
  core::Status remove_route_link(const agent::RouteLink& r) override {
    routes.erase(r.table);
    return core::Ok{};
  }
  std::vector<std::string>* ops = nullptr;
  core::Status set_neighbor(const core::IpAddr&, const std::array<uint8_t, 6>&, int) override { return core::Ok{}; }
  core::Result<core::CounterSample> interface_counters(const std::string& name) override {
    return core::fail(core::ErrorCode::kNotFound, "No such device", name, 19);
  }
};

inline const char* kMapping = R"(version: 1
links:
  - {name: mpls, interface: wan0, gateway: 192.0.2.1, mode: route}
  - {name: bb, interface: wan1, gateway: 198.51.100.1, mode: redirect, snat: masquerade}
  - {name: lte, interface: wwan0, gateway: 100.64.0.1, mode: redirect}
rules:
  - {name: r1, priority: 1, match: {proto: tcp, dport: 443}, link: bb}
default: {link: mpls}
)";

struct Env {
  std::string dir = "/tmp/clovis-unit-agent-" + std::to_string(::getpid());
  FakeDataplane dp;
  FakeHost host;
  std::unique_ptr<agent::Agent> a;
  Env() {
    std::filesystem::remove_all(dir);
    host.ifs["wan0"] = {4, true, core::IpAddr::parse("192.0.2.2"), std::nullopt};
    host.ifs["wan1"] = {5, true, core::IpAddr::parse("198.51.100.2"), std::nullopt};
    a = make();
  }
  ~Env() { std::filesystem::remove_all(dir); }
  std::unique_ptr<agent::Agent> make() {
    return std::make_unique<agent::Agent>(agent::AgentOptions{dir, 10000}, dp, host);
  }
};

}  // namespace clovis::test::agent_env
