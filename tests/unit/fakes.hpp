// Fakes of the kernel (Dataplane) and the host network (HostNetwork) for
// tests of the agent and the service. Thread-safe: the service calls them
// from gRPC threads while the test seeds flows and counters.
#pragma once

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <unistd.h>

#include "agent/agent.hpp"
#include "helpers.hpp"

namespace clovis::test {

class FakeDataplane : public agent::Dataplane {
 public:
  core::Result<agent::ApplyStats> apply(const agent::ResolvedRules& r) override {
    std::lock_guard lock(mu_);
    if (fail_next_) {
      fail_next_ = false;
      return core::fail(core::ErrorCode::kIo, "map update failed", "clv_rules", 12);
    }
    ++applies_;
    state_ = r.state;
    generation_ = r.rules->generation;
    policies_ = r.rules->policies;
    return agent::ApplyStats{static_cast<uint32_t>(applies_ & 1), r.rules->entries.size(), 0, 0.1};
  }
  core::Status set_link_state(const clv_link_state& st) override {
    std::lock_guard lock(mu_);
    state_ = st;
    return core::Ok{};
  }
  core::Result<clv_link_state> link_state() override {
    std::lock_guard lock(mu_);
    if (fail_link_state_) return core::fail(core::ErrorCode::kIo, "Input/output error", "read clv_link_state", EIO);
    return state_;
  }
  // In batches of flow_batch_ (the kernel's are kFlowBatch), visited
  // without the lock (a visitor may call back); fail_scan_at_ batches in,
  // the read fails as a kernel read can midway.
  core::Status scan_flows(const agent::FlowVisitor& visit, agent::FlowBuffer& buf) override {
    std::vector<agent::FlowEntry> table;
    size_t batch = 0, fail_at = SIZE_MAX;
    {
      std::unique_lock lock(mu_);
      ++held_;
      release_.wait(lock, [this] { return !hold_; });
      --held_;
      table = flows_;
      batch = flow_batch_;
      fail_at = fail_scan_at_;
      ++scans_;
    }
    size_t n = 0;
    for (size_t i = 0; i < table.size(); i += batch, ++n) {
      if (n == fail_at) return core::fail(core::ErrorCode::kIo, "Input/output error", "read clv_flows", EIO);
      buf.keys.clear();
      buf.flows.clear();
      for (size_t j = i; j < std::min(i + batch, table.size()); ++j) {
        buf.keys.push_back(table[j].key);
        buf.flows.push_back(table[j].flow);
      }
      if (!visit(agent::FlowBatch{buf.keys, buf.flows})) return core::Ok{};
    }
    if (n == fail_at) return core::fail(core::ErrorCode::kIo, "Input/output error", "read clv_flows", EIO);
    return core::Ok{};
  }
  core::Result<agent::LinkCounters> link_counters() override {
    std::lock_guard lock(mu_);
    return link_counters_;
  }
  core::Result<agent::GlobalCounters> counters() override {
    std::lock_guard lock(mu_);
    return counters_;
  }
  core::Result<agent::LinkDrops> link_drops() override {
    std::lock_guard lock(mu_);
    return link_drops_;
  }
  core::Result<agent::LinkMigrations> link_migrations() override {
    std::lock_guard lock(mu_);
    return migrations_;
  }
  core::Status set_leave(const std::vector<clv_leave>& leave) override {
    std::lock_guard lock(mu_);
    leave_ = leave;
    ++leave_writes_;
    return core::Ok{};
  }
  std::vector<clv_leave> leave() const {
    std::lock_guard lock(mu_);
    return leave_;
  }
  size_t leave_writes() const {
    std::lock_guard lock(mu_);
    return leave_writes_;
  }
  core::Result<std::vector<agent::LinkMigrations>> link_moves() override {
    std::lock_guard lock(mu_);
    return moves_;
  }
  void set_move(int reason, int from, int to, uint64_t v) {
    std::lock_guard lock(mu_);
    moves_.at(static_cast<size_t>(reason)).at(static_cast<size_t>(from)).at(static_cast<size_t>(to)) = v;
  }
  core::Result<ActiveRules> active_rules() override {
    std::lock_guard lock(mu_);
    return ActiveRules{static_cast<uint32_t>(applies_ & 1), generation_};
  }
  core::Result<bool> pin_flow(const clv_flow_key& key, const clv_flow& flow) override {
    std::lock_guard lock(mu_);
    auto same = [&](const agent::FlowEntry& e) { return std::memcmp(&e.key, &key, sizeof key) == 0; };
    auto it = std::find_if(flows_.begin(), flows_.end(), same);
    if (it == flows_.end()) {
      flows_.push_back({key, flow});
      return true;
    }
    if (it->flow.flags & CLV_FLOW_LOCAL || !(it->flow.flags & CLV_FLOW_PROXY)) return false;
    clv_flow v = flow;
    v.first_ns = it->flow.first_ns;
    v.pkts_out = it->flow.pkts_out;
    v.bytes_out = it->flow.bytes_out;
    v.pkts_in = it->flow.pkts_in;
    v.bytes_in = it->flow.bytes_in;
    it->flow = v;
    return true;
  }
  core::Result<size_t> expire_flows(uint64_t, const core::FlowTimeouts&) override { return size_t{0}; }
  // The flows set, in a table of 1024, unless set_map_fill said otherwise.
  core::Result<std::vector<agent::MapFill>> map_fill() override {
    std::lock_guard lock(mu_);
    if (map_fill_) return *map_fill_;
    return std::vector<agent::MapFill>{{"clv_flows", flows_.size(), 1024}};
  }
  core::Result<agent::FlowTableTotals> flow_table_totals() override {
    std::lock_guard lock(mu_);
    return totals_;
  }
  void set_map_fill(std::vector<agent::MapFill> m) {
    std::lock_guard lock(mu_);
    map_fill_ = std::move(m);
  }
  void set_flow_table_totals(const agent::FlowTableTotals& t) {
    std::lock_guard lock(mu_);
    totals_ = t;
  }

  void set_flows(std::vector<agent::FlowEntry> f) {
    std::lock_guard lock(mu_);
    flows_ = std::move(f);
  }
  void set_flow_batch(size_t n) {
    std::lock_guard lock(mu_);
    flow_batch_ = n;
  }
  // The next scans fail after `batches` batches (SIZE_MAX: they do not).
  void fail_scan_at(size_t batches) {
    std::lock_guard lock(mu_);
    fail_scan_at_ = batches;
  }
  int scans() const {
    std::lock_guard lock(mu_);
    return scans_;
  }
  // While on, scans wait before reading (a listing that takes its time);
  // scans_held(): how many wait.
  void hold_scans(bool on) {
    {
      std::lock_guard lock(mu_);
      hold_ = on;
    }
    release_.notify_all();
  }
  int scans_held() const {
    std::lock_guard lock(mu_);
    return held_;
  }
  void set_link_counters(const agent::LinkCounters& c) {
    std::lock_guard lock(mu_);
    link_counters_ = c;
  }
  void set_link_drop(int slot, int reason, uint64_t v) {
    std::lock_guard lock(mu_);
    link_drops_.at(static_cast<size_t>(slot)).at(static_cast<size_t>(reason)) = v;
  }
  void set_migrations(int from, int to, uint64_t v) {
    std::lock_guard lock(mu_);
    migrations_.at(static_cast<size_t>(from)).at(static_cast<size_t>(to)) = v;
  }
  void set_counter(size_t i, uint64_t v) {
    std::lock_guard lock(mu_);
    counters_[i] = v;
  }
  void fail_next() {
    std::lock_guard lock(mu_);
    fail_next_ = true;
  }
  // Reads of the link state fail (as a kernel map read can) until set false.
  void fail_link_state(bool fail) {
    std::lock_guard lock(mu_);
    fail_link_state_ = fail;
  }
  int applies() const {
    std::lock_guard lock(mu_);
    return applies_;
  }
  clv_link_state state() const {
    std::lock_guard lock(mu_);
    return state_;
  }
  // The policies of the last rule set applied: what the program picks from.
  std::vector<clv_policy> policies() const {
    std::lock_guard lock(mu_);
    return policies_;
  }

 private:
  mutable std::mutex mu_;
  int applies_ = 0;
  uint32_t generation_ = 0;
  bool fail_next_ = false;
  bool fail_link_state_ = false;
  clv_link_state state_{};
  std::vector<clv_policy> policies_;
  std::vector<agent::FlowEntry> flows_;
  size_t flow_batch_ = agent::Dataplane::kFlowBatch;
  size_t fail_scan_at_ = SIZE_MAX;
  int scans_ = 0;
  bool hold_ = false;
  int held_ = 0;
  std::condition_variable release_;
  agent::LinkCounters link_counters_{};
  agent::GlobalCounters counters_{};
  agent::LinkDrops link_drops_{};
  agent::LinkMigrations migrations_;
  std::vector<agent::LinkMigrations> moves_ = std::vector<agent::LinkMigrations>(CLV_MOVE_REASONS);
  std::vector<clv_leave> leave_;
  size_t leave_writes_ = 0;
  std::optional<std::vector<agent::MapFill>> map_fill_;
  agent::FlowTableTotals totals_{};
};

class FakeHost : public agent::HostNetwork {
 public:
  core::Result<agent::InterfaceState> interface(const std::string& name) override {
    std::lock_guard lock(mu_);
    auto it = ifs_.find(name);
    if (it == ifs_.end()) return core::fail(core::ErrorCode::kNotFound, "No such device", name, 19);
    return it->second;
  }
  core::Status install_route_link(const agent::RouteLink& r) override {
    std::lock_guard lock(mu_);
    routes_[r.table] = r;
    return core::Ok{};
  }
  core::Status remove_route_link(const agent::RouteLink& r) override {
    std::lock_guard lock(mu_);
    routes_.erase(r.table);
    return core::Ok{};
  }
  core::Status set_neighbor(const core::IpAddr&, const std::array<uint8_t, 6>&, int) override { return core::Ok{}; }
  core::Result<core::CounterSample> interface_counters(const std::string& name) override {
    std::lock_guard lock(mu_);
    auto it = counters_.find(name);
    if (it == counters_.end()) return core::fail(core::ErrorCode::kNotFound, "No such device", name, 19);
    return it->second;
  }

  void set_interface(const std::string& name, agent::InterfaceState s) {
    std::lock_guard lock(mu_);
    ifs_[name] = s;
  }
  void set_counters(const std::string& name, core::CounterSample c) {
    std::lock_guard lock(mu_);
    counters_[name] = std::move(c);
  }
  size_t routes() const {
    std::lock_guard lock(mu_);
    return routes_.size();
  }
  std::vector<agent::RouteLink> route_links() const {
    std::lock_guard lock(mu_);
    std::vector<agent::RouteLink> out;
    for (const auto& [table, r] : routes_) out.push_back(r);
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, agent::InterfaceState> ifs_;
  std::map<uint32_t, agent::RouteLink> routes_;
  std::map<std::string, core::CounterSample> counters_;
};

// A flow-table entry from text addresses; counters and names are the
// caller's to set.
inline agent::FlowEntry make_flow(const std::string& src, const std::string& dst, uint16_t sport, uint16_t dport,
                                  const std::string& proto = "tcp") {
  agent::FlowEntry e{};
  auto s = core::IpAddr::parse(src), d = core::IpAddr::parse(dst);
  e.key.family = s->family == core::Family::kV4 ? CLV_AF_INET : CLV_AF_INET6;
  auto sw = s->words(), dw = d->words();
  std::copy(sw.begin(), sw.end(), e.key.src);
  std::copy(dw.begin(), dw.end(), e.key.dst);
  e.key.sport = sport;
  e.key.dport = dport;
  e.key.proto = *core::parse_proto(proto);
  return e;
}

// A fresh state directory, removed afterwards.
struct TempDir {
  std::string path;
  explicit TempDir(const std::string& tag)
      : path((std::filesystem::temp_directory_path() / ("clovis-unit-" + tag + "-" + std::to_string(::getpid())))
                 .string()) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

// The health checker's verdicts for the slots in `judged`: down unless in
// `up`, degraded when in `degraded` (Agent::set_health's input as masks).
// Here, not in helpers.hpp: that one serves core-only targets (the fuzzers).
inline std::vector<agent::LinkVerdict> verdicts(uint64_t up, uint64_t degraded, uint64_t judged) {
  std::vector<agent::LinkVerdict> out;
  for (int s = 0; s < 64; ++s) {
    if (!(judged >> s & 1)) continue;
    agent::LinkVerdict v;
    v.slot = s;
    v.state = !(up >> s & 1)        ? agent::LinkState::kDown
              : (degraded >> s & 1) ? agent::LinkState::kDegraded
                                    : agent::LinkState::kUp;
    out.push_back(v);
  }
  return out;
}

}  // namespace clovis::test
