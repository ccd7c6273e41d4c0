// Upgrades keep connections: a newer clovisd adopts the flow and NAT maps an
// older one left pinned by copying their entries into maps of today's layout
// (as Cilium migrates its maps across upgrades). docs/DESIGN.md, "Upgrades".
//
// This header has two halves. The decisions (which layout a pinned map has,
// how an ABI 1 flow converts, which table each flow and NAT binding goes to)
// are pure and unit-tested (tests/unit/test_map_migration.cpp, library
// clovis_map_migration). MapMigration below does the bpf syscalls and pins
// (map_migration_io.cpp, in clovis_kernel).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/abi.hpp"
#include "core/result.hpp"

namespace clovis::agent::kernel {

// A map's definition as the kernel reports it (bpf_map_info) and as libbpf
// compares it before re-using a pin.
struct MapDef {
  uint32_t type = 0;
  uint32_t key_size = 0;
  uint32_t value_size = 0;
  uint32_t max_entries = 0;
  uint32_t flags = 0;
  bool operator==(const MapDef&) const = default;
};

// The maps whose layout ABI 2 changed, in the order they are renamed aside.
// Their entries are copied; every other map keeps its layout.
inline constexpr std::array<std::string_view, 2> kMigratedMaps = {"clv_flows", "clv_nat"};
// Suffix of a pin set aside for copying ("clv_flows_v1"). Not ".v1": bpffs
// reserves names with a dot and refuses them (EPERM, seen on Linux 6.18).
inline constexpr std::string_view kAbi1Suffix = "_v1";

// The definition `name` had in ABI 1, when it is one of kMigratedMaps.
std::optional<MapDef> abi1_def(std::string_view name, uint32_t max_entries);

enum class PinnedLayout { kCurrent, kAbi1, kUnknown };

// What a pinned map is to this program, which wants `wanted` under `name`.
PinnedLayout classify_pinned(std::string_view name, const MapDef& pinned, const MapDef& wanted);

// "type LRU_HASH, this clovisd wants HASH; value 88 bytes, wants 96", for
// the error that refuses a map of unknown layout.
std::string describe_difference(const MapDef& pinned, const MapDef& wanted);

// The whole error text for a pinned map this clovisd can neither re-use nor migrate.
std::string unknown_layout_message(const std::string& path, const MapDef& pinned, const MapDef& wanted);

// A clv_flows value of ABI 1: exactly the first 88 bytes of today's clv_flow
// (state, ct_flags and padding were appended).
inline constexpr size_t kFlowAbi1Size = 88;
struct FlowAbi1 {
  uint8_t bytes[kFlowAbi1Size];
};
static_assert(offsetof(clv_flow, state) == kFlowAbi1Size, "ABI 2 appended to the ABI 1 clv_flow");

// An ABI 1 flow in today's layout. It has no state of its own: one that was
// ever replied to counts as established and assured (it is a connection to
// keep), one that was not as new.
clv_flow flow_from_abi1(const FlowAbi1& v1);
inline bool is_assured(const clv_flow& f) {
  return (f.ct_flags & CLV_CT_ASSURED) != 0;
}

// The NAT binding a translated flow holds (the key the program wrote into
// clv_nat for it), or none when the flow is not translated.
std::optional<clv_nat_key> nat_key_of(const clv_flow_key& k, const clv_flow& f);

// Where every entry of an ABI 1 flow and NAT table goes.
struct MigrationPlan {
  std::vector<clv_flow_key> assured_keys, new_keys;  // -> clv_flows, clv_flows_new
  std::vector<clv_flow> assured_flows, new_flows;
  std::vector<clv_nat_key> assured_nat_keys, new_nat_keys;  // -> clv_nat, clv_nat_new
  std::vector<clv_flow_key> assured_nat_owners, new_nat_owners;
  size_t nat_dropped = 0;  // owner flow gone, or no longer translated to this binding
};

// Each NAT binding goes with its owner flow (into the assured or the new
// table); one whose owner is not in `keys` or does not hold it is dropped.
MigrationPlan plan_abi1_migration(const std::vector<clv_flow_key>& keys, const std::vector<FlowAbi1>& vals,
                                  const std::vector<clv_nat_key>& nat_keys,
                                  const std::vector<clv_flow_key>& nat_owners);

// What one copy did, for the log line.
struct MigrationCounts {
  size_t assured = 0, unreplied = 0;  // flows written into clv_flows, clv_flows_new
  size_t nat = 0, nat_new = 0;        // bindings written into clv_nat, clv_nat_new
  size_t nat_dropped = 0;             // orphaned bindings left behind
  size_t present = 0;                 // already in the new tables (a resumed copy, or live): kept as they are
  size_t full = 0;                    // did not fit (the new tables filled up meanwhile)
  size_t flows() const { return assured + unreplied; }
};
std::string describe(const MigrationCounts& c);

// The thin kernel side. Before the program loads, prepare() checks every map
// that is pinned against what the program wants and sets ABI 1 flow and NAT
// maps aside (rename(2) to <name>_v1; a _v1 pin left by a crash is resumed).
// After load, copy() fills the new maps from the _v1 pins; finish(), once the
// new program is attached, copies what the old program added meanwhile and
// unlinks the _v1 pins. Entries already in the new maps are never overwritten.
class MapMigration {
 public:
  struct Wanted {
    std::string name;
    MapDef def;
  };
  struct Targets {
    int flows = -1, flows_new = -1, nat = -1, nat_new = -1;
  };

  // The flow table size a pinned clv_flows (or a clv_flows_v1 set aside) has.
  static std::optional<uint32_t> pinned_flow_table_size(const std::string& maps_dir);
  static core::Result<MapMigration> prepare(const std::string& maps_dir, const std::vector<Wanted>& wanted);

  bool pending() const { return pending_; }
  core::Result<MigrationCounts> copy(const Targets& t) const;
  core::Result<MigrationCounts> finish(const Targets& t);

 private:
  std::string maps_dir_;
  bool pending_ = false;
};

}  // namespace clovis::agent::kernel
