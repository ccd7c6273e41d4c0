#include "flow_query.hpp"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "net.hpp"

namespace clovis::core {

namespace {

std::optional<L7Facts> l7_facts(const FlowQuerySpec& s) {
  if (s.host.empty() && s.path.empty() && s.method.empty() && s.headers.empty()) return std::nullopt;
  L7Facts f{s.host, s.path.empty() ? "/" : s.path, s.method.empty() ? "GET" : s.method, s.headers};
  for (auto& c : f.method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return f;
}

}  // namespace

Result<FlowQuery> build_flow_query(const FlowQuerySpec& s, std::string_view prefix) {
  auto bad = [](const std::string& m) { return fail(ErrorCode::kInvalidArgument, m, "simulate"); };
  auto src = IpAddr::parse(s.src), dst = IpAddr::parse(s.dst);
  if (!src) return bad(fmt::format("{}src '{}' is not an IP address", prefix, s.src));
  if (!dst) return bad(fmt::format("{}dst '{}' is not an IP address", prefix, s.dst));
  if (src->family != dst->family)
    return bad(fmt::format("{0}src and {0}dst must be of the same address family", prefix));
  auto proto = parse_proto(s.proto);
  if (!proto) return bad(fmt::format("{}proto '{}' is not a protocol (tcp, udp, icmp, or 0-255)", prefix, s.proto));
  if (s.sport > 65535 || s.dport > 65535) return bad("ports are 0-65535");
  FlowQuery q;
  clv_tuple& t = q.tuple;
  t.family = src->family == Family::kV4 ? CLV_AF_INET : CLV_AF_INET6;
  auto sw = src->words(), dw = dst->words();
  std::copy(sw.begin(), sw.end(), t.src);
  std::copy(dw.begin(), dw.end(), t.dst);
  t.proto = *proto;
  t.sport = static_cast<uint16_t>(s.sport);
  t.dport = static_cast<uint16_t>(s.dport);
  if (!s.dscp.empty()) {
    auto d = parse_dscp(s.dscp);
    if (!d) return bad(fmt::format("{}dscp '{}' is not 0-63 or a DSCP name", prefix, s.dscp));
    t.dscp = *d;
  }
  t.mark = s.mark;
  q.iif = s.iif;
  for (const auto& [name, value] : s.headers)
    if (name.empty()) return bad("a header has no name");
  q.l7 = l7_facts(s);
  return q;
}

}  // namespace clovis::core
