// The flow tables of the kernel Dataplane: reading them, pinning a proxy's
// flows, expiring idle ones by their connection state, and what left them.
// Two pairs of tables (clovis/abi.h): assured flows in clv_flows/clv_nat,
// which only expiry or a flow's end empties, and unreplied ones in
// clv_flows_new/clv_nat_new, LRU tables that give way under pressure.
#include <cerrno>
#include <cstring>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>

#include "bpf_batch.hpp"
#include "bpf_dataplane.hpp"
#include "core/flow_row.hpp"
#include "map_migration.hpp"

// Generated code: not held to the project's warning set.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wcast-align"
#include "clovis_bpf.skel.h"
#pragma GCC diagnostic pop

namespace clovis::agent::kernel {

BpfDataplane::FlowMaps BpfDataplane::flow_maps(bool unreplied) const {
  return unreplied ? FlowMaps{skel_->maps.clv_flows_new, skel_->maps.clv_nat_new}
                   : FlowMaps{skel_->maps.clv_flows, skel_->maps.clv_nat};
}

// Unreplied flows first, then assured ones: a flow assured during the scan
// moves towards the table read next, so it may be seen twice (as it was,
// then assured) but is never missed; WatchFlows takes the second sighting
// as an update of the first.
core::Status BpfDataplane::scan_flows(const FlowVisitor& visit, FlowBuffer& buf) {
  buf.keys.resize(kFlowBatch);
  buf.flows.resize(kFlowBatch);
  bool stopped = false;
  for (bool unreplied : {true, false}) {
    auto st = for_each_batch(flow_maps(unreplied).flows, buf.keys.data(), buf.flows.data(),
                             static_cast<uint32_t>(kFlowBatch), [&](uint32_t n) {
                               stopped = !visit(FlowBatch{{buf.keys.data(), n}, {buf.flows.data(), n}});
                               return !stopped;
                             });
    if (!st || stopped) return st;
  }
  return core::Ok{};
}

// Where a flow is, if anywhere: its table and value.
core::Result<std::optional<std::pair<bool, clv_flow>>> BpfDataplane::find_flow(const clv_flow_key& key) {
  for (bool unreplied : {false, true}) {
    clv_flow f{};
    if (bpf_map_lookup_elem(bpf_map__fd(flow_maps(unreplied).flows), &key, &f) == 0)
      return std::optional{std::pair{unreplied, f}};
    if (errno != ENOENT) return sys_fail(fmt::format("read {}", bpf_map__name(flow_maps(unreplied).flows)), errno);
  }
  return std::optional<std::pair<bool, clv_flow>>{};
}

core::Result<bool> BpfDataplane::pin_flow(const clv_flow_key& key, const clv_flow& flow) {
  auto found = find_flow(key);
  if (!found) return core::error_of(found);
  // A tuple with no flow yet goes where every new flow goes.
  const bool unreplied = *found ? (*found)->first : true;
  const int fd = bpf_map__fd(flow_maps(unreplied).flows);
  clv_flow v = flow;
  v.state = CLV_CT_NEW;
  v.ct_flags = 0;
  if (*found) {
    clv_flow old = (*found)->second;
    // The host's own connection; or a live connection the program pinned
    // from its packets, which a report must never move (its source address
    // or its path would change under it: a reset). The proxy's L7 facts
    // are still kept for it (SessionTable).
    if (old.flags & CLV_FLOW_LOCAL || !(old.flags & CLV_FLOW_PROXY)) return false;
    if (old.flags & (CLV_FLOW_NAT | CLV_FLOW_NAT_PENDING)) {
      // Translated, or about to be: another link or a fresh port would change
      // the connection's source under it. It stays as it is; the same link
      // again is a report of a flow already pinned.
      if (old.action != flow.action || old.link != flow.link || old.link_epoch != flow.link_epoch) return false;
      return true;
    }
    // The same decision again (each request of a keep-alive connection
    // reports its 5-tuple): nothing to write; packets keep last_ns fresh.
    if (old.action == flow.action && old.link == flow.link && old.link_epoch == flow.link_epoch &&
        old.policy == flow.policy && old.rule_id == flow.rule_id && old.generation == flow.generation &&
        old.mode == flow.mode && old.flags == (flow.flags | CLV_FLOW_PROXY))
      return true;
    // Packets counted between this read and the write below are lost: a few
    // packets of a flow the proxy reports again, not worth a lock in the program.
    v.first_ns = old.first_ns;
    v.pkts_out = old.pkts_out;
    v.bytes_out = old.bytes_out;
    v.pkts_in = old.pkts_in;
    v.bytes_in = old.bytes_in;
    v.lan_ifindex = old.lan_ifindex;
    v.state = old.state;
    v.ct_flags = old.ct_flags;
  }
  if (bpf_map_update_elem(fd, &key, &v, *found ? BPF_EXIST : BPF_NOEXIST) != 0) {
    // The program recorded or assured the flow meanwhile: its packets decide.
    if (errno == EEXIST || errno == ENOENT) return false;
    return sys_fail(fmt::format("write {}", bpf_map__name(flow_maps(unreplied).flows)), errno);
  }
  if (!*found) pinned_new_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

core::Result<bool> BpfDataplane::has_flow(const clv_flow_key& key) {
  auto found = find_flow(key);
  if (!found) return core::error_of(found);
  return found->has_value();
}

// A batch at a time: the dead flows of a batch are deleted before the next
// batch is read, so memory stays at one batch whatever the table's size.
// (The read cursor is a bucket index: deleting entries of buckets already
// read does not disturb it.) A flow found idle is read again just before it
// is deleted, so that a packet between the batch read and the delete keeps
// it; its NAT binding goes only if it is still the flow's. The flows it
// keeps are counted per link on the way (FlowTableTotals::link_flows): the
// per-link gauges cost no walk of their own.
core::Result<size_t> BpfDataplane::expire_flows(uint64_t now_ns, const core::FlowTimeouts& t) {
  std::vector<clv_flow_key> keys(kFlowBatch);
  std::vector<clv_flow> vals(kFlowBatch);
  size_t gone = 0;
  std::array<uint64_t, 4> kept{};  // table_fill's swept_: what stays, by table
  auto epochs = link_epochs();
  if (!epochs) return core::error_of(epochs);
  LinkTally tally;
  auto count_kept = [&](const clv_flow& f) {
    if (!core::flow_steered(f) || f.link >= CLV_MAX_LINKS || f.link_epoch != (*epochs)[f.link]) return;
    ++tally.flows[f.link];
    if (f.flags & CLV_FLOW_NAT) ++tally.nat[f.link];
  };
  for (bool unreplied : {false, true}) {
    const FlowMaps m = flow_maps(unreplied);
    core::Status failed = core::Ok{};
    auto st = for_each_batch(m.flows, keys.data(), vals.data(), static_cast<uint32_t>(kFlowBatch), [&](uint32_t n) {
      for (uint32_t i = 0; i < n; ++i) {
        auto r = expire_one(m, keys[i], vals[i], now_ns, t);
        if (!r) {
          failed = core::error_of(r);
          return false;
        }
        if (*r) {
          ++gone;
          if (unreplied) expired_new_.fetch_add(1, std::memory_order_relaxed);
        } else {
          ++kept[unreplied ? 1 : 0];
          if (vals[i].flags & CLV_FLOW_NAT) ++kept[unreplied ? 3 : 2];
          count_kept(vals[i]);
        }
      }
      return true;
    });
    if (!st) return core::error_of(st);
    if (!failed) return core::error_of(failed);
  }
  note_sweep(kept);
  tally.at_ns = now_ns;
  {
    std::lock_guard lock(tally_mu_);
    tally_ = tally;  // only a complete scan's counts replace the last ones
  }
  return gone;
}

// The sweep has just counted the tables: the metrics exporter reads these
// instead of walking them at every scrape (table_fill).
void BpfDataplane::note_sweep(const std::array<uint64_t, 4>& kept) {
  for (size_t i = 0; i < kept.size(); ++i) swept_[i].store(kept[i], std::memory_order_relaxed);
  if (auto c = counters()) swept_evicted_.store(evicted_unreplied(*c, kept[1]), std::memory_order_relaxed);
  swept_once_.store(true, std::memory_order_release);
}

core::Result<TableFill> BpfDataplane::table_fill() {
  auto small = small_map_fill();
  if (!small) return core::error_of(small);
  TableFill out{std::move(*small), {}};
  copy_tally(&out.totals);
  for (size_t i = 0; i < out.totals.expired.size(); ++i)
    out.totals.expired[i] = expired_[i].load(std::memory_order_relaxed);
  if (!swept_once_.load(std::memory_order_acquire)) return out;
  out.totals.evicted_unreplied = swept_evicted_.load(std::memory_order_relaxed);
  const std::array<bpf_map*, 4> maps = {skel_->maps.clv_flows, skel_->maps.clv_flows_new, skel_->maps.clv_nat,
                                        skel_->maps.clv_nat_new};
  for (size_t i = 0; i < maps.size(); ++i)
    out.maps.push_back({bpf_map__name(maps[i]), swept_[i].load(std::memory_order_relaxed),
                        static_cast<uint64_t>(bpf_map__max_entries(maps[i]))});
  return out;
}

core::Result<std::array<uint32_t, CLV_MAX_LINKS>> BpfDataplane::link_epochs() {
  std::array<uint32_t, CLV_MAX_LINKS> out{};
  for (uint32_t s = 0; s < CLV_MAX_LINKS; ++s) {
    clv_link l{};
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.clv_links), &s, &l) != 0) return sys_fail("read clv_links", errno);
    out[s] = l.epoch;
  }
  return out;
}

// One flow read by expiry: deleted (true) when idle past its state's timeout.
core::Result<bool> BpfDataplane::expire_one(const FlowMaps& m, const clv_flow_key& k, const clv_flow& seen,
                                            uint64_t now_ns, const core::FlowTimeouts& t) {
  auto timeout_ns = [&](const clv_flow& f) {
    return static_cast<uint64_t>(core::flow_timeout_s(t, k.proto, f.state)) * 1'000'000'000ull;
  };
  if (seen.last_ns + timeout_ns(seen) >= now_ns) return false;
  clv_flow f{};
  if (bpf_map_lookup_elem(bpf_map__fd(m.flows), &k, &f) != 0) return false;  // gone meanwhile
  if (f.last_ns + timeout_ns(f) >= now_ns) return false;
  if (bpf_map_delete_elem(bpf_map__fd(m.flows), &k) != 0) {
    if (errno == ENOENT) return false;
    return sys_fail(fmt::format("delete from {}", bpf_map__name(m.flows)), errno);
  }
  if (f.flags & CLV_FLOW_NAT) {
    const clv_nat_key nk = *nat_key_of(k, f);
    clv_flow_key owner{};
    if (bpf_map_lookup_elem(bpf_map__fd(m.nat), &nk, &owner) == 0 && std::memcmp(&owner, &k, sizeof k) == 0 &&
        bpf_map_delete_elem(bpf_map__fd(m.nat), &nk) != 0 && errno != ENOENT)
      return sys_fail(fmt::format("delete from {}", bpf_map__name(m.nat)), errno);
  }
  expired_[f.state < CLV_CT_STATES ? f.state : CLV_CT_CLOSE].fetch_add(1, std::memory_order_relaxed);
  return true;
}

// What went into the unreplied table since open() (new flows, proxies'
// pins) less what left it otherwise (assured, ended by the program, expired)
// and what it holds now: the rest the LRU dropped to make room.
core::Result<FlowTableTotals> BpfDataplane::flow_table_totals() {
  FlowTableTotals out;
  for (size_t i = 0; i < out.expired.size(); ++i) out.expired[i] = expired_[i].load(std::memory_order_relaxed);
  auto c = counters();
  if (!c) return core::error_of(c);
  auto held = count_entries<clv_flow_key, clv_flow>(skel_->maps.clv_flows_new);
  if (!held) return core::error_of(held);
  out.evicted_unreplied = evicted_unreplied(*c, *held);
  copy_tally(&out);
  return out;
}

void BpfDataplane::copy_tally(FlowTableTotals* out) const {
  std::lock_guard lock(tally_mu_);
  out->link_flows = tally_.flows;
  out->link_nat_bindings = tally_.nat;
  out->links_counted_ns = tally_.at_ns;
}

uint64_t BpfDataplane::evicted_unreplied(const GlobalCounters& c, uint64_t held) const {
  const int64_t in = static_cast<int64_t>(base_.new_entries + (c[CLV_STAT_NEW_FLOW] - base_.new_flows) +
                                          pinned_new_.load(std::memory_order_relaxed));
  const int64_t left =
      static_cast<int64_t>((c[CLV_STAT_PROMOTED] - base_.promoted) + (c[CLV_STAT_ENDED_UNREPLIED] - base_.ended) +
                           expired_new_.load(std::memory_order_relaxed) + held);
  return in > left ? static_cast<uint64_t>(in - left) : 0;
}

core::Status BpfDataplane::take_flow_baseline() {
  auto c = counters();
  if (!c) return core::error_of(c);
  auto held = count_entries<clv_flow_key, clv_flow>(skel_->maps.clv_flows_new);
  if (!held) return core::error_of(held);
  base_ = {*held, (*c)[CLV_STAT_NEW_FLOW], (*c)[CLV_STAT_PROMOTED], (*c)[CLV_STAT_ENDED_UNREPLIED]};
  return core::Ok{};
}

int BpfDataplane::flows_fd() const {
  return bpf_map__fd(skel_->maps.clv_flows);
}
int BpfDataplane::flows_new_fd() const {
  return bpf_map__fd(skel_->maps.clv_flows_new);
}
int BpfDataplane::nat_fd() const {
  return bpf_map__fd(skel_->maps.clv_nat);
}
int BpfDataplane::nat_new_fd() const {
  return bpf_map__fd(skel_->maps.clv_nat_new);
}

}  // namespace clovis::agent::kernel
