// Dataplane on the real kernel: the clovis TC program (libbpf skeleton) with
// its maps pinned under a bpffs directory, so that steering survives the
// agent and a restarted agent adopts the same maps without resetting flows.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kernel/map_migration.hpp"
#include "ports/dataplane.hpp"

struct clovis_bpf;  // generated skeleton (clovis_bpf.skel.h)
struct bpf_map;     // libbpf

namespace clovis::agent::kernel {

struct BpfOptions {
  std::string pin_dir = "/sys/fs/bpf/clovis";
  uint32_t flow_table_size = 262144;
};

class BpfDataplane final : public Dataplane {
 public:
  // Loads the program, creating or re-using the pinned maps.
  static core::Result<std::unique_ptr<BpfDataplane>> open(const BpfOptions& opts);
  ~BpfDataplane() override;
  BpfDataplane(const BpfDataplane&) = delete;
  BpfDataplane& operator=(const BpfDataplane&) = delete;

  core::Result<ApplyStats> apply(const ResolvedRules& r) override;
  core::Status set_link_state(const clv_link_state& st) override;
  core::Result<clv_link_state> link_state() override;
  core::Status scan_flows(const FlowVisitor& visit, FlowBuffer& buf) override;
  core::Result<LinkCounters> link_counters() override;
  core::Result<GlobalCounters> counters() override;
  core::Result<LinkDrops> link_drops() override;
  core::Result<LinkMigrations> link_migrations() override;
  core::Status set_leave(const std::vector<clv_leave>& leave) override;
  core::Result<std::vector<LinkMigrations>> link_moves() override;
  core::Result<ActiveRules> active_rules() override;
  core::Result<bool> pin_flow(const clv_flow_key& key, const clv_flow& flow) override;
  core::Result<size_t> expire_flows(uint64_t now_ns, const core::FlowTimeouts& t) override;
  core::Result<bool> has_flow(const clv_flow_key& key) override;
  core::Result<std::vector<MapFill>> map_fill() override;
  core::Result<FlowTableTotals> flow_table_totals() override;
  core::Result<TableFill> table_fill() override;

  // Program fds, for attaching.
  int lan_in_fd() const;
  int lan_out_fd() const;
  int wan_in_fd() const;
  int flows_fd() const;      // assured flows
  int flows_new_fd() const;  // unreplied flows
  int nat_fd() const;        // their NAT bindings
  int nat_new_fd() const;
  const BpfOptions& options() const { return opts_; }

  // Once the program is attached (replacing an older clovisd's): copies the
  // flows the older program made since open() migrated its maps, then
  // removes their pins. Nothing to do when open() migrated nothing.
  core::Status finish_migration();

  // Removes every pinned map under the pin directory (uninstall).
  static core::Status unpin_all(const std::string& pin_dir);

 private:
  explicit BpfDataplane(BpfOptions opts) : opts_(std::move(opts)) {}
  core::Status load();
  MapMigration::Targets migration_targets() const;
  core::Status adopt_bank_keys();
  core::Status read_bank_rules(std::array<bool, CLV_BANKS> which);
  core::Status write_bank_rules(uint32_t bank, const core::CompiledRules& c, ApplyStats* stats);

  // A flow table and its NAT bindings: the assured pair or the unreplied one.
  struct FlowMaps {
    ::bpf_map* flows;
    ::bpf_map* nat;
  };
  FlowMaps flow_maps(bool unreplied) const;
  // (unreplied?, value) of the flow `key`, if any.
  core::Result<std::optional<std::pair<bool, clv_flow>>> find_flow(const clv_flow_key& key);
  core::Result<bool> expire_one(const FlowMaps& m, const clv_flow_key& k, const clv_flow& seen, uint64_t now_ns,
                                const core::FlowTimeouts& t);
  core::Status take_flow_baseline();
  // The unreplied flows the LRU evicted, given the counters and the entries
  // the unreplied table holds.
  uint64_t evicted_unreplied(const GlobalCounters& c, uint64_t held) const;
  core::Result<std::vector<MapFill>> small_map_fill();
  void note_sweep(const std::array<uint64_t, 4>& kept);  // the rule maps: no flow table read
  // Each slot's current epoch (clv_links), for telling a flow of the link
  // now in a slot from one pinned to the slot's previous link.
  core::Result<std::array<uint32_t, CLV_MAX_LINKS>> link_epochs();
  void copy_tally(FlowTableTotals* out) const;  // the last complete scan's per-link counts
  // `l` (slot `s`) with the CLV_LINK_LEAVE bits of the last set_leave, which
  // an apply keeps (bpf_leave.cpp).
  clv_link with_leave_flags(clv_link l, uint32_t s) const;

  // What one bank of clv_rules holds, entry for entry (keys with their bank
  // byte): an apply writes only the difference into the shadow bank. Not
  // known after a failed write; the next apply reads the bank back first.
  struct BankRules {
    std::vector<clv_rule_key> keys;
    std::vector<clv_rule_val> vals;
    bool known = true;
  };

  BpfOptions opts_;
  struct clovis_bpf* skel_ = nullptr;
  MapMigration migration_;
  int ncpus_ = 1;
  std::array<BankRules, CLV_BANKS> bank_rules_;
  std::array<std::vector<uint64_t>, CLV_BANKS> bank_iifs_;
  // What set_leave last wrote: entries of clv_leave in use (at first all of
  // them: a pinned map may hold an earlier clovisd's), and the summary of
  // their masks (all reasons; of those, the forced ones) in clv_links.
  size_t leave_entries_ = CLV_MAX_POLICIES;
  uint64_t leave_links_ = 0, leave_force_ = 0;

  // The link state and the active bank with its generation as this process
  // last read or wrote them. clovisd is the only writer of these maps (the
  // program only reads them), so a Check from a proxy, which needs all three,
  // reads them here instead of making four bpf() calls (~40% of its cost).
  // Set only after a write succeeded; read from the kernel when not known.
  // What expiry removed (by state; of it, from the unreplied table) and what
  // proxies' reports added there; with the program's counters and the
  // table's fill at open (base_), the unreplied flows the LRU evicted.
  std::array<std::atomic<uint64_t>, CLV_CT_STATES> expired_{};
  std::atomic<uint64_t> expired_new_{0}, pinned_new_{0};
  struct {
    uint64_t new_entries = 0, new_flows = 0, promoted = 0, ended = 0;
  } base_;
  // Per link, what the last complete expiry scan counted (FlowTableTotals).
  struct LinkTally {
    std::array<uint64_t, CLV_MAX_LINKS> flows{}, nat{};
    uint64_t at_ns = 0;
  };
  mutable std::mutex tally_mu_;
  LinkTally tally_;

  // What the last expiry sweep counted (table_fill): entries of clv_flows,
  // clv_flows_new, clv_nat, clv_nat_new (NAT: the translated flows it kept),
  // and the unreplied flows evicted by then. Written by expire_flows only.
  std::array<std::atomic<uint64_t>, 4> swept_{};
  std::atomic<uint64_t> swept_evicted_{0};
  std::atomic<bool> swept_once_{false};

  mutable std::mutex cache_mu_;
  std::optional<clv_link_state> lstate_;
  std::optional<ActiveRules> active_;
};

// Mounts bpffs on /sys/fs/bpf when it is not mounted (it is not at boot here).
core::Status ensure_bpffs();

}  // namespace clovis::agent::kernel
