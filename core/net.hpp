// Addresses, prefixes, port ranges: parsing, formatting and the masks the
// compiled tables use. Pure value types.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace clovis::core {

enum class Family : uint8_t { kV4 = 4, kV6 = 6 };

struct IpAddr {
  Family family = Family::kV4;
  std::array<uint8_t, 16> bytes{};  // network order; IPv4 uses bytes[0..3]

  static std::optional<IpAddr> parse(std::string_view text);
  std::string str() const;
  int bits() const { return family == Family::kV4 ? 32 : 128; }
  // The four 32-bit words as the ABI stores them (network byte order in memory).
  std::array<uint32_t, 4> words() const;
  static IpAddr from_words(Family f, const uint32_t w[4]);
  bool operator==(const IpAddr&) const = default;
};

struct Cidr {
  IpAddr addr;
  uint8_t plen = 0;

  // Parses "a.b.c.d/n", "x::/n" or a bare address (a host prefix). Host bits
  // set below the prefix are an error the caller reports (see host_bits_set).
  static std::optional<Cidr> parse(std::string_view text);
  std::string str() const;
  bool host_bits_set() const;
  Cidr normalized() const;  // host bits cleared
  bool contains(const IpAddr& a) const;
  bool operator==(const Cidr&) const = default;
};

// Network-order mask words for a prefix length in a family.
std::array<uint32_t, 4> prefix_mask(Family f, int plen);

struct PortRange {
  uint16_t lo = 0;
  uint16_t hi = 65535;
  bool any() const { return lo == 0 && hi == 65535; }
  bool operator==(const PortRange&) const = default;
};

// A value/mask pair covering part of a range: value & mask == value.
struct PortPrefix {
  uint16_t value;
  uint16_t mask;
};

// Minimal set of prefixes exactly covering [lo, hi] (at most 30).
std::vector<PortPrefix> port_range_prefixes(PortRange r);
// Their number, without making them.
size_t port_range_prefix_count(PortRange r);

std::optional<std::array<uint8_t, 6>> parse_mac(std::string_view text);
std::string format_mac(const std::array<uint8_t, 6>& mac);

// Protocol names (tcp, udp, icmp, icmpv6, sctp, gre, esp...) or numbers 0-255.
std::optional<uint8_t> parse_proto(std::string_view text);
std::string proto_name(uint8_t proto);

// DSCP names (ef, af11..af43, cs0..cs7, va, le) or numbers 0-63.
std::optional<uint8_t> parse_dscp(std::string_view text);

// Durations: "500ms", "2s", "1m", "1.5s". Returns milliseconds.
std::optional<uint32_t> parse_duration_ms(std::string_view text);

}  // namespace clovis::core
