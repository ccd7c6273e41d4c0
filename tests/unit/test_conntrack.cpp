// Connection tracking: the state machine the program runs (clv_ct_next, in
// the ABI header) held to conntrack's transitions, and the idle lifetimes
// held to Linux's defaults.
#include <algorithm>

#include <doctest/doctest.h>

#include "core/abi.hpp"
#include "core/conntrack.hpp"

using namespace clovis;

namespace {

constexpr uint8_t kTcp = 6, kUdp = 17, kIcmp = 1;
constexpr uint8_t kOut = 0, kIn = 1;

struct Conn {
  uint8_t proto = kTcp;
  uint8_t state = CLV_CT_NEW;
  uint8_t flags = 0;
  Conn& see(int in, uint8_t tcp_flags = 0) {
    state = clv_ct_next(state, &flags, proto, tcp_flags, in);
    return *this;
  }
  bool assured() const { return flags & CLV_CT_ASSURED; }
};

}  // namespace

TEST_CASE("TCP: handshake, data, both FINs, as conntrack counts them") {
  Conn c;
  c.see(kOut, CLV_TCP_SYN);
  CHECK(c.state == CLV_CT_NEW);
  CHECK_FALSE(c.assured());
  c.see(kIn, CLV_TCP_SYN | CLV_TCP_ACK);
  CHECK(c.state == CLV_CT_SYN_RECV);
  CHECK_FALSE(c.assured());  // a SYN-ACK alone (a port scan answered) is not assured
  c.see(kOut, CLV_TCP_ACK);
  CHECK(c.state == CLV_CT_ESTABLISHED);
  CHECK(c.assured());
  c.see(kIn, CLV_TCP_ACK).see(kOut, CLV_TCP_ACK);
  CHECK(c.state == CLV_CT_ESTABLISHED);
  c.see(kIn, CLV_TCP_FIN | CLV_TCP_ACK);
  CHECK(c.state == CLV_CT_FIN_WAIT);
  c.see(kOut, CLV_TCP_ACK);  // half-closed: the client may still send
  CHECK(c.state == CLV_CT_FIN_WAIT);
  c.see(kOut, CLV_TCP_FIN | CLV_TCP_ACK);
  CHECK(c.state == CLV_CT_TIME_WAIT);
  CHECK(c.assured());
}

TEST_CASE("TCP: a reset closes from any state, and a new SYN reopens a closed tuple") {
  Conn c;
  c.see(kOut, CLV_TCP_SYN).see(kIn, CLV_TCP_RST | CLV_TCP_ACK);
  CHECK(c.state == CLV_CT_CLOSE);
  CHECK_FALSE(c.assured());
  c.see(kOut, CLV_TCP_SYN);
  CHECK(c.state == CLV_CT_NEW);
  Conn t;
  t.see(kOut, CLV_TCP_SYN).see(kIn, CLV_TCP_SYN | CLV_TCP_ACK).see(kOut, CLV_TCP_ACK);
  t.see(kOut, CLV_TCP_FIN).see(kIn, CLV_TCP_FIN);
  REQUIRE(t.state == CLV_CT_TIME_WAIT);
  t.see(kOut, CLV_TCP_SYN);
  CHECK(t.state == CLV_CT_NEW);
  CHECK((t.flags & (CLV_CT_FIN_IN | CLV_CT_FIN_OUT)) == 0);
  Conn e;  // a SYN on an established tuple changes nothing (conntrack ignores it too)
  e.see(kOut, CLV_TCP_SYN).see(kIn, CLV_TCP_SYN | CLV_TCP_ACK).see(kOut, CLV_TCP_ACK).see(kOut, CLV_TCP_SYN);
  CHECK(e.state == CLV_CT_ESTABLISHED);
}

TEST_CASE("TCP: a connection picked up mid-stream is established once the remote answers") {
  Conn c;
  c.see(kOut, CLV_TCP_ACK);
  CHECK(c.state == CLV_CT_NEW);
  c.see(kIn, CLV_TCP_ACK);
  CHECK(c.state == CLV_CT_ESTABLISHED);
  CHECK(c.assured());
}

TEST_CASE("UDP and ICMP: replied once the remote answers") {
  for (uint8_t proto : {kUdp, kIcmp}) {
    Conn c{proto};
    c.see(kOut).see(kOut);
    CHECK(c.state == CLV_CT_NEW);
    CHECK_FALSE(c.assured());
    c.see(kIn);
    CHECK(c.state == CLV_CT_ESTABLISHED);
    CHECK(c.assured());
    CHECK(core::ct_state_name(proto, c.state) == "replied");
  }
}

TEST_CASE("idle lifetimes default to Linux conntrack's") {
  // net.netfilter.nf_conntrack_{tcp_timeout_*,udp_timeout,udp_timeout_stream,
  // icmp_timeout,generic_timeout} on Linux 6.x.
  const core::FlowTimeouts t;
  CHECK(core::flow_timeout_s(t, kTcp, CLV_CT_NEW) == 120);
  CHECK(core::flow_timeout_s(t, kTcp, CLV_CT_SYN_RECV) == 60);
  CHECK(core::flow_timeout_s(t, kTcp, CLV_CT_ESTABLISHED) == 5 * 86400);
  CHECK(core::flow_timeout_s(t, kTcp, CLV_CT_FIN_WAIT) == 120);
  CHECK(core::flow_timeout_s(t, kTcp, CLV_CT_TIME_WAIT) == 120);
  CHECK(core::flow_timeout_s(t, kTcp, CLV_CT_CLOSE) == 10);
  CHECK(core::flow_timeout_s(t, kUdp, CLV_CT_NEW) == 30);
  CHECK(core::flow_timeout_s(t, kUdp, CLV_CT_ESTABLISHED) == 120);
  CHECK(core::flow_timeout_s(t, kIcmp, CLV_CT_NEW) == 30);
  CHECK(core::flow_timeout_s(t, 58, CLV_CT_ESTABLISHED) == 30);
  CHECK(core::flow_timeout_s(t, 47, CLV_CT_NEW) == 600);  // GRE: generic
  CHECK(core::shortest_flow_timeout_s(t) == 10);
}

TEST_CASE("--flow-timeout: names, units, and errors that say what is accepted") {
  auto t = core::parse_flow_timeouts("tcp-established=1h,udp=5,udp-stream=2m,generic=1d", {});
  REQUIRE(t);
  CHECK(t->tcp_established == 3600);
  CHECK(t->udp == 5);
  CHECK(t->udp_stream == 120);
  CHECK(t->generic == 86400);
  CHECK(t->tcp_syn_sent == 120);  // untouched
  auto round = core::parse_flow_timeouts(core::format_flow_timeouts(*t), {});
  REQUIRE(round);
  CHECK(*round == *t);
  CHECK(*core::parse_flow_timeouts("", {}) == core::FlowTimeouts{});

  auto bad_name = core::parse_flow_timeouts("tcp=5", {});
  REQUIRE_FALSE(bad_name);
  CHECK(bad_name.error().what().find("tcp-established") != std::string::npos);
  for (const char* bad : {"udp=0", "udp=-1", "udp=5x", "udp=31d", "udp=", "udp", "udp=18446744073709551616"}) {
    CAPTURE(bad);
    auto r = core::parse_flow_timeouts(bad, {});
    REQUIRE_FALSE(r);
    CHECK(r.error().what().find("--flow-timeout") != std::string::npos);
  }
}

TEST_CASE("state names: every one ct_state_name gives is listed, and keys are CLV_CT_*'s") {
  const auto names = core::ct_state_names();
  auto listed = [&](std::string_view n) { return std::find(names.begin(), names.end(), n) != names.end(); };
  for (uint8_t st = 0; st < CLV_CT_STATES; ++st) {
    CHECK(listed(core::ct_state_name(kTcp, st)));
    CHECK(listed(core::ct_state_name(kUdp, st)));
  }
  CHECK(names.size() == 8);
  CHECK(core::ct_state_key(CLV_CT_NEW) == "new");
  CHECK(core::ct_state_key(CLV_CT_TIME_WAIT) == "time-wait");
  CHECK(core::ct_state_key(CLV_CT_STATES).empty());
  CHECK(core::ct_state_label(CLV_CT_ESTABLISHED) == "established/replied");
  CHECK(core::ct_state_label(CLV_CT_CLOSE) == "close");
}
