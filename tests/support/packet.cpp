#include "packet.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "core/net.hpp"

namespace clovis::test {

namespace {

uint32_t sum16(const uint8_t* p, size_t n, uint32_t acc = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) acc += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n & 1) acc += static_cast<uint32_t>(p[n - 1] << 8);
  return acc;
}

uint16_t fold(uint32_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(~acc & 0xffff);
}

void put16(std::vector<uint8_t>& v, size_t off, uint16_t x) {
  v[off] = static_cast<uint8_t>(x >> 8);
  v[off + 1] = static_cast<uint8_t>(x);
}

bool has_ports(uint8_t p) {
  return p == 6 || p == 17 || p == 132 || p == 136;
}

size_t l4_len(uint8_t proto) {
  return proto == 6 ? 20 : proto == 17 ? 8 : (proto == 1 || proto == 58) ? 8 : 4;
}

// Pseudo-header sum for the L4 checksum.
uint32_t pseudo(const std::vector<uint8_t>& v, size_t l3, bool v6, uint8_t proto, size_t len) {
  uint32_t acc = v6 ? sum16(&v[l3 + 8], 32) : sum16(&v[l3 + 12], 8);
  return acc + proto + static_cast<uint32_t>(len);
}

}  // namespace

clv_tuple tuple(const char* src, const char* dst, uint8_t proto, uint16_t sport, uint16_t dport) {
  clv_tuple t{};
  auto s = core::IpAddr::parse(src), d = core::IpAddr::parse(dst);
  if (!s || !d) throw std::invalid_argument(std::string("not an address: ") + (s ? dst : src));
  t.family = s->family == core::Family::kV4 ? CLV_AF_INET : CLV_AF_INET6;
  auto sw = s->words(), dw = d->words();
  std::memcpy(t.src, sw.data(), 16);
  std::memcpy(t.dst, dw.data(), 16);
  t.proto = proto;
  t.sport = sport;
  t.dport = dport;
  return t;
}

std::vector<uint8_t> build_packet(const PacketSpec& s) {
  const clv_tuple& t = s.tuple;
  const bool v6 = t.family == CLV_AF_INET6;
  const uint8_t proto = t.proto;
  std::vector<uint8_t> p(14, 0);
  p[0] = 0x02, p[5] = 0x01;   // dst mac 02:00:00:00:00:01
  p[6] = 0x02, p[11] = 0x02;  // src mac
  put16(p, 12, v6 ? 0x86dd : 0x0800);
  const size_t l3 = p.size();
  size_t ext = 0;
  if (v6) {
    p.resize(l3 + 40);
    p[l3] = static_cast<uint8_t>(0x60 | (t.dscp >> 2));
    p[l3 + 1] = static_cast<uint8_t>((t.dscp & 3) << 6);
    p[l3 + 7] = s.ttl;
    std::memcpy(&p[l3 + 8], t.src, 16);
    std::memcpy(&p[l3 + 24], t.dst, 16);
    uint8_t next = proto;
    std::vector<uint8_t> exts;
    if (s.ipv6_fragment) {
      const uint16_t off = static_cast<uint16_t>(s.ipv6_frag_offset << 3 | 1);  // M=1
      exts = {next,
              0,
              static_cast<uint8_t>(off >> 8),
              static_cast<uint8_t>(off),
              static_cast<uint8_t>(s.frag_id >> 24),
              static_cast<uint8_t>(s.frag_id >> 16),
              static_cast<uint8_t>(s.frag_id >> 8),
              static_cast<uint8_t>(s.frag_id)};
      next = 44;
    }
    for (int i = 0; i < s.ipv6_dest_opts; ++i) {
      std::vector<uint8_t> dst_opts = {next, 0, 1, 4, 0, 0, 0, 0};  // PadN
      exts.insert(exts.begin(), dst_opts.begin(), dst_opts.end());
      next = 60;
    }
    if (s.ipv6_hop_by_hop) {
      std::vector<uint8_t> hbh = {next, 0, 1, 4, 0, 0, 0, 0};  // PadN
      exts.insert(exts.begin(), hbh.begin(), hbh.end());
      next = 0;
    }
    p[l3 + 6] = next;
    p.insert(p.end(), exts.begin(), exts.end());
    ext = exts.size();
  } else {
    const size_t ihl = 5 + static_cast<size_t>(s.ip_options);
    p.resize(l3 + ihl * 4);
    p[l3] = static_cast<uint8_t>(0x40 | ihl);
    p[l3 + 1] = static_cast<uint8_t>(t.dscp << 2);
    uint16_t frag = static_cast<uint16_t>((s.ipv4_dont_fragment ? 0x4000 : 0) | (s.ipv4_more_fragments ? 0x2000 : 0) |
                                          s.ipv4_frag_offset);
    put16(p, l3 + 6, frag);
    put16(p, l3 + 4, static_cast<uint16_t>(s.frag_id));
    p[l3 + 8] = s.ttl;
    p[l3 + 9] = proto;
    std::memcpy(&p[l3 + 12], t.src, 4);
    std::memcpy(&p[l3 + 16], t.dst, 4);
    for (size_t i = 20; i < ihl * 4; ++i) p[l3 + i] = 1;  // NOP options
  }
  const size_t l4 = p.size();
  const size_t len4 = l4_len(proto) + s.payload;
  p.resize(l4 + len4, 0xab);
  std::memset(&p[l4], 0, l4_len(proto));
  if (has_ports(proto)) {
    put16(p, l4, t.sport);
    put16(p, l4 + 2, t.dport);
  }
  if (proto == 6) p[l4 + 12] = 0x50, p[l4 + 13] = s.tcp_flags;
  if (proto == 17) put16(p, l4 + 4, static_cast<uint16_t>(len4));
  if (proto == 1 || proto == 58) {
    p[l4] = proto == 1 ? 8 : 128;  // echo request
    put16(p, l4 + 4, s.icmp_id);
  }
  // Lengths, then checksums.
  if (v6) put16(p, l3 + 4, static_cast<uint16_t>(ext + len4));
  else {
    put16(p, l3 + 2, static_cast<uint16_t>(p.size() - l3));
    put16(p, l3 + 10, fold(sum16(&p[l3], l4 - l3)));
  }
  size_t csum = proto == 6 ? 16 : proto == 17 ? 6 : (proto == 1 || proto == 58) ? 2 : 0;
  if (csum) {
    uint32_t acc = sum16(&p[l4], len4);
    if (proto != 1) acc += pseudo(p, l3, v6, proto, len4);
    uint16_t c = fold(acc);
    if (proto == 17 && c == 0) c = 0xffff;
    put16(p, l4 + csum, c);
  }
  return p;
}

std::vector<uint8_t> build_icmp_error(const std::vector<uint8_t>& frame, const uint32_t from[4], uint8_t type,
                                      uint8_t code, size_t quote, uint32_t info) {
  const bool v6 = frame[12] == 0x86 && frame[13] == 0xdd;
  const size_t l3 = 14, hdr = v6 ? 40 : 20;
  quote = std::min(quote, frame.size() - l3);
  std::vector<uint8_t> p(frame.begin(), frame.begin() + 14);
  std::swap_ranges(p.begin(), p.begin() + 6, p.begin() + 6);  // back towards the sender
  p.resize(l3 + hdr + 8);
  if (v6) {
    p[l3] = 0x60;
    put16(p, l3 + 4, static_cast<uint16_t>(8 + quote));
    p[l3 + 6] = 58;
    p[l3 + 7] = 64;
    std::memcpy(&p[l3 + 8], from, 16);
    std::memcpy(&p[l3 + 24], &frame[l3 + 8], 16);  // to the quoted packet's source
  } else {
    p[l3] = 0x45;
    put16(p, l3 + 2, static_cast<uint16_t>(hdr + 8 + quote));
    p[l3 + 8] = 64;
    p[l3 + 9] = 1;
    std::memcpy(&p[l3 + 12], from, 4);
    std::memcpy(&p[l3 + 16], &frame[l3 + 12], 4);
    put16(p, l3 + 10, fold(sum16(&p[l3], hdr)));
  }
  const size_t l4 = l3 + hdr;
  p[l4] = type;
  p[l4 + 1] = code;
  put16(p, l4 + 4, static_cast<uint16_t>(info >> 16));
  put16(p, l4 + 6, static_cast<uint16_t>(info));
  p.insert(p.end(), frame.begin() + l3, frame.begin() + static_cast<std::ptrdiff_t>(l3 + quote));
  uint32_t acc = sum16(&p[l4], p.size() - l4);
  if (v6) acc += pseudo(p, l3, true, 58, p.size() - l4);
  put16(p, l4 + 2, fold(acc));
  return p;
}

Parsed parse_packet(const std::vector<uint8_t>& p) {
  Parsed r;
  if (p.size() < 34) return r;
  const bool v6 = p[12] == 0x86 && p[13] == 0xdd;
  const size_t l3 = 14;
  size_t l4;
  uint8_t proto;
  if (v6) {
    if (p.size() < l3 + 40) return r;
    r.family = CLV_AF_INET6;
    std::memcpy(r.src, &p[l3 + 8], 16);
    std::memcpy(r.dst, &p[l3 + 24], 16);
    r.ttl = p[l3 + 7];
    proto = p[l3 + 6];
    l4 = l3 + 40;
    r.ip_csum_ok = true;
  } else {
    r.family = CLV_AF_INET;
    size_t ihl = (p[l3] & 0xf) * 4u;
    std::memcpy(r.src, &p[l3 + 12], 4);
    std::memcpy(r.dst, &p[l3 + 16], 4);
    r.ttl = p[l3 + 8];
    proto = p[l3 + 9];
    l4 = l3 + ihl;
    r.ip_csum_ok = fold(sum16(&p[l3], ihl)) == 0;
  }
  if (has_ports(proto)) {
    r.sport = static_cast<uint16_t>(p[l4] << 8 | p[l4 + 1]);
    r.dport = static_cast<uint16_t>(p[l4 + 2] << 8 | p[l4 + 3]);
  }
  const size_t len4 = p.size() - l4;
  uint32_t acc = sum16(&p[l4], len4);
  if (proto != 1) acc += pseudo(p, l3, v6, proto, len4);
  r.l4_csum_ok = fold(acc) == 0 || proto == 47;
  r.ok = true;
  return r;
}

// The IP packet an ICMP error quotes, as a frame of its own (for parse_packet).
std::vector<uint8_t> quoted_frame(const std::vector<uint8_t>& icmp_frame) {
  const bool v6 = icmp_frame[12] == 0x86;
  const size_t off = 14 + (v6 ? 40u : (icmp_frame[14] & 0xfu) * 4u) + 8;
  if (icmp_frame.size() < off) throw std::invalid_argument("quoted_frame: too short for an ICMP error");
  std::vector<uint8_t> f(14 + icmp_frame.size() - off);
  std::copy_n(icmp_frame.begin(), 14, f.begin());
  std::copy(icmp_frame.begin() + static_cast<std::ptrdiff_t>(off), icmp_frame.end(), f.begin() + 14);
  return f;
}

// Turns an ICMP(v4) echo request built by build_packet into another type.
void set_icmp_type(std::vector<uint8_t>& f, uint8_t type) {
  const size_t l4 = 14 + (f[14] & 0xfu) * 4u;
  f[l4] = type;
  f[l4 + 2] = f[l4 + 3] = 0;
  uint32_t sum = 0;
  for (size_t i = l4; i + 1 < f.size(); i += 2) sum += uint32_t(f[i] << 8 | f[i + 1]);
  if ((f.size() - l4) & 1) sum += uint32_t(f.back() << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  f[l4 + 2] = uint8_t(~sum >> 8);
  f[l4 + 3] = uint8_t(~sum);
}

std::array<uint32_t, 4> words(const char* a) {
  auto ip = core::IpAddr::parse(a);
  if (!ip) throw std::invalid_argument(std::string("not an address: ") + a);
  return ip->words();
}

}  // namespace clovis::test
