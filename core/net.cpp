#include "net.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cmath>
#include <cstring>

#include <fmt/format.h>

namespace clovis::core {

namespace {

bool parse_uint(std::string_view s, uint64_t max, uint64_t* out, int base = 10) {
  if (s.empty()) return false;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || p != s.data() + s.size() || v > max) return false;
  *out = v;
  return true;
}

}  // namespace

std::optional<IpAddr> IpAddr::parse(std::string_view text) {
  std::string s(text);
  IpAddr a;
  if (s.find(':') != std::string::npos) {
    a.family = Family::kV6;
    if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) != 1) return std::nullopt;
    return a;
  }
  // inet_pton(AF_INET) is strict dotted-quad: no octal, no short forms.
  a.family = Family::kV4;
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) != 1) return std::nullopt;
  return a;
}

std::string IpAddr::str() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(family == Family::kV4 ? AF_INET : AF_INET6, bytes.data(), buf, sizeof buf);
  return buf;
}

std::array<uint32_t, 4> IpAddr::words() const {
  std::array<uint32_t, 4> w{};
  std::memcpy(w.data(), bytes.data(), 16);
  return w;
}

IpAddr IpAddr::from_words(Family f, const uint32_t w[4]) {
  IpAddr a;
  a.family = f;
  std::memcpy(a.bytes.data(), w, 16);
  return a;
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
  Cidr c;
  auto slash = text.find('/');
  auto addr = IpAddr::parse(text.substr(0, slash));
  if (!addr) return std::nullopt;
  c.addr = *addr;
  if (slash == std::string_view::npos) {
    c.plen = static_cast<uint8_t>(addr->bits());
    return c;
  }
  uint64_t plen = 0;
  if (!parse_uint(text.substr(slash + 1), static_cast<uint64_t>(addr->bits()), &plen)) return std::nullopt;
  c.plen = static_cast<uint8_t>(plen);
  return c;
}

std::string Cidr::str() const {
  return fmt::format("{}/{}", addr.str(), plen);
}

std::array<uint32_t, 4> prefix_mask(Family f, int plen) {
  std::array<uint8_t, 16> m{};
  int nbytes = f == Family::kV4 ? 4 : 16;
  for (int i = 0; i < nbytes; ++i) {
    int bits = plen - i * 8;
    m[i] = bits >= 8 ? 0xff : bits <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - bits));
  }
  std::array<uint32_t, 4> w{};
  std::memcpy(w.data(), m.data(), 16);
  return w;
}

bool Cidr::host_bits_set() const {
  return !(normalized() == *this);
}

Cidr Cidr::normalized() const {
  auto w = addr.words();
  auto m = prefix_mask(addr.family, plen);
  for (int i = 0; i < 4; ++i) w[i] &= m[i];
  return Cidr{IpAddr::from_words(addr.family, w.data()), plen};
}

bool Cidr::contains(const IpAddr& a) const {
  if (a.family != addr.family) return false;
  auto w = a.words(), n = addr.words(), m = prefix_mask(addr.family, plen);
  for (int i = 0; i < 4; ++i)
    if ((w[i] & m[i]) != (n[i] & m[i])) return false;
  return true;
}

namespace {

// Calls each(value, mask) for the minimal aligned blocks covering r, in order.
template <typename F>
void for_each_port_block(PortRange r, F each) {
  uint32_t lo = r.lo, hi = r.hi;
  while (lo <= hi) {
    // Largest aligned block starting at lo that does not pass hi.
    uint32_t size = 1;
    while (size < 65536 && (lo & (size * 2 - 1)) == 0 && lo + size * 2 - 1 <= hi) size *= 2;
    each(static_cast<uint16_t>(lo), static_cast<uint16_t>(~(size - 1) & 0xffff));
    lo += size;
  }
}

}  // namespace

std::vector<PortPrefix> port_range_prefixes(PortRange r) {
  std::vector<PortPrefix> out;
  for_each_port_block(r, [&](uint16_t value, uint16_t mask) { out.push_back({value, mask}); });
  return out;
}

size_t port_range_prefix_count(PortRange r) {
  size_t n = 0;
  for_each_port_block(r, [&](uint16_t, uint16_t) { ++n; });
  return n;
}

std::optional<std::array<uint8_t, 6>> parse_mac(std::string_view text) {
  std::array<uint8_t, 6> mac{};
  if (text.size() != 17) return std::nullopt;
  for (int i = 0; i < 6; ++i) {
    uint64_t v = 0;
    if (i < 5 && text[i * 3 + 2] != ':' && text[i * 3 + 2] != '-') return std::nullopt;
    if (!parse_uint(text.substr(i * 3, 2), 0xff, &v, 16)) return std::nullopt;
    mac[i] = static_cast<uint8_t>(v);
  }
  return mac;
}

std::string format_mac(const std::array<uint8_t, 6>& m) {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5]);
}

namespace {

struct Named {
  const char* name;
  uint8_t value;
};

constexpr Named kProtos[] = {{"icmp", 1}, {"igmp", 2}, {"tcp", 6},     {"udp", 17},   {"gre", 47},
                             {"esp", 50}, {"ah", 51},  {"icmpv6", 58}, {"sctp", 132}, {"udplite", 136}};

constexpr Named kDscp[] = {{"cs0", 0},   {"le", 1},    {"cs1", 8},   {"af11", 10}, {"af12", 12}, {"af13", 14},
                           {"cs2", 16},  {"af21", 18}, {"af22", 20}, {"af23", 22}, {"cs3", 24},  {"af31", 26},
                           {"af32", 28}, {"af33", 30}, {"cs4", 32},  {"af41", 34}, {"af42", 36}, {"af43", 38},
                           {"cs5", 40},  {"va", 44},   {"ef", 46},   {"cs6", 48},  {"cs7", 56}};

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::optional<uint8_t> parse_proto(std::string_view text) {
  auto s = lower(text);
  for (const auto& p : kProtos)
    if (s == p.name) return p.value;
  uint64_t v = 0;
  if (parse_uint(s, 255, &v)) return static_cast<uint8_t>(v);
  return std::nullopt;
}

std::string proto_name(uint8_t proto) {
  for (const auto& p : kProtos)
    if (p.value == proto) return p.name;
  return std::to_string(proto);
}

std::optional<uint8_t> parse_dscp(std::string_view text) {
  auto s = lower(text);
  for (const auto& d : kDscp)
    if (s == d.name) return d.value;
  uint64_t v = 0;
  if (parse_uint(s, 63, &v)) return static_cast<uint8_t>(v);
  return std::nullopt;
}

std::optional<uint32_t> parse_duration_ms(std::string_view text) {
  std::string s(text);
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0) return std::nullopt;
  double v = 0;
  try {
    size_t used = 0;
    v = std::stod(s.substr(0, i), &used);
    if (used != i) return std::nullopt;
  } catch (...) {
    return std::nullopt;
  }
  std::string unit = s.substr(i);
  double ms;
  if (unit == "ms") ms = v;
  else if (unit == "s") ms = v * 1000;
  else if (unit == "m") ms = v * 60000;
  else return std::nullopt;
  if (ms < 0 || ms > 86400000.0 || ms != std::floor(ms)) return std::nullopt;
  return static_cast<uint32_t>(ms);
}

}  // namespace clovis::core
