#include <random>

#include <doctest/doctest.h>

#include "core/net.hpp"

using namespace clovis::core;

TEST_CASE("addresses and prefixes parse strictly") {
  CHECK(IpAddr::parse("192.0.2.1"));
  CHECK(IpAddr::parse("2001:db8::1"));
  CHECK_FALSE(IpAddr::parse("192.0.2"));
  CHECK_FALSE(IpAddr::parse("192.0.2.256"));
  CHECK_FALSE(IpAddr::parse("010.0.0.1x"));
  CHECK_FALSE(IpAddr::parse(""));
  auto c = Cidr::parse("10.1.0.0/16");
  REQUIRE(c);
  CHECK(c->plen == 16);
  CHECK_FALSE(c->host_bits_set());
  CHECK(Cidr::parse("10.1.2.3/16")->host_bits_set());
  CHECK(Cidr::parse("10.1.2.3/16")->normalized().str() == "10.1.0.0/16");
  CHECK(Cidr::parse("192.0.2.7")->plen == 32);
  CHECK(Cidr::parse("2001:db8::/32")->plen == 32);
  CHECK_FALSE(Cidr::parse("10.0.0.0/33"));
  CHECK_FALSE(Cidr::parse("2001:db8::/129"));
  CHECK_FALSE(Cidr::parse("10.0.0.0/"));
  CHECK_FALSE(Cidr::parse("10.0.0.0/-1"));
  CHECK(Cidr::parse("10.0.0.0/8")->contains(*IpAddr::parse("10.255.0.1")));
  CHECK_FALSE(Cidr::parse("10.0.0.0/8")->contains(*IpAddr::parse("11.0.0.1")));
  CHECK_FALSE(Cidr::parse("0.0.0.0/0")->contains(*IpAddr::parse("::1")));
}

TEST_CASE("port ranges expand to exactly covering prefixes") {
  CHECK(port_range_prefixes({0, 65535}).size() == 1);
  CHECK(port_range_prefixes({443, 443}).size() == 1);
  CHECK(port_range_prefixes({1024, 65535}).size() == 6);
  CHECK(port_range_prefixes({1, 65534}).size() == 30);  // the worst case
  std::mt19937 rng(7);
  for (int i = 0; i < 300; ++i) {
    uint16_t a = static_cast<uint16_t>(rng()), b = static_cast<uint16_t>(rng());
    PortRange r{std::min(a, b), std::max(a, b)};
    auto ps = port_range_prefixes(r);
    CHECK(ps.size() <= 30);
    // Every port is covered by exactly one prefix iff it is inside the range.
    for (uint32_t p = 0; p < 65536; p += 1 + (rng() % 97)) {
      int covered = 0;
      for (auto x : ps) covered += (p & x.mask) == x.value;
      CHECK(covered == (p >= r.lo && p <= r.hi ? 1 : 0));
    }
    for (uint32_t p : {uint32_t(r.lo), uint32_t(r.hi)}) {
      int covered = 0;
      for (auto x : ps) covered += (p & x.mask) == x.value;
      CHECK(covered == 1);
    }
  }
}

TEST_CASE("names of protocols, DSCP, MACs and durations") {
  CHECK(parse_proto("TCP") == 6);
  CHECK(parse_proto("icmpv6") == 58);
  CHECK(parse_proto("255") == 255);
  CHECK_FALSE(parse_proto("256"));
  CHECK_FALSE(parse_proto("tcpp"));
  CHECK(parse_dscp("ef") == 46);
  CHECK(parse_dscp("AF41") == 34);
  CHECK(parse_dscp("63") == 63);
  CHECK_FALSE(parse_dscp("64"));
  CHECK(parse_mac("02:00:00:aa:bb:cc"));
  CHECK_FALSE(parse_mac("02:00:00:aa:bb"));
  CHECK_FALSE(parse_mac("02:00:00:aa:bb:zz"));
  CHECK(format_mac(*parse_mac("02-00-00-AA-BB-CC")) == "02:00:00:aa:bb:cc");
  CHECK(parse_duration_ms("500ms") == 500);
  CHECK(parse_duration_ms("1.5s") == 1500);
  CHECK(parse_duration_ms("2m") == 120000);
  CHECK_FALSE(parse_duration_ms("5"));
  CHECK_FALSE(parse_duration_ms("ms"));
  CHECK_FALSE(parse_duration_ms("0.5ms"));
}
