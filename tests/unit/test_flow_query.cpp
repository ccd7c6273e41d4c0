// core::build_flow_query: the query `clovisctl simulate` builds from its
// options and clovisd from a Simulate request.
#include <doctest/doctest.h>

#include "core/flow_query.hpp"
#include "core/net.hpp"

using namespace clovis;

namespace {

core::FlowQuerySpec tcp(const char* src, const char* dst) {
  core::FlowQuerySpec s;
  s.src = src;
  s.dst = dst;
  return s;
}

std::string error(const core::FlowQuerySpec& s, std::string_view prefix = {}) {
  auto q = core::build_flow_query(s, prefix);
  REQUIRE_FALSE(q);
  CHECK(q.error().code == core::ErrorCode::kInvalidArgument);
  return q.error().message;
}

}  // namespace

TEST_CASE("a flow query holds the tuple as the classifier reads it") {
  auto s = tcp("10.1.0.5", "203.0.113.10");
  s.sport = 40000;
  s.dport = 443;
  s.dscp = "ef";
  s.mark = 0x10;
  s.iif = "lan0";
  auto q = core::build_flow_query(s);
  REQUIRE(q);
  CHECK(q->tuple.family == CLV_AF_INET);
  CHECK(q->tuple.proto == 6);
  CHECK(q->tuple.sport == 40000);
  CHECK(q->tuple.dport == 443);
  CHECK(q->tuple.dscp == 46);
  CHECK(q->tuple.mark == 0x10);
  CHECK(q->iif == "lan0");
  CHECK(core::IpAddr::from_words(core::Family::kV4, q->tuple.dst).str() == "203.0.113.10");
  CHECK_FALSE(q->l7);
}

TEST_CASE("a flow query with any L7 field is a request, GET / by default, headers in order") {
  auto s = tcp("2001:db8::1", "2001:db8::2");
  s.method = "post";
  s.headers = {{"x-b", "2"}, {"X-A", "1"}};
  auto q = core::build_flow_query(s);
  REQUIRE(q);
  CHECK(q->tuple.family == CLV_AF_INET6);
  REQUIRE(q->l7);
  CHECK(q->l7->method == "POST");
  CHECK(q->l7->path == "/");
  CHECK(q->l7->headers == std::vector<std::pair<std::string, std::string>>{{"x-b", "2"}, {"X-A", "1"}});
  s = tcp("10.0.0.1", "10.0.0.2");
  s.host = "example.com";
  q = core::build_flow_query(s);
  REQUIRE(q);
  REQUIRE(q->l7);
  CHECK(q->l7->method == "GET");
}

TEST_CASE("a flow query's errors name the field, as the CLI or the RPC calls it") {
  CHECK(error(tcp("10.1.0.500", "10.0.0.1")) == "src '10.1.0.500' is not an IP address");
  CHECK(error(tcp("10.0.0.1", "nowhere"), "--") == "--dst 'nowhere' is not an IP address");
  CHECK(error(tcp("10.0.0.1", "2001:db8::1"), "--") == "--src and --dst must be of the same address family");
  auto s = tcp("10.0.0.1", "10.0.0.2");
  s.proto = "tcpp";
  CHECK(error(s, "--") == "--proto 'tcpp' is not a protocol (tcp, udp, icmp, or 0-255)");
  s = tcp("10.0.0.1", "10.0.0.2");
  s.dscp = "64";
  CHECK(error(s) == "dscp '64' is not 0-63 or a DSCP name");
  s = tcp("10.0.0.1", "10.0.0.2");
  s.dport = 65536;
  CHECK(error(s) == "ports are 0-65535");
  s = tcp("10.0.0.1", "10.0.0.2");
  s.headers = {{"", "x"}};
  CHECK(error(s) == "a header has no name");
}
