// Building and checking real packets for BPF_PROG_TEST_RUN: Ethernet + IPv4
// or IPv6 (+ optional IP options / IPv6 extension headers) + TCP, UDP or ICMP,
// with correct checksums.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/abi.hpp"

namespace clovis::test {

struct PacketSpec {
  clv_tuple tuple{};  // addresses, ports, proto, dscp, family
  uint8_t ttl = 64;
  uint16_t icmp_id = 0;  // ICMP echo identifier
  int ip_options = 0;    // 4-byte NOP words after the IPv4 header
  bool ipv6_hop_by_hop = false;
  bool ipv6_fragment = false;     // a fragment header: offset ipv6_frag_offset, M set
  uint16_t ipv6_frag_offset = 0;  // in 8-byte units
  int ipv6_dest_opts = 0;         // empty destination options headers before it all
  uint32_t frag_id = 7;           // IPv4: the low 16 bits
  bool ipv4_more_fragments = false;
  uint16_t ipv4_frag_offset = 0;  // in 8-byte units
  bool ipv4_dont_fragment = false;
  uint8_t tcp_flags = 0x02;  // TCP: SYN unless told (CLV_TCP_*)
  size_t payload = 18;
};

// A tuple from address strings (IPv4 or IPv6, the family of `src`); ports in
// host byte order. Throws std::invalid_argument on an unparseable address.
clv_tuple tuple(const char* src, const char* dst, uint8_t proto, uint16_t sport, uint16_t dport);

std::vector<uint8_t> build_packet(const PacketSpec& s);

// An ICMP (v4) or ICMPv6 error from `from` to the source of `frame` (an
// Ethernet frame of the same family), quoting the first `quote` bytes of its
// IP packet, as a router or the remote host sends it. `info` is the 4 bytes
// after the checksum (e.g. the next-hop MTU).
std::vector<uint8_t> build_icmp_error(const std::vector<uint8_t>& frame, const uint32_t from[4], uint8_t type,
                                      uint8_t code, size_t quote, uint32_t info = 0);

// Parsed view of a packet that came out of the program (for NAT checks).
struct Parsed {
  bool ok = false;
  uint8_t family = 0;
  uint32_t src[4]{}, dst[4]{};
  uint16_t sport = 0, dport = 0;
  uint8_t ttl = 0;
  bool ip_csum_ok = false;
  bool l4_csum_ok = false;
};

Parsed parse_packet(const std::vector<uint8_t>& p);

// The IP packet an ICMP error quotes, as a frame of its own (for
// parse_packet). Throws std::invalid_argument if the frame is too short.
std::vector<uint8_t> quoted_frame(const std::vector<uint8_t>& icmp_frame);

// Turns an ICMP(v4) echo request built by build_packet into another type.
void set_icmp_type(std::vector<uint8_t>& f, uint8_t type);

// An address as the four 32-bit words of clv_tuple (network byte order).
// Throws std::invalid_argument on an unparseable address.
std::array<uint32_t, 4> words(const char* a);

}  // namespace clovis::test
