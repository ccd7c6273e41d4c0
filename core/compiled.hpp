// CompiledRules: exactly what the BPF maps hold (ABI structs), plus the
// metadata user space needs to explain them (names, source positions) and the
// L7 table that only the proxy path uses.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "abi.hpp"
#include "diagnostics.hpp"
#include "model.hpp"
#include "sla.hpp"

namespace clovis::core {

struct RuleInfo {
  std::string name;
  uint32_t priority = 0;
  SourceLoc loc;
  TargetKind target = TargetKind::kBypass;
  std::string target_name;
  uint32_t entries = 0;  // kernel table entries this rule owns after compilation
  bool l7 = false;
  bool is_default = false;
};

struct LinkInfo {
  std::string name;  // empty: free slot
  std::string interface;
  SteerMode mode = SteerMode::kRoute;
  std::vector<std::string> labels;
  std::optional<Budget> budget;  // a metered link
};

struct PolicyInfo {
  std::string name;  // implicit policies of rules that name a link: "link:NAME"
  bool implicit = false;
  // metered: allow, and the implicit policies of rules that name a link
  // (that link is all they asked for): over-budget links stay in them.
  bool metered_allow = false;
};

// An L3/L4 match box in table form: a tuple matches when masking it with
// `shape` gives `key` (bank and shape fields zero).
struct MatchBox {
  clv_shape shape;
  clv_rule_key key;
};

struct L7Rule {
  uint32_t rule_id = 0;
  uint32_t priority = 0;
  std::optional<std::string> host;  // lower case; "*.x" suffix form kept as written
  std::optional<std::string> path_prefix;
  std::optional<std::string> method;
  std::vector<std::pair<std::string, std::string>> headers;  // lower-case name, value
  std::vector<MatchBox> boxes;                               // empty list: any L3/L4
  uint8_t action = CLV_ACT_NONE;
  uint16_t policy = 0;
};

struct CompiledRules {
  uint32_t generation = 0;

  // --- what the kernel reads (bank fields zero; the dataplane sets them) ---
  std::vector<clv_shape> shapes;  // sorted by min_priority
  std::vector<std::pair<clv_rule_key, clv_rule_val>> entries;
  clv_bank_meta meta{};
  std::vector<clv_policy> policies;
  std::array<clv_link, CLV_MAX_LINKS> links{};
  std::vector<std::string> iifs;  // iif_id - 1 -> interface name

  // --- explanation and the proxy path ---
  std::vector<RuleInfo> rules;  // index = rule_id; the last one is the default
  std::vector<PolicyInfo> policy_info;
  // Per policy (same index): its SLA class, strategy and fallback. The
  // kernel is given sla_policies(*this, qualities), not `policies`, when
  // one is active.
  std::vector<PolicySla> policy_sla;
  std::array<LinkInfo, CLV_MAX_LINKS> link_info{};
  std::vector<L7Rule> l7;                                             // sorted by priority
  std::unordered_map<std::string, std::vector<uint32_t>> l7_by_host;  // exact host -> l7 index
  std::vector<uint32_t> l7_wildcard_host;                             // "*.x" hosts
  std::vector<uint32_t> l7_any_host;                                  // no host condition
  OnDrop on_drop = OnDrop::kAllow;                                    // the mapping's proxy: on-drop

  int link_slot(const std::string& name) const;
  int policy_index(const std::string& name) const;
  uint32_t iif_id(const std::string& interface) const;  // 0 when no rule names it
  // link_state.v4/v6 masks from the links' next hops; up = every defined link.
  clv_link_state all_up_state() const;
};

struct CompileOptions {
  uint32_t generation = 1;
  // The running rule set, so that link slots (and the flows pinned to them)
  // stay where they are across applies.
  const CompiledRules* previous = nullptr;
};

struct CompileOutput {
  CompiledRules rules;
  Diagnostics diagnostics;  // limits (errors) and shadowed rules (warnings)
};

// Limits on the table entries (match boxes) rules expand to: a rule takes one
// per combination of src prefix, dst prefix (same family), proto, and aligned
// sport and dport block. compile() counts them for every rule before it
// expands any, so a mapping over a limit is refused at the cost of reading it.
// Entries are counted as written: two rules that expand to the same entry
// count twice, since that is only known by expanding. The per-mapping limit
// keeps compile within ~1 s and ~100 MB (docs/BENCHMARKS.md, "Bounded apply").
inline constexpr uint64_t kMaxEntriesPerRule = 65536;
inline constexpr uint64_t kMaxEntriesPerMapping = 1u << 19;
static_assert(kMaxEntriesPerMapping <= CLV_MAX_ENTRIES, "the kernel table holds every entry");

CompileOutput compile(const Mapping& m, const CompileOptions& opts = {});

// The policies as the kernel is to hold them for these link qualities:
// `policies` with each active SLA applied (decide_sla). Equal to `policies`
// when no policy has an SLA or strategy, and when every SLA is met.
// `held_out`, per policy: decide_sla's held_out (SlaMoves' hysteresis).
std::vector<clv_policy> sla_policies(const CompiledRules& c, const LinkQualities& q,
                                     const std::vector<uint64_t>* held_out = nullptr);
bool has_sla(const CompiledRules& c);
// Byte for byte (clv_policy has no operator==; its padding is always zero).
bool same_policies(const std::vector<clv_policy>& a, const std::vector<clv_policy>& b);

// The policy routing clovisd gives a link, whatever its mode: "ip rule fwmark
// MARK lookup TABLE" and a default route in TABLE, for each address family
// the link has a next hop in (a point-to-point link: both). A local socket
// with SO_MARK = mark leaves by the link in those families; in the others no
// rule matches its mark and the main table routes it.
struct LinkRouting {
  int slot = 0;
  std::string name;
  std::string interface;
  SteerMode mode = SteerMode::kRoute;
  uint32_t mark = 0;
  uint32_t table = 0;
  bool v4 = false;
  bool v6 = false;
};

// Every defined link of a compiled rule set, in slot order.
std::vector<LinkRouting> link_routing(const CompiledRules& c);

// A stand-in for a running rule set that knows only which slot holds which
// link. Compiling a mapping with it as CompileOptions::previous puts the links
// in those slots, and so gives them the marks and tables a clovisd that holds
// them there uses (default marks and tables are derived from slots).
CompiledRules slot_layout(const std::vector<std::pair<std::string, int>>& slots);

inline constexpr uint32_t kDefaultTableBase = 100;   // table = base + slot
inline constexpr uint32_t kDefaultMarkStep = 0x100;  // mark = step * (slot + 1)

}  // namespace clovis::core
