// The classifier: walks CompiledRules exactly as the TC program walks the BPF
// maps (same shapes, same masking, same keys, same pick), and explains what
// it did. The simulator is this class; the kernel differential tests hold the
// BPF program to it.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "compiled.hpp"
#include "rule_table.hpp"

namespace clovis::core {

struct L7Facts {
  std::string host;
  std::string path;
  std::string method;
  std::vector<std::pair<std::string, std::string>> headers;  // names any case
};

struct FlowQuery {
  clv_tuple tuple{};  // iif_id is filled in from `iif`
  std::string iif;    // ingress interface name, may be empty
  std::optional<L7Facts> l7;
};

enum class Verdict { kSteer, kBypass, kDrop, kNotSteered };

struct ShapeProbe {
  uint8_t shape = 0;
  bool hit = false;
  bool better = false;  // the hit improved on the best so far
  uint32_t rule_id = 0;
  uint32_t priority = 0;
};

struct L7Check {
  uint32_t rule_id = 0;
  std::string why_not;  // empty: matched
};

struct MemberNote {
  int slot = -1;
  uint8_t tier = 0;
  uint16_t weight = 0;
  std::string state;  // up, down, degraded, no-ipv4, no-ipv6
  bool chosen = false;
  std::string note;
};

struct Decision {
  Verdict verdict = Verdict::kNotSteered;
  std::optional<uint32_t> rule_id;  // includes the default pseudo-rule
  bool by_l7 = false;
  int policy = -1;
  int member = -1;
  int link = -1;
  uint32_t hash = 0;
  bool last_resort = false;
  std::vector<ShapeProbe> probes;
  int shapes_total = 0;
  int shapes_other_family = 0;
  std::vector<L7Check> l7_checked;
  std::vector<MemberNote> members;
  // With link qualities (decide(q, state, quality)) and a policy with an SLA
  // or strategy: each member's standing, in member order.
  bool sla_applied = false;
  bool none_in_sla = false;  // the policy's fallback decided
  std::vector<MemberSla> sla;
};

class Classifier {
 public:
  explicit Classifier(const CompiledRules& c);
  // It keeps a reference: a temporary would dangle.
  Classifier(const CompiledRules&&) = delete;

  // L3/L4 lookup, the kernel's walk. nullopt: no rule (the default applies).
  std::optional<clv_rule_val> lookup(const clv_tuple& t, std::vector<ShapeProbe>* trace = nullptr) const;

  // Full decision: L3/L4 (+ L7 when the query has L7 facts), policy, link.
  Decision decide(const FlowQuery& q, const clv_link_state& state) const;
  // The same with the policies as the agent programs them for these link
  // qualities (sla_policies), each member's SLA standing explained.
  // `held_out`, per policy: links held out of SLA by hysteresis
  // (Agent::sla_held_out; empty offline: none). `over_budget` (slots): links
  // that leave the policies without metered: allow (budget_policies), as the
  // agent programs them.
  Decision decide(const FlowQuery& q, const clv_link_state& state, const LinkQualities& quality,
                  const std::vector<uint64_t>& held_out = {}, uint64_t over_budget = 0) const;

  const CompiledRules& compiled() const { return c_; }

 private:
  std::optional<uint32_t> match_l7(const FlowQuery& q, uint32_t below, Decision* d) const;
  Decision decide(const FlowQuery& q, const clv_link_state& state, const LinkQualities* quality,
                  const std::vector<uint64_t>* held_out, uint64_t over_budget) const;
  void pick(const clv_tuple& t, uint16_t policy, const clv_link_state& st, const LinkQualities* quality,
            const std::vector<uint64_t>* held_out, uint64_t over_budget, Decision* d) const;

  // A clv_shape as word masks in clv_rule_key's layout: AND with the tuple
  // in that layout, OR in `tag`, and the result is clv_mask_tuple's key.
  struct ShapeMask {
    RuleKeyWords mask;
    uint64_t tag;  // the shape index in the key's shape byte
    uint32_t min_priority;
    uint8_t family;
  };

  const CompiledRules& c_;
  std::vector<ShapeMask> shapes_;
  RuleTable table_;
};

// Host as the L7 table keys it: lower case, no port, no trailing dot.
std::string normalize_host(std::string_view host);

const char* to_string(Verdict v);

}  // namespace clovis::core
