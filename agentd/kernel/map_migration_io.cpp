// The kernel half of map_migration.hpp: pins, bpf_map_info, reading the
// ABI 1 maps and writing the new ones. Every decision is in map_migration.cpp.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <bpf/bpf.h>
#include <fmt/format.h>

#include "core/fd.hpp"
#include "kernel/map_migration.hpp"

namespace clovis::agent::kernel {

namespace {

core::Unexpected<core::Error> sys_fail(const std::string& what, int err) {
  return core::fail(core::ErrorCode::kIo, std::strerror(err), what, err);
}

bool exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

// The definition of the map pinned at `path`; none when nothing is pinned there.
core::Result<std::optional<MapDef>> pinned_def(const std::string& path) {
  core::Fd fd(bpf_obj_get(path.c_str()));
  if (fd.get() < 0) {
    if (errno == ENOENT) return std::optional<MapDef>{};
    return sys_fail("open pinned map " + path, errno);
  }
  bpf_map_info info{};
  uint32_t len = sizeof info;
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) return sys_fail("read the definition of " + path, errno);
  return std::optional<MapDef>{MapDef{info.type, info.key_size, info.value_size, info.max_entries, info.map_flags}};
}

// A whole hash map, in batches. The last batch comes with ENOENT and counts.
template <typename K, typename V>
core::Status read_all(int fd, const std::string& what, std::vector<K>* keys, std::vector<V>* vals) {
  constexpr uint32_t kChunk = 4096;
  std::vector<K> kb(kChunk);
  std::vector<V> vb(kChunk);
  alignas(8) uint8_t in[64], out[64];
  bool first = true;
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  for (;;) {
    uint32_t n = kChunk;
    int rc = bpf_map_lookup_batch(fd, first ? nullptr : in, out, kb.data(), vb.data(), &n, &opts);
    int err = rc ? errno : 0;
    if (rc && err != ENOENT) return sys_fail("read " + what, err);
    keys->insert(keys->end(), kb.begin(), kb.begin() + n);
    vals->insert(vals->end(), vb.begin(), vb.begin() + n);
    if (err == ENOENT) return core::Ok{};
    std::memcpy(in, out, sizeof in);
    first = false;
  }
}

// Writes each entry into `into` unless its key is already in `into` or in
// `other` (the program's newer copy wins; a flow lives in one table only).
template <typename K, typename V>
core::Status put_absent(int into, int other, const std::vector<K>& keys, const std::vector<V>& vals, size_t* put,
                        MigrationCounts* c) {
  V seen{};
  for (size_t i = 0; i < keys.size(); ++i) {
    if (bpf_map_lookup_elem(into, &keys[i], &seen) == 0 || bpf_map_lookup_elem(other, &keys[i], &seen) == 0) {
      ++c->present;
      continue;
    }
    if (bpf_map_update_elem(into, &keys[i], &vals[i], BPF_NOEXIST) == 0) ++*put;
    else if (errno == EEXIST) ++c->present;
    else if (errno == E2BIG || errno == ENOMEM) ++c->full;
    else return sys_fail("copy an ABI 1 entry into the new flow tables", errno);
  }
  return core::Ok{};
}

}  // namespace

std::optional<uint32_t> MapMigration::pinned_flow_table_size(const std::string& maps_dir) {
  for (const std::string& path : {maps_dir + "/clv_flows", maps_dir + "/clv_flows" + std::string(kAbi1Suffix)}) {
    auto def = pinned_def(path);
    if (def && *def) return (*def)->max_entries;
  }
  return std::nullopt;
}

core::Result<MapMigration> MapMigration::prepare(const std::string& maps_dir, const std::vector<Wanted>& wanted) {
  MapMigration m;
  m.maps_dir_ = maps_dir;
  // Everything is checked before anything is renamed: a refused start leaves
  // the pins as they were.
  std::vector<std::string> to_rename;
  for (const Wanted& w : wanted) {
    const std::string path = maps_dir + "/" + w.name;
    auto def = pinned_def(path);
    if (!def) return core::error_of(def);
    const bool aside = abi1_def(w.name, 0).has_value() && exists(path + std::string(kAbi1Suffix));
    if (aside) {
      auto old = pinned_def(path + std::string(kAbi1Suffix));
      if (!old) return core::error_of(old);
      if (*old && classify_pinned(w.name, **old, w.def) != PinnedLayout::kAbi1)
        return core::fail(core::ErrorCode::kInvalidArgument,
                          unknown_layout_message(path + std::string(kAbi1Suffix), **old, w.def), "adopt pinned maps");
      m.pending_ = true;  // an interrupted migration: resumed
    }
    if (!*def) continue;
    switch (classify_pinned(w.name, **def, w.def)) {
      case PinnedLayout::kCurrent: break;
      case PinnedLayout::kAbi1:
        if (aside)
          return core::fail(core::ErrorCode::kInvalidArgument,
                            fmt::format("both {0} and {0}{1} hold ABI 1 flows: an upgrade was interrupted and an older "
                                        "clovisd ran since. Remove {0}{1} (the older of the two) and start again",
                                        path, kAbi1Suffix),
                            "adopt pinned maps");
        to_rename.push_back(path);
        break;
      case PinnedLayout::kUnknown:
        return core::fail(core::ErrorCode::kInvalidArgument, unknown_layout_message(path, **def, w.def),
                          "adopt pinned maps");
    }
  }
  for (const std::string& path : to_rename) {
    // bpffs renames atomically; the old program keeps its maps by fd.
    if (rename(path.c_str(), (path + std::string(kAbi1Suffix)).c_str()) != 0)
      return sys_fail(fmt::format("set {} aside as {}{}", path, path, kAbi1Suffix), errno);
    m.pending_ = true;
  }
  return m;
}

core::Result<MigrationCounts> MapMigration::copy(const Targets& t) const {
  MigrationCounts c;
  if (!pending_) return c;
  std::vector<clv_flow_key> keys, owners;
  std::vector<FlowAbi1> vals;
  std::vector<clv_nat_key> nat_keys;
  for (auto [name, is_flows] : {std::pair{"clv_flows", true}, std::pair{"clv_nat", false}}) {
    const std::string path = maps_dir_ + "/" + name + std::string(kAbi1Suffix);
    core::Fd fd(bpf_obj_get(path.c_str()));
    if (fd.get() < 0) {
      if (errno == ENOENT) continue;  // already copied and unlinked
      return sys_fail("open " + path, errno);
    }
    auto st = is_flows ? read_all(fd.get(), path, &keys, &vals) : read_all(fd.get(), path, &nat_keys, &owners);
    if (!st) return core::error_of(st);
  }
  const MigrationPlan p = plan_abi1_migration(keys, vals, nat_keys, owners);
  c.nat_dropped = p.nat_dropped;
  // Flows before their bindings: the program finds a binding's flow by it.
  if (auto st = put_absent(t.flows, t.flows_new, p.assured_keys, p.assured_flows, &c.assured, &c); !st)
    return core::error_of(st);
  if (auto st = put_absent(t.flows_new, t.flows, p.new_keys, p.new_flows, &c.unreplied, &c); !st)
    return core::error_of(st);
  if (auto st = put_absent(t.nat, t.nat_new, p.assured_nat_keys, p.assured_nat_owners, &c.nat, &c); !st)
    return core::error_of(st);
  if (auto st = put_absent(t.nat_new, t.nat, p.new_nat_keys, p.new_nat_owners, &c.nat_new, &c); !st)
    return core::error_of(st);
  return c;
}

core::Result<MigrationCounts> MapMigration::finish(const Targets& t) {
  auto c = copy(t);
  if (!c || !pending_) return c;
  // The NAT table first: a crash between the two unlinks leaves the flows,
  // which a resumed copy handles (bindings without their flows would all be
  // dropped as orphans).
  for (std::string_view name : {std::string_view("clv_nat"), std::string_view("clv_flows")}) {
    const std::string path = maps_dir_ + "/" + std::string(name) + std::string(kAbi1Suffix);
    if (unlink(path.c_str()) != 0 && errno != ENOENT) return sys_fail("remove " + path + " after copying it", errno);
  }
  pending_ = false;
  return c;
}

}  // namespace clovis::agent::kernel
