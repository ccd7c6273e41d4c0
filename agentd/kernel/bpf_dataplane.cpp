#include "bpf_dataplane.hpp"

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>

#include "bpf_batch.hpp"
#include "core/fd.hpp"
#include "core/rule_table.hpp"
#include "log/log.hpp"

// Generated code: not held to the project's warning set.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wcast-align"
#include "clovis_bpf.skel.h"
#pragma GCC diagnostic pop

namespace clovis::agent::kernel {

namespace {

constexpr unsigned long kBpfFsMagic = 0xcafe4a11;

// All maps, with the names they are pinned under.
std::vector<bpf_map*> all_maps(struct clovis_bpf* s) {
  return {s->maps.clv_rules,      s->maps.clv_shapes,  s->maps.clv_meta,   s->maps.clv_active, s->maps.clv_policies,
          s->maps.clv_links,      s->maps.clv_lstate,  s->maps.clv_iifs,   s->maps.clv_flows,  s->maps.clv_nat,
          s->maps.clv_flows_new,  s->maps.clv_nat_new, s->maps.clv_lstats, s->maps.clv_stats,  s->maps.clv_link_drops,
          s->maps.clv_migrations, s->maps.clv_leave,   s->maps.clv_moves};
}

// What the program will pin, as libbpf compares it with a pinned map.
std::vector<MapMigration::Wanted> wanted_maps(struct clovis_bpf* s) {
  std::vector<MapMigration::Wanted> out;
  for (bpf_map* m : all_maps(s))
    out.push_back({bpf_map__name(m), MapDef{bpf_map__type(m), bpf_map__key_size(m), bpf_map__value_size(m),
                                            bpf_map__max_entries(m), bpf_map__map_flags(m)}});
  return out;
}

}  // namespace

core::Status ensure_bpffs() {
  struct statfs st {};
  if (statfs("/sys/fs/bpf", &st) == 0 && static_cast<unsigned long>(st.f_type) == kBpfFsMagic) return core::Ok{};
  if (mount("bpf", "/sys/fs/bpf", "bpf", 0, nullptr) != 0)
    return sys_fail("mount bpffs on /sys/fs/bpf (needs CAP_SYS_ADMIN, or mount it beforehand)", errno);
  return core::Ok{};
}

core::Result<std::unique_ptr<BpfDataplane>> BpfDataplane::open(const BpfOptions& opts) {
  if (auto st = ensure_bpffs(); !st) return core::error_of(st);
  std::unique_ptr<BpfDataplane> dp(new BpfDataplane(opts));
  if (auto st = dp->load(); !st) return core::error_of(st);
  if (auto st = dp->adopt_bank_keys(); !st) return core::error_of(st);
  if (auto st = dp->take_flow_baseline(); !st) return core::error_of(st);
  return dp;
}

BpfDataplane::~BpfDataplane() {
  if (skel_) clovis_bpf__destroy(skel_);
}

core::Status BpfDataplane::load() {
  std::error_code ec;
  std::filesystem::create_directories(opts_.pin_dir + "/maps", ec);
  if (ec) return sys_fail("create " + opts_.pin_dir + "/maps", ec.value());
  // Pinned maps are re-used only with identical definitions: adopt the size of
  // an existing flow table (of this release or, being migrated, an older one)
  // instead of failing (or losing the flows).
  const std::string maps_dir = opts_.pin_dir + "/maps";
  if (auto size = MapMigration::pinned_flow_table_size(maps_dir)) opts_.flow_table_size = *size;
  // The global counters' map grows when a release adds a counter: a pinned
  // one of another size is replaced (its counts restart) rather than making
  // the upgrade fail. Every other map keeps its layout across releases, or
  // is migrated (the flow and NAT tables of ABI 1, map_migration.hpp).
  const std::string stats_pin = opts_.pin_dir + "/maps/clv_stats";
  if (core::Fd fd(bpf_obj_get(stats_pin.c_str())); fd) {
    bpf_map_info info{};
    uint32_t len = sizeof info;
    const bool other_size = bpf_obj_get_info_by_fd(fd.get(), &info, &len) == 0 && info.max_entries != CLV_STAT_MAX;
    fd.reset();
    if (other_size && unlink(stats_pin.c_str()) != 0) return sys_fail("replace " + stats_pin, errno);
  }
  skel_ = clovis_bpf__open();
  if (!skel_) return sys_fail("open the clovis BPF object", errno);
  ncpus_ = libbpf_num_possible_cpus();
  bpf_map__set_max_entries(skel_->maps.clv_flows, opts_.flow_table_size);
  bpf_map__set_max_entries(skel_->maps.clv_nat, opts_.flow_table_size);
  bpf_map__set_max_entries(skel_->maps.clv_flows_new, opts_.flow_table_size);
  bpf_map__set_max_entries(skel_->maps.clv_nat_new, opts_.flow_table_size);
  // A pinned map of an older layout is set aside for copying (map_migration.hpp);
  // one of a layout this release does not know refuses the start, saying why.
  auto migration = MapMigration::prepare(maps_dir, wanted_maps(skel_));
  if (!migration) return core::error_of(migration);
  migration_ = std::move(*migration);
  for (bpf_map* m : all_maps(skel_)) {
    std::string path = maps_dir + "/" + bpf_map__name(m);
    if (bpf_map__set_pin_path(m, path.c_str()) != 0) return sys_fail("pin path " + path, errno);
  }
  if (int rc = clovis_bpf__load(skel_); rc != 0) {
    std::string hint;
    if (rc == -EINVAL)
      hint = fmt::format(
          " (pinned maps under {}/maps differ from this program: a different "
          "clovisd version or flow table size; run 'clovisd --uninstall' first)",
          opts_.pin_dir);
    return core::fail(core::ErrorCode::kIo, std::strerror(-rc) + hint, "load the clovis BPF program", -rc);
  }
  if (!migration_.pending()) return core::Ok{};
  // The older program may still be attached and adding flows to the old maps:
  // finish_migration() copies those once this program has replaced it.
  auto copied = migration_.copy(migration_targets());
  if (!copied) return core::error_of(copied);
  log_info(
      fmt::format("adopted the ABI 1 flow tables under {}: copied {}; flows the old program adds until this "
                  "one is attached follow",
                  maps_dir, describe(*copied)));
  return core::Ok{};
}

MapMigration::Targets BpfDataplane::migration_targets() const {
  return {bpf_map__fd(skel_->maps.clv_flows), bpf_map__fd(skel_->maps.clv_flows_new), bpf_map__fd(skel_->maps.clv_nat),
          bpf_map__fd(skel_->maps.clv_nat_new)};
}

core::Status BpfDataplane::finish_migration() {
  if (!migration_.pending()) return core::Ok{};
  auto copied = migration_.finish(migration_targets());
  if (!copied) return core::error_of(copied);
  log_info(fmt::format("ABI 1 flow tables migrated; after attaching, a second pass copied {}; old pins removed",
                       describe(*copied)));
  return core::Ok{};
}

int BpfDataplane::lan_in_fd() const {
  return bpf_program__fd(skel_->progs.clv_lan_in);
}
int BpfDataplane::lan_out_fd() const {
  return bpf_program__fd(skel_->progs.clv_lan_out);
}
int BpfDataplane::wan_in_fd() const {
  return bpf_program__fd(skel_->progs.clv_wan_in);
}

core::Status BpfDataplane::adopt_bank_keys() {
  if (auto st = read_bank_rules({true, true}); !st) return st;
  std::vector<uint64_t> iifs;
  if (auto st = read_all<uint64_t, uint32_t>(skel_->maps.clv_iifs, &iifs); !st) return st;
  for (uint64_t k : iifs) bank_iifs_[(k >> 32) & 1].push_back(k);
  return core::Ok{};
}

// What the kernel holds in the banks asked for (the map is read once, whole).
core::Status BpfDataplane::read_bank_rules(std::array<bool, CLV_BANKS> which) {
  std::vector<clv_rule_key> keys;
  std::vector<clv_rule_val> vals;
  if (auto st = read_all(skel_->maps.clv_rules, &keys, &vals); !st) return st;
  for (uint32_t bank = 0; bank < CLV_BANKS; ++bank) {
    if (!which[bank]) continue;
    BankRules& b = bank_rules_[bank];
    b.keys.clear();
    b.vals.clear();
    for (size_t i = 0; i < keys.size(); ++i)
      if ((keys[i].bank & 1) == bank) b.keys.push_back(keys[i]), b.vals.push_back(vals[i]);
    b.known = true;
  }
  return core::Ok{};
}

// Makes the bank hold exactly c.entries: deletes the entries it has that c
// does not, writes those it lacks or holds with another value, and leaves the
// rest (an apply that changes a few rules writes a few entries). The bank
// must not be the active one.
core::Status BpfDataplane::write_bank_rules(uint32_t bank, const core::CompiledRules& c, ApplyStats* stats) {
  BankRules& b = bank_rules_[bank];
  if (!b.known) {
    std::array<bool, CLV_BANKS> which{};
    which[bank] = true;
    if (auto st = read_bank_rules(which); !st) return st;
  }
  std::vector<clv_rule_key> keys;
  std::vector<clv_rule_val> vals;
  keys.reserve(c.entries.size());
  vals.reserve(c.entries.size());
  for (auto [k, v] : c.entries) {
    k.bank = static_cast<uint8_t>(bank);
    keys.push_back(k);
    vals.push_back(v);
  }
  std::vector<clv_rule_key> put_keys, gone;
  std::vector<clv_rule_val> put_vals;
  const bool delta = !b.keys.empty();
  if (delta) {
    core::RuleTable held;
    held.reserve(b.keys.size());
    for (size_t i = 0; i < b.keys.size(); ++i) held.insert(b.keys[i], b.vals[i]);
    std::vector<bool> kept(b.keys.size());
    for (size_t i = 0; i < keys.size(); ++i) {
      const size_t at = held.index_of(keys[i]);
      if (at < kept.size()) kept[at] = true;
      if (at == kept.size() || std::memcmp(&b.vals[at], &vals[i], sizeof vals[i]) != 0)
        put_keys.push_back(keys[i]), put_vals.push_back(vals[i]);
    }
    for (size_t i = 0; i < b.keys.size(); ++i)
      if (!kept[i]) gone.push_back(b.keys[i]);
  }
  // From here until both writes succeed the bank holds neither set exactly.
  b.known = false;
  if (auto st = delete_batch(skel_->maps.clv_rules, gone); !st) return st;
  if (auto st = delta ? update_batch(skel_->maps.clv_rules, put_keys, put_vals)
                      : update_batch(skel_->maps.clv_rules, keys, vals);
      !st)
    return st;
  stats->entries_deleted = gone.size();
  b.keys = std::move(keys);
  b.vals = std::move(vals);
  b.known = true;
  return core::Ok{};
}

core::Result<Dataplane::ActiveRules> BpfDataplane::active_rules() {
  {
    std::lock_guard lock(cache_mu_);
    if (active_) return *active_;
  }
  uint32_t zero = 0, bank = 0;
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.clv_active), &zero, &bank) != 0)
    return sys_fail("read clv_active", errno);
  bank &= 1;
  clv_bank_meta meta{};
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.clv_meta), &bank, &meta) != 0)
    return sys_fail("read clv_meta", errno);
  const ActiveRules a{bank, meta.generation};
  std::lock_guard lock(cache_mu_);
  active_ = a;
  return a;
}

core::Result<ApplyStats> BpfDataplane::apply(const ResolvedRules& r) {
  const auto t0 = std::chrono::steady_clock::now();
  const core::CompiledRules& c = *r.rules;
  auto active = active_bank();
  if (!active) return core::error_of(active);
  ApplyStats stats;
  const uint32_t shadow = *active ^ 1;
  stats.bank = shadow;
  if (auto st = delete_batch(skel_->maps.clv_iifs, bank_iifs_[shadow]); !st) return core::error_of(st);
  bank_iifs_[shadow].clear();

  // Links first: slots are stable, new ones are unused by the active bank,
  // and both banks' policies can then pick any link that is up in either.
  // Not a slot changing hands (r.handover): the active bank knows another
  // link by it, so it is down from here and written after the flip.
  auto old_state = link_state();
  if (!old_state) return core::error_of(old_state);
  std::vector<uint32_t> link_keys;
  std::vector<clv_link> link_vals, old_links;
  for (uint32_t s = 0; s < CLV_MAX_LINKS; ++s) {
    if (c.link_info[s].name.empty() || (r.handover >> s & 1)) continue;
    clv_link old{};
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.clv_links), &s, &old) != 0)
      return sys_fail("read clv_links", errno);
    link_keys.push_back(s);
    link_vals.push_back(with_leave_flags(r.links[s], s));
    old_links.push_back(old);
  }
  // Until the flip, a failure puts the links' settings and state back: the
  // running rule set goes on exactly as it was (nothing half-applied).
  auto undo = [&](const core::Error& e) -> core::Result<ApplyStats> {
    (void)update_batch(skel_->maps.clv_links, link_keys, old_links);
    (void)set_link_state(*old_state);
    return core::Unexpected<core::Error>{e};
  };
  if (auto st = update_batch(skel_->maps.clv_links, link_keys, link_vals); !st) return undo(st.error());
  clv_link_state both = r.state;
  both.up |= old_state->up;
  both.v4 |= old_state->v4;
  both.v6 |= old_state->v6;
  both.up &= ~r.handover;
  if (auto st = set_link_state(both); !st) return undo(st.error());

  if (auto st = write_bank_rules(shadow, c, &stats); !st) return undo(st.error());
  stats.entries_written = c.entries.size();

  std::vector<uint32_t> idx;
  for (uint32_t i = 0; i < c.shapes.size(); ++i) idx.push_back(shadow * CLV_MAX_SHAPES + i);
  if (auto st = update_batch(skel_->maps.clv_shapes, idx, c.shapes); !st) return undo(st.error());
  idx.clear();
  for (uint32_t i = 0; i < c.policies.size(); ++i) idx.push_back(shadow * CLV_MAX_POLICIES + i);
  if (auto st = update_batch(skel_->maps.clv_policies, idx, c.policies); !st) return undo(st.error());
  std::vector<uint64_t> iif_keys;
  std::vector<uint32_t> iif_vals;
  for (auto [ifindex, id] : r.iifs) {
    iif_keys.push_back(static_cast<uint64_t>(shadow) << 32 | ifindex);
    iif_vals.push_back(id);
  }
  if (auto st = update_batch(skel_->maps.clv_iifs, iif_keys, iif_vals); !st) return undo(st.error());
  bank_iifs_[shadow] = std::move(iif_keys);
  clv_bank_meta meta = c.meta;
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.clv_meta), &shadow, &meta, BPF_ANY) != 0)
    return undo(sys_fail("write clv_meta", errno).error);

  // The flip: one 4-byte value. From here on new flows see the new rules.
  uint32_t zero = 0;
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.clv_active), &zero, &shadow, BPF_ANY) != 0)
    return undo(sys_fail("activate the new rule bank", errno).error);
  {
    std::lock_guard lock(cache_mu_);
    active_ = ActiveRules{shadow, meta.generation};
  }

  // Slots the new mapping does not use: a new epoch sends their flows back to
  // classification; no ifindex means nothing is sent there any more.
  link_keys.clear();
  link_vals.clear();
  for (uint32_t s = 0; s < CLV_MAX_LINKS; ++s) {
    if (r.handover >> s & 1) {  // its new link, with its own epoch
      link_keys.push_back(s);
      link_vals.push_back(r.links[s]);
      continue;
    }
    if (!c.link_info[s].name.empty() || !((old_state->up | old_state->v4 | old_state->v6) >> s & 1)) continue;
    clv_link gone{};
    gone.epoch = c.generation;
    link_keys.push_back(s);
    link_vals.push_back(gone);
  }
  if (auto st = update_batch(skel_->maps.clv_links, link_keys, link_vals); !st) return core::error_of(st);
  if (auto st = set_link_state(r.state); !st) return core::error_of(st);
  stats.write_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return stats;
}

core::Status BpfDataplane::set_link_state(const clv_link_state& st) {
  uint32_t zero = 0;
  if (bpf_map_update_elem(bpf_map__fd(skel_->maps.clv_lstate), &zero, &st, BPF_ANY) != 0) {
    const int err = errno;
    std::lock_guard lock(cache_mu_);
    lstate_.reset();  // whatever the kernel holds now, read it next time
    return sys_fail("write clv_lstate", err);
  }
  std::lock_guard lock(cache_mu_);
  lstate_ = st;
  return core::Ok{};
}

core::Result<clv_link_state> BpfDataplane::link_state() {
  {
    std::lock_guard lock(cache_mu_);
    if (lstate_) return *lstate_;
  }
  uint32_t zero = 0;
  clv_link_state st{};
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.clv_lstate), &zero, &st) != 0)
    return sys_fail("read clv_lstate", errno);
  std::lock_guard lock(cache_mu_);
  lstate_ = st;
  return st;
}

core::Result<LinkCounters> BpfDataplane::link_counters() {
  LinkCounters out{};
  std::vector<clv_link_stats> per_cpu(static_cast<size_t>(ncpus_));
  for (uint32_t s = 0; s < CLV_MAX_LINKS; ++s) {
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.clv_lstats), &s, per_cpu.data()) != 0)
      return sys_fail("read clv_lstats", errno);
    for (const auto& c : per_cpu) {
      out[s].tx_packets += c.tx_packets;
      out[s].tx_bytes += c.tx_bytes;
      out[s].rx_packets += c.rx_packets;
      out[s].rx_bytes += c.rx_bytes;
      out[s].new_flows += c.new_flows;
      out[s].migrated += c.migrated;
      out[s].drops += c.drops;
    }
  }
  return out;
}

core::Result<GlobalCounters> BpfDataplane::counters() {
  GlobalCounters out{};
  std::vector<uint64_t> per_cpu(static_cast<size_t>(ncpus_));
  for (uint32_t i = 0; i < CLV_STAT_MAX; ++i) {
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.clv_stats), &i, per_cpu.data()) != 0)
      return sys_fail("read clv_stats", errno);
    for (uint64_t v : per_cpu) out[i] += v;
  }
  return out;
}

namespace {

// A per-CPU array of __u64 summed over CPUs, index by index: read with batch
// lookups (one call for the whole map, not one per entry: clv_migrations
// has 4096 entries, read at every scrape).
core::Result<std::vector<uint64_t>> sum_percpu_u64(bpf_map* m, int ncpus) {
  const uint32_t n = bpf_map__max_entries(m);
  const auto cpus = static_cast<size_t>(ncpus);
  std::vector<uint32_t> keys(n);
  std::vector<uint64_t> vals(n * cpus), out(n);
  uint32_t in_batch = 0, out_batch = 0;
  bool first = true;
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  for (;;) {
    uint32_t count = n;
    const int rc = bpf_map_lookup_batch(bpf_map__fd(m), first ? nullptr : &in_batch, &out_batch, keys.data(),
                                        vals.data(), &count, &opts);
    const int err = rc ? errno : 0;
    if (rc && err != ENOENT) return sys_fail(fmt::format("read {}", bpf_map__name(m)), err);
    for (uint32_t i = 0; i < count; ++i) {
      if (keys[i] >= n) continue;
      for (size_t c = 0; c < cpus; ++c) out[keys[i]] += vals[i * cpus + c];
    }
    if (err == ENOENT || count == 0) return out;
    in_batch = out_batch;
    first = false;
  }
}

}  // namespace

core::Result<LinkDrops> BpfDataplane::link_drops() {
  auto sums = sum_percpu_u64(skel_->maps.clv_link_drops, ncpus_);
  if (!sums) return core::error_of(sums);
  LinkDrops out{};
  for (size_t s = 0; s < CLV_MAX_LINKS; ++s)
    for (size_t r = 0; r < CLV_LINK_DROP_MAX; ++r) out[s][r] = (*sums)[s * CLV_LINK_DROP_MAX + r];
  return out;
}

core::Result<LinkMigrations> BpfDataplane::link_migrations() {
  auto sums = sum_percpu_u64(skel_->maps.clv_migrations, ncpus_);
  if (!sums) return core::error_of(sums);
  LinkMigrations out;
  for (size_t from = 0; from < CLV_MAX_LINKS; ++from)
    for (size_t to = 0; to < CLV_MAX_LINKS; ++to) out[from][to] = (*sums)[from * CLV_MAX_LINKS + to];
  return out;
}

core::Result<std::vector<LinkMigrations>> BpfDataplane::link_moves() {
  auto sums = sum_percpu_u64(skel_->maps.clv_moves, ncpus_);
  if (!sums) return core::error_of(sums);
  std::vector<LinkMigrations> out(CLV_MOVE_REASONS);
  for (size_t r = 0; r < CLV_MOVE_REASONS; ++r)
    for (size_t from = 0; from < CLV_MAX_LINKS; ++from)
      for (size_t to = 0; to < CLV_MAX_LINKS; ++to)
        out[r][from][to] = (*sums)[r * CLV_MIGRATION_ENTRIES + from * CLV_MAX_LINKS + to];
  return out;
}

core::Result<std::vector<MapFill>> BpfDataplane::small_map_fill() {
  std::vector<MapFill> out;
  auto capacity = [](bpf_map* m) { return static_cast<uint64_t>(bpf_map__max_entries(m)); };
  out.push_back(
      {"clv_rules", bank_rules_[0].keys.size() + bank_rules_[1].keys.size(), capacity(skel_->maps.clv_rules)});
  uint64_t shapes = 0;
  for (uint32_t bank = 0; bank < CLV_BANKS; ++bank) {
    clv_bank_meta meta{};
    if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.clv_meta), &bank, &meta) != 0)
      return sys_fail("read clv_meta", errno);
    shapes += meta.n_shapes;
  }
  out.push_back({"clv_shapes", shapes, capacity(skel_->maps.clv_shapes)});
  out.push_back({"clv_iifs", bank_iifs_[0].size() + bank_iifs_[1].size(), capacity(skel_->maps.clv_iifs)});
  return out;
}

core::Result<std::vector<MapFill>> BpfDataplane::map_fill() {
  auto capacity = [](bpf_map* m) { return static_cast<uint64_t>(bpf_map__max_entries(m)); };
  auto small = small_map_fill();
  if (!small) return small;
  std::vector<MapFill> out = std::move(*small);
  for (bpf_map* m : {skel_->maps.clv_flows, skel_->maps.clv_flows_new}) {
    auto n = count_entries<clv_flow_key, clv_flow>(m);
    if (!n) return core::error_of(n);
    out.push_back({bpf_map__name(m), *n, capacity(m)});
  }
  for (bpf_map* m : {skel_->maps.clv_nat, skel_->maps.clv_nat_new}) {
    auto n = count_entries<clv_nat_key, clv_flow_key>(m);
    if (!n) return core::error_of(n);
    out.push_back({bpf_map__name(m), *n, capacity(m)});
  }
  return out;
}

core::Status BpfDataplane::unpin_all(const std::string& pin_dir) {
  std::error_code ec;
  std::filesystem::remove_all(pin_dir + "/maps", ec);
  if (ec) return sys_fail("remove " + pin_dir + "/maps", ec.value());
  return core::Ok{};
}

}  // namespace clovis::agent::kernel
