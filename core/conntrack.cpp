#include "conntrack.hpp"

#include <algorithm>
#include <array>
#include <charconv>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "abi.hpp"

namespace clovis::core {

namespace {

constexpr uint8_t kTcp = 6, kUdp = 17, kUdpLite = 136, kIcmp = 1, kIcmp6 = 58;

constexpr std::array<std::string_view, 10> kNames = {
    "tcp-syn-sent", "tcp-syn-recv", "tcp-established", "tcp-fin-wait", "tcp-time-wait",
    "tcp-close",    "udp",          "udp-stream",      "icmp",         "generic"};

// The field each name sets, in kNames' order.
std::array<uint32_t*, kNames.size()> fields(FlowTimeouts& t) {
  return {&t.tcp_syn_sent, &t.tcp_syn_recv, &t.tcp_established, &t.tcp_fin_wait, &t.tcp_time_wait,
          &t.tcp_close,    &t.udp,          &t.udp_stream,      &t.icmp,         &t.generic};
}

// Seconds, or a number with s, m, h or d; at least 1 s, at most 30 days
// (longer than any NAT'd connection is kept by anyone).
Result<uint32_t> parse_seconds(std::string_view name, std::string_view text) {
  uint64_t v = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  uint64_t unit = 1;
  if (ec == std::errc{} && p + 1 == end) {
    switch (*p) {
      case 's': unit = 1; break;
      case 'm': unit = 60; break;
      case 'h': unit = 3600; break;
      case 'd': unit = 86400; break;
      default: p = nullptr;
    }
    if (p) p = end;
  }
  constexpr uint64_t kMax = 30ull * 86400;
  if (ec != std::errc{} || p != end || v == 0 || v > kMax / unit)
    return fail(ErrorCode::kInvalidArgument,
                fmt::format("'{}' is not a duration between 1s and 30d: give seconds, or a number "
                            "with s, m, h or d (300, 5m, 5d)",
                            text),
                fmt::format("--flow-timeout {}", name));
  return static_cast<uint32_t>(v * unit);
}

}  // namespace

std::span<const std::string_view> flow_timeout_names() {
  return kNames;
}

Result<FlowTimeouts> parse_flow_timeouts(std::string_view spec, FlowTimeouts base) {
  auto slots = fields(base);
  while (!spec.empty()) {
    const size_t comma = spec.find(',');
    const std::string_view item = spec.substr(0, comma);
    spec = comma == std::string_view::npos ? std::string_view{} : spec.substr(comma + 1);
    const size_t eq = item.find('=');
    const std::string_view name = item.substr(0, eq);
    const auto at = std::find(kNames.begin(), kNames.end(), name);
    if (eq == std::string_view::npos || at == kNames.end())
      return fail(ErrorCode::kInvalidArgument,
                  fmt::format("'{}' is not NAME=DURATION with NAME one of: {}", item, fmt::join(kNames, ", ")),
                  "--flow-timeout");
    auto s = parse_seconds(name, item.substr(eq + 1));
    if (!s) return error_of(s);
    *slots[static_cast<size_t>(at - kNames.begin())] = *s;
  }
  return base;
}

std::string format_flow_timeouts(const FlowTimeouts& t) {
  FlowTimeouts copy = t;
  auto slots = fields(copy);
  std::string out;
  for (size_t i = 0; i < kNames.size(); ++i) out += fmt::format("{}{}={}", i ? "," : "", kNames[i], *slots[i]);
  return out;
}

uint32_t flow_timeout_s(const FlowTimeouts& t, uint8_t proto, uint8_t state) {
  switch (proto) {
    case kTcp:
      switch (state) {
        case CLV_CT_NEW: return t.tcp_syn_sent;
        case CLV_CT_SYN_RECV: return t.tcp_syn_recv;
        case CLV_CT_ESTABLISHED: return t.tcp_established;
        case CLV_CT_FIN_WAIT: return t.tcp_fin_wait;
        case CLV_CT_TIME_WAIT: return t.tcp_time_wait;
        default: return t.tcp_close;
      }
    case kUdp:
    case kUdpLite: return state == CLV_CT_NEW ? t.udp : t.udp_stream;
    case kIcmp:
    case kIcmp6: return t.icmp;
    default: return t.generic;
  }
}

uint32_t shortest_flow_timeout_s(const FlowTimeouts& t) {
  FlowTimeouts copy = t;
  uint32_t m = UINT32_MAX;
  for (uint32_t* f : fields(copy)) m = std::min(m, *f);
  return m;
}

std::string_view ct_state_name(uint8_t proto, uint8_t state) {
  if (proto == kTcp) {
    switch (state) {
      case CLV_CT_NEW: return "syn-sent";
      case CLV_CT_SYN_RECV: return "syn-recv";
      case CLV_CT_ESTABLISHED: return "established";
      case CLV_CT_FIN_WAIT: return "fin-wait";
      case CLV_CT_TIME_WAIT: return "time-wait";
      case CLV_CT_CLOSE: return "close";
      default: return "unknown";
    }
  }
  return state == CLV_CT_NEW ? "unreplied" : "replied";
}

std::span<const std::string_view> ct_state_names() {
  static constexpr std::array<std::string_view, 8> kStates = {"syn-sent",  "syn-recv", "established", "fin-wait",
                                                              "time-wait", "close",    "unreplied",   "replied"};
  return kStates;
}

namespace {

constexpr std::array<std::string_view, CLV_CT_STATES> kStateKeys = {"new",      "syn-recv",  "established",
                                                                    "fin-wait", "time-wait", "close"};
constexpr std::array<std::string_view, CLV_CT_STATES> kStateLabels = {
    "syn-sent/unreplied", "syn-recv", "established/replied", "fin-wait", "time-wait", "close"};

}  // namespace

std::string_view ct_state_key(uint8_t state) {
  return state < kStateKeys.size() ? kStateKeys[state] : "";
}

std::string_view ct_state_label(uint8_t state) {
  return state < kStateLabels.size() ? kStateLabels[state] : "";
}

}  // namespace clovis::core
