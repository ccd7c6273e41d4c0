// The pure half of map_migration.hpp: no syscalls, unit-tested.
#include "kernel/map_migration.hpp"

#include <linux/bpf.h>

#include <cstring>
#include <unordered_map>

#include <fmt/format.h>

namespace clovis::agent::kernel {

namespace {

std::string type_name(uint32_t t) {
  switch (t) {
    case BPF_MAP_TYPE_HASH: return "HASH";
    case BPF_MAP_TYPE_ARRAY: return "ARRAY";
    case BPF_MAP_TYPE_PERCPU_ARRAY: return "PERCPU_ARRAY";
    case BPF_MAP_TYPE_LRU_HASH: return "LRU_HASH";
    case BPF_MAP_TYPE_PERCPU_HASH: return "PERCPU_HASH";
    case BPF_MAP_TYPE_LRU_PERCPU_HASH: return "LRU_PERCPU_HASH";
    default: return fmt::format("type {}", t);
  }
}

std::string flags_name(uint32_t f) {
  if (f == 0) return "none";
  if (f == BPF_F_NO_PREALLOC) return "NO_PREALLOC";
  return fmt::format("{:#x}", f);
}

// Flow keys as hash keys: 40 bytes compared whole, padding included (the
// program zeroes it, and the kernel compares map keys the same way).
struct KeyHash {
  size_t operator()(const clv_flow_key& k) const {
    uint32_t w[sizeof k / 4];
    std::memcpy(w, &k, sizeof k);
    uint32_t h = 0x636c7673u;
    for (uint32_t x : w) h = clv_hash_step(h, x);
    return clv_hash_final(h);
  }
};
struct KeyEq {
  bool operator()(const clv_flow_key& a, const clv_flow_key& b) const { return std::memcmp(&a, &b, sizeof a) == 0; }
};

}  // namespace

std::optional<MapDef> abi1_def(std::string_view name, uint32_t max_entries) {
  if (name == "clv_flows") return MapDef{BPF_MAP_TYPE_LRU_HASH, sizeof(clv_flow_key), kFlowAbi1Size, max_entries, 0};
  if (name == "clv_nat")
    return MapDef{BPF_MAP_TYPE_LRU_HASH, sizeof(clv_nat_key), sizeof(clv_flow_key), max_entries, 0};
  return std::nullopt;
}

PinnedLayout classify_pinned(std::string_view name, const MapDef& pinned, const MapDef& wanted) {
  if (pinned == wanted) return PinnedLayout::kCurrent;
  // The old table's size is adopted (load() sizes the new ones from it), so
  // an ABI 1 map of another size than the new ones is not one we made.
  if (auto v1 = abi1_def(name, wanted.max_entries); v1 && pinned == *v1) return PinnedLayout::kAbi1;
  return PinnedLayout::kUnknown;
}

std::string describe_difference(const MapDef& pinned, const MapDef& wanted) {
  std::vector<std::string> d;
  if (pinned.type != wanted.type)
    d.push_back(fmt::format("type {}, this clovisd wants {}", type_name(pinned.type), type_name(wanted.type)));
  if (pinned.key_size != wanted.key_size)
    d.push_back(fmt::format("key {} bytes, wants {}", pinned.key_size, wanted.key_size));
  if (pinned.value_size != wanted.value_size)
    d.push_back(fmt::format("value {} bytes, wants {}", pinned.value_size, wanted.value_size));
  if (pinned.max_entries != wanted.max_entries)
    d.push_back(fmt::format("{} entries, wants {}", pinned.max_entries, wanted.max_entries));
  if (pinned.flags != wanted.flags)
    d.push_back(fmt::format("flags {}, wants {}", flags_name(pinned.flags), flags_name(wanted.flags)));
  return fmt::format("{}", fmt::join(d, "; "));
}

std::string unknown_layout_message(const std::string& path, const MapDef& pinned, const MapDef& wanted) {
  return fmt::format(
      "pinned map {} has a layout this clovisd (ABI {}) can neither re-use nor migrate ({}): it was made by "
      "another clovisd version (a newer one, or one this release has no migration from). Start the clovisd "
      "that made it, or run 'clovisd --uninstall' and start again (that resets every steered and NAT'd connection)",
      path, CLV_ABI_VERSION, describe_difference(pinned, wanted));
}

clv_flow flow_from_abi1(const FlowAbi1& v1) {
  clv_flow f{};
  std::memcpy(&f, v1.bytes, kFlowAbi1Size);
  if (f.pkts_in > 0) {
    f.state = CLV_CT_ESTABLISHED;
    f.ct_flags = CLV_CT_ASSURED;
  } else {
    f.state = CLV_CT_NEW;
  }
  return f;
}

std::optional<clv_nat_key> nat_key_of(const clv_flow_key& k, const clv_flow& f) {
  if (!(f.flags & CLV_FLOW_NAT)) return std::nullopt;
  // As nat_claim() in clovis.bpf.c builds it.
  clv_nat_key nk{};
  std::memcpy(nk.remote, k.dst, sizeof nk.remote);
  std::memcpy(nk.local, f.nat_addr, sizeof nk.local);
  nk.remote_port = k.dport;
  nk.local_port = f.nat_port;
  nk.proto = k.proto;
  nk.family = k.family;
  return nk;
}

MigrationPlan plan_abi1_migration(const std::vector<clv_flow_key>& keys, const std::vector<FlowAbi1>& vals,
                                  const std::vector<clv_nat_key>& nat_keys,
                                  const std::vector<clv_flow_key>& nat_owners) {
  MigrationPlan p;
  std::unordered_map<clv_flow_key, size_t, KeyHash, KeyEq> at;  // key -> index into keys
  at.reserve(keys.size());
  for (size_t i = 0; i < keys.size() && i < vals.size(); ++i) {
    const clv_flow f = flow_from_abi1(vals[i]);
    at.emplace(keys[i], i);
    if (is_assured(f)) p.assured_keys.push_back(keys[i]), p.assured_flows.push_back(f);
    else p.new_keys.push_back(keys[i]), p.new_flows.push_back(f);
  }
  for (size_t i = 0; i < nat_keys.size() && i < nat_owners.size(); ++i) {
    auto it = at.find(nat_owners[i]);
    std::optional<clv_nat_key> held;
    clv_flow owner{};
    if (it != at.end()) {
      owner = flow_from_abi1(vals[it->second]);
      held = nat_key_of(nat_owners[i], owner);
    }
    // A binding the program left behind when its flow was evicted or moved
    // to another port: the program would have taken it over; not copied.
    if (!held || std::memcmp(&*held, &nat_keys[i], sizeof nat_keys[i]) != 0) {
      ++p.nat_dropped;
      continue;
    }
    if (is_assured(owner)) p.assured_nat_keys.push_back(nat_keys[i]), p.assured_nat_owners.push_back(nat_owners[i]);
    else p.new_nat_keys.push_back(nat_keys[i]), p.new_nat_owners.push_back(nat_owners[i]);
  }
  return p;
}

std::string describe(const MigrationCounts& c) {
  std::string s = fmt::format("{} flows ({} assured, {} unreplied) and {} NAT bindings ({} assured, {} unreplied)",
                              c.flows(), c.assured, c.unreplied, c.nat + c.nat_new, c.nat, c.nat_new);
  if (c.nat_dropped) s += fmt::format("; {} orphaned NAT bindings dropped", c.nat_dropped);
  if (c.present) s += fmt::format("; {} entries already there kept", c.present);
  if (c.full) s += fmt::format("; {} did not fit", c.full);
  return s;
}

}  // namespace clovis::agent::kernel
