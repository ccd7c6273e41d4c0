// A flow-table entry as people see it: the one model of a flow row that the
// agent's ListFlows/WatchFlows messages, `clovisctl flows -o json` and
// `clovisd --dump` are all written from (json/flow_json.hpp writes its JSON,
// agentd/service/convert.cpp its clovis.v1.Flow). Text fields are views into
// a FlowRowText, so that a row costs no allocation: WatchFlows and ListFlows
// make one per flow, up to a million of them.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "abi.hpp"
#include "compiled.hpp"

namespace clovis::core {

// Every flow flag (clv_flow.flags) and its name, in the order rows list them.
// Adding a flag is adding it here.
struct FlowFlag {
  uint8_t bit;
  std::string_view name;
};
inline constexpr FlowFlag kFlowFlags[] = {{CLV_FLOW_NAT, "nat"},
                                          {CLV_FLOW_PROXY, "proxy"},
                                          {CLV_FLOW_MIGRATED, "migrated"},
                                          {CLV_FLOW_LOCAL, "local"},
                                          {CLV_FLOW_LAST_RESORT, "last-resort"}};
// The bit of a flag's name; nullopt for a name this build does not know.
std::optional<uint8_t> flow_flag_bit(std::string_view name);

inline bool flow_local(const clv_flow& f) {
  return f.flags & CLV_FLOW_LOCAL;
}
inline bool flow_steered(const clv_flow& f) {
  return f.action == CLV_ACT_STEER && !flow_local(f);
}
// steer, bypass, drop, not-steered, local.
std::string_view flow_action_name(const clv_flow& f);

// Room for an address as text ("255.255.255.255", a full IPv6 address), an
// "[ADDR]:PORT" or a made-up name ("#4294967295").
using TextBuf = std::array<char, 56>;

// A flow-table address as IpAddr::str() writes it (inet_ntop), into `buf`:
// listing a million flows formats two million of them.
std::string_view format_addr(const uint32_t w[4], uint8_t family, TextBuf& buf);

using RulesPtr = std::shared_ptr<const CompiledRules>;

// The names of a flow's rule and link. It keeps the rule sets of the last
// generations, so that flows classified before an apply (or a restart) still
// show their rule's name.
class FlowNaming {
 public:
  // `sets`: the running rule set first, then older ones; entries may be null.
  explicit FlowNaming(std::vector<RulesPtr> sets) : sets_(std::move(sets)) {}

  // A name of a rule set, or the made-up "#ID" in `buf` when the rule set
  // that classified the flow is unknown.
  std::string_view rule(const clv_flow& f, TextBuf& buf) const;
  // The link's name in the running rule set, else in the flow's, else "#SLOT".
  std::string_view link(const clv_flow& f, TextBuf& buf) const;

 private:
  const CompiledRules* by_generation(uint32_t generation) const;
  std::vector<RulesPtr> sets_;
};

struct FlowRow {
  std::string_view family;  // ipv4, ipv6
  std::string_view src, dst;
  uint16_t sport = 0, dport = 0;
  std::string_view proto;
  std::string_view action;  // flow_action_name
  std::string_view rule;    // empty for a local flow
  std::string_view link;    // empty when not steered
  uint32_t generation = 0;
  uint8_t flags = 0;       // CLV_FLOW_*: kFlowFlags names them
  std::string_view state;  // ct_state_name: established, unreplied, ...; empty from an old clovisd
  bool assured = false;    // CLV_CT_ASSURED: in the assured table
  uint64_t packets_out = 0, bytes_out = 0, packets_in = 0, bytes_in = 0;
  double age_s = 0, idle_s = 0;
  std::string_view nat;  // "ADDR:PORT" / "[ADDR]:PORT" for a translated flow

  // Views compare by content: two rows are equal when they read the same.
  bool operator==(const FlowRow&) const = default;
};

// Where a row's formatted text lives.
struct FlowRowText {
  TextBuf src, dst, proto, rule, link, nat;
};

// Seconds from `t` to `now_ns`; 0 for an unset or future time.
inline double seconds_since(uint64_t t, uint64_t now_ns) {
  return t && now_ns > t ? static_cast<double>(now_ns - t) / 1e9 : 0.0;
}

FlowRow flow_row(const FlowNaming& names, const clv_flow_key& k, const clv_flow& f, uint64_t now_ns, FlowRowText& text);

}  // namespace clovis::core
