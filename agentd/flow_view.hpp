// A flow-table entry as people see it: addresses as text, the action, and the
// names of its rule and link. The same naming as core::flow_json (clovisd
// --dump, `clovisctl flows -o json`; tests/unit/test_flow_filter.cpp holds
// them together), plus one thing only the agent can do: it keeps the rule sets
// of the last generations, so that flows classified before an apply (or
// before a restart) still show their rule's name.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "compiled.hpp"
#include "flow_filter.hpp"
#include "sessions.hpp"

namespace clovis::agent {

struct FlowView {
  std::string family;  // ipv4, ipv6
  std::string src, dst;
  uint16_t sport = 0, dport = 0;
  std::string proto;
  std::string action;  // steer, bypass, drop, not-steered, local
  std::string rule;    // empty for a local flow
  std::string link;    // empty when not steered
  uint32_t generation = 0;
  std::vector<std::string> flags;  // nat, proxy, migrated, local, last-resort
  std::string state;               // core::ct_state_name: established, unreplied, ...
  bool assured = false;            // CLV_CT_ASSURED: in the assured table
  double age_s = 0, idle_s = 0;
  std::string nat;  // "ADDR:PORT" / "[ADDR]:PORT" for a translated flow
  // What a proxy reported about this connection (ext_authz), if it did.
  std::optional<SessionFacts> l7;
  double l7_seen_s = 0;  // since the last report
};

using RulesPtr = std::shared_ptr<const core::CompiledRules>;

// Room for an address as text ("255.255.255.255", a full IPv6 address) or a
// made-up name ("#4294967295").
using TextBuf = std::array<char, 48>;

// A flow-table address as core::IpAddr::str() writes it (inet_ntop), into
// `buf`: listing a million flows formats two million of them.
std::string_view format_addr(const uint32_t w[4], uint8_t family, TextBuf& buf);

class FlowNamer {
 public:
  // `sets`: the running rule set first, then older ones; entries may be null.
  // `sessions`: proxies' reports, joined into each flow's view; may be null.
  explicit FlowNamer(std::vector<RulesPtr> sets, const SessionTable* sessions = nullptr);

  // "#ID" when the rule set that classified the flow is unknown.
  std::string rule(const clv_flow& f) const;
  // The link's name in the running rule set, else in the flow's, else "#SLOT".
  std::string link(const clv_flow& f) const;
  // The same without allocating: a name of a rule set, or the made-up name
  // in `buf`.
  std::string_view rule(const clv_flow& f, TextBuf& buf) const;
  std::string_view link(const clv_flow& f, TextBuf& buf) const;
  static bool local(const clv_flow& f) { return f.flags & CLV_FLOW_LOCAL; }
  static bool steered(const clv_flow& f) { return f.action == CLV_ACT_STEER && !local(f); }
  static const char* action(const clv_flow& f);

  FlowView view(const clv_flow_key& k, const clv_flow& f, uint64_t now_ns) const;
  // What a proxy reported about the flow's connection, if anything.
  std::optional<SessionFacts> session(const clv_flow_key& k) const;
  // Whether `filter` selects the flow (names computed only when it needs them).
  bool selects(const FlowFilter& filter, const clv_flow_key& k, const clv_flow& f) const;

 private:
  const core::CompiledRules* by_generation(uint32_t generation) const;
  std::vector<RulesPtr> sets_;
  const SessionTable* sessions_;
};

}  // namespace clovis::agent
