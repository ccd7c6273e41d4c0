#include "flow_filter.hpp"

#include <algorithm>
#include <tuple>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "conntrack.hpp"

namespace clovis::core {

namespace {

Unexpected<Error> bad(const std::string& message) {
  return fail(ErrorCode::kInvalidArgument, message, "flow filter");
}

Result<std::vector<Cidr>> cidrs(const std::string& field, const std::vector<std::string>& in) {
  std::vector<Cidr> out;
  for (const auto& s : in) {
    auto c = Cidr::parse(s);
    if (!c) return bad(fmt::format("{} '{}' is not an address or a CIDR (e.g. 10.1.0.0/16)", field, s));
    if (c->host_bits_set())
      return bad(fmt::format("{} {} has host bits set; did you mean {}?", field, s, c->normalized().str()));
    out.push_back(*c);
  }
  return out;
}

Result<std::vector<uint16_t>> ports(const std::string& field, const std::vector<uint32_t>& in) {
  std::vector<uint16_t> out;
  for (uint32_t p : in) {
    if (p > 65535) return bad(fmt::format("{} {} is not a port (0-65535)", field, p));
    out.push_back(static_cast<uint16_t>(p));
  }
  return out;
}

template <typename T>
bool any_of_or_empty(const std::vector<T>& v, T x) {
  return v.empty() || std::find(v.begin(), v.end(), x) != v.end();
}

bool in_any(const std::vector<Cidr>& v, const IpAddr& a) {
  return std::any_of(v.begin(), v.end(), [&](const Cidr& c) { return c.contains(a); });
}

bool name_in(const std::vector<std::string>& v, std::string_view name) {
  return v.empty() || std::find(v.begin(), v.end(), name) != v.end();
}

}  // namespace

Result<uint32_t> FlowFilter::parse_port(std::string_view field, std::string_view text) {
  const bool digits = !text.empty() && text.size() <= 5 && text.find_first_not_of("0123456789") == std::string::npos;
  uint32_t v = 0;
  for (char c : digits ? text : std::string_view()) v = v * 10 + static_cast<uint32_t>(c - '0');
  if (!digits || v > 65535) return bad(fmt::format("{} '{}' is not a port (0-65535)", field, text));
  return v;
}

Result<FlowFilter> FlowFilter::parse(const FlowFilterSpec& spec, std::string_view prefix) {
  FlowFilter f;
  auto name = [&](const char* field) { return fmt::format("{}{}", prefix, field); };
  for (auto [field, in, out] : {std::tuple{"src", &spec.src, &f.src_}, std::tuple{"dst", &spec.dst, &f.dst_},
                                std::tuple{"ip", &spec.ip, &f.ip_}}) {
    auto c = cidrs(name(field), *in);
    if (!c) return Unexpected<Error>{c.error()};
    *out = std::move(*c);
  }
  for (auto [field, in, out] : {std::tuple{"port", &spec.port, &f.port_}, std::tuple{"sport", &spec.sport, &f.sport_},
                                std::tuple{"dport", &spec.dport, &f.dport_}}) {
    auto p = ports(name(field), *in);
    if (!p) return Unexpected<Error>{p.error()};
    *out = std::move(*p);
  }
  for (const auto& p : spec.proto) {
    auto n = parse_proto(p);
    if (!n) return bad(fmt::format("{} '{}' is not a protocol (tcp, udp, icmp, ... or 0-255)", name("proto"), p));
    f.proto_.push_back(*n);
  }
  const auto states = ct_state_names();
  for (const auto& s : spec.state)
    if (std::find(states.begin(), states.end(), s) == states.end())
      return bad(fmt::format("{} '{}' is not a connection state ({})", name("state"), s, fmt::join(states, ", ")));
  f.link_ = spec.link;
  f.rule_ = spec.rule;
  f.state_ = spec.state;
  return f;
}

FlowFilterSpec FlowFilter::spec() const {
  FlowFilterSpec s;
  for (auto [in, out] : {std::pair{&src_, &s.src}, std::pair{&dst_, &s.dst}, std::pair{&ip_, &s.ip}})
    for (const auto& c : *in) out->push_back(c.str());
  for (auto [in, out] : {std::pair{&port_, &s.port}, std::pair{&sport_, &s.sport}, std::pair{&dport_, &s.dport}})
    out->assign(in->begin(), in->end());
  for (uint8_t p : proto_) s.proto.push_back(proto_name(p));
  s.link = link_;
  s.rule = rule_;
  s.state = state_;
  return s;
}

bool FlowFilter::empty() const {
  return src_.empty() && dst_.empty() && ip_.empty() && port_.empty() && sport_.empty() && dport_.empty() &&
         proto_.empty() && link_.empty() && rule_.empty() && state_.empty();
}

bool FlowFilter::matches(const clv_flow_key& k, uint8_t state, const FlowNames& names) const {
  if (!any_of_or_empty(proto_, k.proto) || !any_of_or_empty(sport_, k.sport) || !any_of_or_empty(dport_, k.dport))
    return false;
  if (!name_in(state_, ct_state_name(k.proto, state))) return false;
  if (!port_.empty() && !any_of_or_empty(port_, k.sport) && !any_of_or_empty(port_, k.dport)) return false;
  if (!name_in(link_, names.link) || !name_in(rule_, names.rule)) return false;
  if (src_.empty() && dst_.empty() && ip_.empty()) return true;
  const auto family = k.family == CLV_AF_INET6 ? Family::kV6 : Family::kV4;
  const auto src = IpAddr::from_words(family, k.src), dst = IpAddr::from_words(family, k.dst);
  if (!src_.empty() && !in_any(src_, src)) return false;
  if (!dst_.empty() && !in_any(dst_, dst)) return false;
  return ip_.empty() || in_any(ip_, src) || in_any(ip_, dst);
}

}  // namespace clovis::core
