// The kernel, as the agent sees it. agentd/kernel/ implements it with libbpf;
// tests of the layers above use a fake. Values are ABI structs (clovis/abi.h).
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/abi.hpp"
#include "core/compiled.hpp"
#include "core/conntrack.hpp"
#include "core/result.hpp"

namespace clovis::agent {

// A compiled rule set with everything only the running host knows filled in:
// link ifindexes and NAT addresses, ifindexes of the rules' ingress interfaces.
struct ResolvedRules {
  const core::CompiledRules* rules = nullptr;
  std::array<clv_link, CLV_MAX_LINKS> links{};      // ifindex/snat resolved
  std::vector<std::pair<uint32_t, uint32_t>> iifs;  // (ifindex, iif id)
  clv_link_state state{};                           // initial link state
  // Why a link cannot carry traffic on this host now (no interface, no
  // carrier, no address, policy routing refused): empty when it can.
  std::array<std::string, CLV_MAX_LINKS> down_reason{};
  // Of those, links down for their interface's existence or carrier: the
  // health checker sees these itself (and reports them as its events).
  uint64_t no_carrier = 0;
  // Slots that change hands in this apply (a new link takes a removed one's
  // slot): the rule set still running may pick them until the flip, so they
  // are written after it and stay down until then (Dataplane::apply).
  uint64_t handover = 0;
};

struct FlowEntry {
  clv_flow_key key;
  clv_flow flow;
};

// Flow keys in hash containers. Every writer zeroes a key's padding (keys come
// from the kernel's map or from `clv_flow_key{}`), so bytes compare.
struct FlowKeyHash {
  size_t operator()(const clv_flow_key& k) const noexcept {
    return std::hash<std::string_view>{}(std::string_view(reinterpret_cast<const char*>(&k), sizeof k));
  }
};
struct FlowKeyEq {
  bool operator()(const clv_flow_key& a, const clv_flow_key& b) const noexcept {
    return std::memcmp(&a, &b, sizeof a) == 0;
  }
};

// Part of the flow table as one kernel batch read returned it: keys and
// values side by side, flows[i] being keys[i]'s. Valid only during the call
// it is passed to: the reader reuses its memory.
struct FlowBatch {
  std::span<const clv_flow_key> keys;
  std::span<const clv_flow> flows;
  size_t size() const { return keys.size(); }
  FlowEntry at(size_t i) const { return {keys[i], flows[i]}; }
};
// Called with each batch in turn; returns false to stop the scan.
using FlowVisitor = std::function<bool(const FlowBatch&)>;

// What scan_flows reads a batch into. A caller that scans again and again
// (WatchFlows, every interval) keeps one, so that its scans allocate nothing.
struct FlowBuffer {
  std::vector<clv_flow_key> keys;
  std::vector<clv_flow> flows;
};

using LinkCounters = std::array<clv_link_stats, CLV_MAX_LINKS>;  // summed over CPUs
using GlobalCounters = std::array<uint64_t, CLV_STAT_MAX>;
// Per link slot, summed over CPUs: packets dropped after the link was chosen
// for them, by reason ([slot][CLV_LINK_DROP_*]; the reasons from
// CLV_LINK_DROP_REASONS on are not defined yet and stay 0). Counts since the
// map was created (it is pinned: they survive clovisd restarts).
using LinkDrops = std::array<std::array<uint64_t, CLV_LINK_DROP_MAX>, CLV_MAX_LINKS>;
// Flows failover moved, [from slot][to slot], summed over CPUs, since the map
// was created. The program moves a flow for one reason only: its link went
// down (on-link-down: migrate). 32 KiB, so kept on the heap: the metrics
// exporter reads it on a civetweb worker thread, whose stack civetweb sizes
// itself; 32 KiB arrays by value there overflowed it (a crash per scrape).
class LinkMigrations {
 public:
  using Row = std::array<uint64_t, CLV_MAX_LINKS>;
  LinkMigrations() : rows_(CLV_MAX_LINKS) {}
  Row& operator[](size_t from) { return rows_[from]; }
  const Row& operator[](size_t from) const { return rows_[from]; }
  Row& at(size_t from) { return rows_.at(from); }
  auto begin() const { return rows_.begin(); }
  auto end() const { return rows_.end(); }

 private:
  std::vector<Row> rows_;  // CLV_MAX_LINKS rows, always
};

// How full a map is: entries now against its capacity.
struct MapFill {
  std::string name;
  uint64_t entries = 0;
  uint64_t capacity = 0;
};

// Flow-table housekeeping since clovisd started. `expired`: flows expiry
// removed, by their CLV_CT_* state then. `evicted_unreplied`: unreplied flows
// the LRU table dropped to make room for new ones (the kernel does not count
// these: derived from what went in and what left otherwise, exact when the
// table is quiet). Refusals are the program's counters (CLV_STAT_*).
struct FlowTableTotals {
  std::array<uint64_t, CLV_CT_STATES> expired{};
  uint64_t evicted_unreplied = 0;
  // Per link slot, as the last expiry scan (expire_flows) found the table:
  // flows steered to the link that the scan kept (not the host's own, not
  // pinned to a slot since reused or removed), and of those the ones holding
  // a NAT binding (a port of the link's source address). Counted by the
  // scan clovisd runs anyway, not by a walk of their own: as fresh as that
  // scan, and a flow assured while it ran may be missed once.
  std::array<uint64_t, CLV_MAX_LINKS> link_flows{};
  std::array<uint64_t, CLV_MAX_LINKS> link_nat_bindings{};
  uint64_t links_counted_ns = 0;  // CLOCK_MONOTONIC of that scan; 0: none yet
};

// Fill levels and flow-table totals as a frequent reader can afford them
// (the metrics exporter, every scrape): what Dataplane::table_fill gives.
struct TableFill {
  std::vector<MapFill> maps;
  FlowTableTotals totals;
};

struct ApplyStats {
  uint32_t bank = 0;
  size_t entries_written = 0;
  size_t entries_deleted = 0;
  double write_ms = 0;  // shadow bank writes + flip
};

// The agent serializes apply() and set_link_state() (and map_fill() and
// table_fill(), which read what apply() keeps); the read-only calls
// (link_state, scan_flows, counters, link_drops, link_migrations,
// flow_table_totals, active_generation) may come from any thread at any
// time, as may
// expire_flows, which only deletes flow-table entries.
class Dataplane {
 public:
  virtual ~Dataplane() = default;

  // Writes the rule set into the shadow bank, then makes it active with one
  // write. Packets see the old rule set or the new one, never a mix. Links
  // whose slot is removed get a new epoch so that their flows reclassify.
  virtual core::Result<ApplyStats> apply(const ResolvedRules& r) = 0;
  virtual core::Status set_link_state(const clv_link_state& st) = 0;
  virtual core::Result<clv_link_state> link_state() = 0;

  // Reads the flow table in batches of at most kFlowBatch entries, handing
  // each to `visit` as it arrives: memory is bounded by one batch, whatever
  // the table's size. The table changes while it is read (the program adds
  // and updates flows, expiry deletes them): a scan sees each flow that
  // stays in the table, as it was when its batch was read; one assured
  // during the scan may be seen twice (its new entry last). An error
  // may come after some batches were visited.
  virtual core::Status scan_flows(const FlowVisitor& visit, FlowBuffer& buf) = 0;
  static constexpr size_t kFlowBatch = 4096;
  // The whole table at once, for callers that need it (clovisd --dump, tests).
  core::Result<std::vector<FlowEntry>> flows();
  virtual core::Result<LinkCounters> link_counters() = 0;
  virtual core::Result<GlobalCounters> counters() = 0;
  virtual core::Result<LinkDrops> link_drops() = 0;
  virtual core::Result<LinkMigrations> link_migrations() = 0;
  // The links each policy's live flows must leave (clv_leave, index policy
  // of the running rule set; entries past the vector's end are cleared) and
  // their summary in clv_links (CLV_LINK_LEAVE, _FORCE), kept by later
  // applies. Written apart from apply: a leave decision changes no rule.
  virtual core::Status set_leave(const std::vector<clv_leave>& leave) = 0;
  // Flows moved off a link their policy leaves, [CLV_MOVE_*][from][to],
  // summed over CPUs, since the map was created (CLV_MOVE_REASONS rows).
  virtual core::Result<std::vector<LinkMigrations>> link_moves() = 0;
  // The active rule bank (0 or 1; a flow's policy index is absolute,
  // bank * CLV_MAX_POLICIES + policy, as the program pins it) and the
  // generation of its rule set (0 before the first apply), read together.
  struct ActiveRules {
    uint32_t bank = 0;
    uint32_t generation = 0;
  };
  virtual core::Result<ActiveRules> active_rules() = 0;
  core::Result<uint32_t> active_generation() {
    auto a = active_rules();
    if (!a) return core::error_of(a);
    return a->generation;
  }
  core::Result<uint32_t> active_bank() {
    auto a = active_rules();
    if (!a) return core::error_of(a);
    return a->bank;
  }
  // Pins a flow a proxy reported (CLV_FLOW_PROXY), as the program would pin
  // it on its first packet (CLV_FLOW_NAT_PENDING: the program claims the NAT
  // port on the next one). Only a tuple with no flow yet, or one a proxy
  // pinned before (keeping its counters and first_ns), is written; a flow
  // the program pinned from packets (a live connection: moving it would
  // reset it), one it marked local (the host's own connection), or one
  // translated (or about to be) onto another link, is left alone: false.
  // May come from any thread.
  virtual core::Result<bool> pin_flow(const clv_flow_key& key, const clv_flow& flow) = 0;
  // Whether the flow table holds `key` (the default scans the table).
  virtual core::Result<bool> has_flow(const clv_flow_key& key) {
    bool found = false;
    FlowBuffer buf;
    auto st = scan_flows(
        [&](const FlowBatch& b) {
          for (const auto& k : b.keys)
            if (std::memcmp(&k, &key, sizeof key) == 0) found = true;
          return !found;
        },
        buf);
    if (!st) return core::error_of(st);
    return found;
  }
  // Removes flows idle for longer than their connection state allows, with
  // their NAT bindings, a batch at a time (memory bounded as for scan_flows).
  virtual core::Result<size_t> expire_flows(uint64_t now_ns, const core::FlowTimeouts& t) = 0;
  // What expiry and the LRU table removed so far (Status).
  virtual core::Result<FlowTableTotals> flow_table_totals() { return FlowTableTotals{}; }
  // Fill levels of the maps that can fill up (Status). Empty: not known.
  virtual core::Result<std::vector<MapFill>> map_fill() { return std::vector<MapFill>{}; }
  // map_fill() and flow_table_totals() without reading the flow tables,
  // whatever their size: their entries (and the unreplied flows the LRU
  // evicted) as the last expiry sweep counted them, the flow tables left out
  // before the first sweep. The default reads them (fakes).
  virtual core::Result<TableFill> table_fill() {
    auto m = map_fill();
    if (!m) return core::error_of(m);
    auto t = flow_table_totals();
    if (!t) return core::error_of(t);
    return TableFill{std::move(*m), *t};
  }
};

inline core::Result<std::vector<FlowEntry>> Dataplane::flows() {
  std::vector<FlowEntry> out;
  FlowBuffer buf;
  auto st = scan_flows(
      [&out](const FlowBatch& b) {
        for (size_t i = 0; i < b.size(); ++i) out.push_back(b.at(i));
        return true;
      },
      buf);
  if (!st) return core::error_of(st);
  return out;
}

}  // namespace clovis::agent
