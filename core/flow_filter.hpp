// Flow filters as `hubble observe` has them: --src/--dst/--ip (address or
// CIDR), --port/--sport/--dport, --proto, --link, --rule, and --state (the
// connection state as core::ct_state_name names it). Values of one field
// are alternatives (any may match); different fields must all match. Empty
// fields match everything. Pure and shared: `clovisctl flows` checks and
// normalizes its options with it before sending clovis.v1.FlowFilter, and
// clovisd's service parses what arrives with it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "abi.hpp"
#include "net.hpp"
#include "result.hpp"

namespace clovis::core {

// As the client sends it: strings and numbers, not yet checked.
struct FlowFilterSpec {
  std::vector<std::string> src, dst, ip;  // "10.1.0.0/16", "10.1.0.5", "2001:db8::/32"
  std::vector<uint32_t> port, sport, dport;
  std::vector<std::string> proto;  // names or numbers
  std::vector<std::string> link, rule;
  std::vector<std::string> state;  // "established", "unreplied", ...
};

// The names a flow is shown with (see flow_row.hpp): empty when it has none.
struct FlowNames {
  std::string_view rule;
  std::string_view link;
};

class FlowFilter {
 public:
  // Errors (ErrorCode::kInvalidArgument) name the field and the bad value;
  // `prefix` goes before a field's name there: "--" for the CLI's options.
  static Result<FlowFilter> parse(const FlowFilterSpec& spec, std::string_view prefix = {});
  // A port as text, as an option gives it: "443"; an error names the field.
  static Result<uint32_t> parse_port(std::string_view field, std::string_view text);

  // The filter as a spec again, normalized: CIDRs as Cidr::str() writes
  // them, protocols by name. What the CLI sends.
  FlowFilterSpec spec() const;

  // `state`: the flow's clv_flow.state (CLV_CT_*).
  bool matches(const clv_flow_key& k, uint8_t state, const FlowNames& names) const;
  // True when no field restricts: every flow matches.
  bool empty() const;
  // True when matching needs the flow's rule or link name.
  bool needs_names() const { return !link_.empty() || !rule_.empty(); }

 private:
  std::vector<Cidr> src_, dst_, ip_;
  std::vector<uint16_t> port_, sport_, dport_;
  std::vector<uint8_t> proto_;
  std::vector<std::string> link_, rule_, state_;
};

}  // namespace clovis::core
