// Connection tracking as the user sees it: how long an idle flow lives in each
// state (conntrack's defaults, which the operators of these sites already
// trust) and what each state is called. The state machine itself is
// clv_ct_next() in clovis/abi.h, shared with the program.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "result.hpp"

namespace clovis::core {

// Seconds an idle flow lives, by protocol and state. The defaults are Linux
// 6.x's nf_conntrack sysctls (net.netfilter.nf_conntrack_*_timeout*).
struct FlowTimeouts {
  uint32_t tcp_syn_sent = 120;
  uint32_t tcp_syn_recv = 60;
  uint32_t tcp_established = 432000;  // 5 days
  uint32_t tcp_fin_wait = 120;
  uint32_t tcp_time_wait = 120;
  uint32_t tcp_close = 10;
  uint32_t udp = 30;          // unreplied
  uint32_t udp_stream = 120;  // replied
  uint32_t icmp = 30;
  uint32_t generic = 600;  // any other protocol

  bool operator==(const FlowTimeouts&) const = default;
};

// The names `--flow-timeout` takes, in the order of FlowTimeouts' fields.
std::span<const std::string_view> flow_timeout_names();

// Applies "NAME=DURATION[,NAME=DURATION...]" to `base` (DURATION: seconds, or
// a number with s, m, h or d). An error names the item and what is accepted.
Result<FlowTimeouts> parse_flow_timeouts(std::string_view spec, FlowTimeouts base);

// "tcp-established=432000,..." for every name: what --flow-timeout would say.
std::string format_flow_timeouts(const FlowTimeouts& t);

// How long a flow of `proto` (IPPROTO_*) in `state` (CLV_CT_*) lives idle.
uint32_t flow_timeout_s(const FlowTimeouts& t, uint8_t proto, uint8_t state);

// The shortest of all: how often expiry must look.
uint32_t shortest_flow_timeout_s(const FlowTimeouts& t);

// "syn-sent", "established", ... for TCP; "unreplied" / "replied" for others.
std::string_view ct_state_name(uint8_t proto, uint8_t state);

// Every name ct_state_name gives a known state, TCP's first: what
// `clovisctl flows --state` accepts.
std::span<const std::string_view> ct_state_names();

// A state whatever the protocol, for what is counted by state alone (flows
// expired, in Status): "new", "syn-recv", "established", "fin-wait",
// "time-wait", "close" (CLV_CT_*'s names); "" past CLV_CT_STATES.
std::string_view ct_state_key(uint8_t state);
// The same for people: "syn-sent/unreplied" for new, "established/replied"
// for established, else the key.
std::string_view ct_state_label(uint8_t state);

}  // namespace clovis::core
