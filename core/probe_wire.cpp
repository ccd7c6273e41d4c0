#include "probe_wire.hpp"

#include <charconv>

#include <fmt/format.h>

namespace clovis::core {

namespace {

std::optional<uint16_t> parse_port(std::string_view s) {
  uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v == 0 || v > 65535) return std::nullopt;
  return static_cast<uint16_t>(v);
}

std::string host_port(const IpAddr& a, uint16_t port, uint16_t default_port) {
  std::string h = a.family == Family::kV6 ? "[" + a.str() + "]" : a.str();
  return port == default_port ? h : fmt::format("{}:{}", h, port);
}

}  // namespace

std::string probe_label(const Probe& p) {
  switch (p.kind) {
    case ProbeKind::kIcmp: return "icmp " + p.target.str();
    case ProbeKind::kTcp: return "tcp " + host_port(p.target, p.port, 0);
    case ProbeKind::kHttp: return "http " + host_port(p.target, p.port, 80) + p.path;
    case ProbeKind::kDns: {
      std::string s = "dns " + host_port(p.target, p.port, 53);
      return p.name == kDnsDefaultName || p.name.empty() ? s : s + " " + p.name;
    }
  }
  return "?";
}

std::optional<HttpUrl> parse_http_url(std::string_view text, UrlError* err) {
  constexpr std::string_view kScheme = "http://";
  if (text.substr(0, kScheme.size()) != kScheme) {
    *err = {fmt::format("'{}' is not an http:// URL", text),
            text.starts_with("https://") ? "the probe speaks plain HTTP; write http://ADDRESS[:PORT]/PATH"
                                         : "write http://ADDRESS[:PORT]/PATH"};
    return std::nullopt;
  }
  std::string_view rest = text.substr(kScheme.size());
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  HttpUrl u;
  if (slash != std::string_view::npos) u.path = std::string(rest.substr(slash));
  if (u.path.find_first_of(" \t\r\n") != std::string::npos) {
    *err = {fmt::format("the path of '{}' has white space", text), "percent-encode it (%20)"};
    return std::nullopt;
  }
  std::string_view host = authority;
  if (!authority.empty() && authority[0] == '[') {
    const size_t close = authority.find(']');
    host = authority.substr(1, close == std::string_view::npos ? std::string_view::npos : close - 1);
    authority = close == std::string_view::npos ? std::string_view{} : authority.substr(close + 1);
  } else {
    const size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    authority = colon == std::string_view::npos ? std::string_view{} : authority.substr(colon);
  }
  if (!authority.empty()) {  // ":PORT" is all that may follow the host
    auto port = authority[0] == ':' ? parse_port(authority.substr(1)) : std::nullopt;
    if (!port) {
      *err = {fmt::format("'{}' is not a port 1-65535", authority.substr(authority[0] == ':' ? 1 : 0)), ""};
      return std::nullopt;
    }
    u.port = *port;
  }
  auto a = IpAddr::parse(host);
  if (!a) {
    *err = {fmt::format("'{}' is not an IP address", host),
            "probe targets are addresses, not host names (no DNS on a dead link); write IPv6 in brackets"};
    return std::nullopt;
  }
  u.addr = *a;
  return u;
}

std::string http_request(const IpAddr& addr, uint16_t port, std::string_view path) {
  return fmt::format("GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: clovisd-probe\r\nConnection: close\r\n\r\n", path,
                     host_port(addr, port, 80));
}

int http_status(std::string_view head) {
  const size_t eol = head.find('\n');
  // "HTTP/1.1 200" is the shortest useful prefix; wait for the whole line.
  if (eol == std::string_view::npos) return head.size() > 1024 ? -1 : 0;
  std::string_view line = head.substr(0, eol);
  if (!line.starts_with("HTTP/1.") || line.size() < 12 || line[8] != ' ') return -1;
  std::string_view code = line.substr(9, 3);
  int v = 0;
  auto [p, ec] = std::from_chars(code.data(), code.data() + 3, v);
  if (ec != std::errc() || p != code.data() + 3 || v < 100 || v > 599) return -1;
  if (line.size() > 12 && line[12] != ' ' && line[12] != '\r') return -1;
  return v;
}

std::string dns_name_problem(std::string_view name) {
  if (name == ".") return {};
  if (name.empty()) return "an empty name";
  if (name.back() == '.') name.remove_suffix(1);
  if (name.size() > 253) return "longer than 253 characters";
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string_view::npos) dot = name.size();
    const size_t len = dot - start;
    if (len == 0) return "an empty label (two dots in a row)";
    if (len > 63) return "a label longer than 63 characters";
    for (char c : name.substr(start, len))
      if (static_cast<unsigned char>(c) <= ' ' || static_cast<unsigned char>(c) >= 0x7f)
        return "a space or a control or non-ASCII character";
    start = dot + 1;
  }
  return {};
}

std::vector<uint8_t> dns_query(uint16_t id, std::string_view name) {
  // Header: id, flags RD, one question.
  std::vector<uint8_t> q{static_cast<uint8_t>(id >> 8), static_cast<uint8_t>(id), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
  const bool root = name == "." || name.empty();
  if (!root && name.back() == '.') name.remove_suffix(1);
  while (!root && !name.empty()) {
    const size_t dot = name.find('.');
    std::string_view label = name.substr(0, dot);
    q.push_back(static_cast<uint8_t>(label.size()));
    q.insert(q.end(), label.begin(), label.end());
    name = dot == std::string_view::npos ? std::string_view{} : name.substr(dot + 1);
  }
  q.push_back(0);
  const uint8_t qtype = root ? 2 : 1;   // NS, A
  q.insert(q.end(), {0, qtype, 0, 1});  // class IN
  return q;
}

std::optional<int> dns_response_rcode(std::span<const uint8_t> msg, uint16_t id) {
  if (msg.size() < 12) return std::nullopt;
  if ((msg[0] << 8 | msg[1]) != id || !(msg[2] & 0x80)) return std::nullopt;
  return msg[3] & 0x0f;
}

std::string dns_rcode_name(int rcode) {
  static constexpr std::string_view kNames[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"};
  if (rcode >= 0 && rcode < 6) return std::string(kNames[rcode]);
  return fmt::format("rcode {}", rcode);
}

}  // namespace clovis::core
