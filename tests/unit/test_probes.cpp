// http: and dns: health probes: the mapping syntax (with its errors) and the
// wire bits the prober sends and judges (core/probe_wire.hpp).
#include <doctest/doctest.h>

#include <cstring>

#include "core/probe_wire.hpp"
#include "health/link_monitor.hpp"
#include "helpers.hpp"

using namespace clovis;
using test::check;
using test::has;

namespace {

// A link "a" whose health has the probes given (flow YAML, one per item).
std::string with_probes(const std::string& probes) {
  return "version: 1\nlinks:\n  - name: a\n    interface: wan0\n    gateway: [192.0.2.1, \"2001:db8::1\"]\n"
         "    health:\n      probes:\n" +
         probes + "policies:\n  - {name: p, failover: [a]}\n";
}

}  // namespace

TEST_CASE("http: and dns: probes load with their defaults") {
  auto c =
      check(with_probes("        - http: http://192.0.2.80/health?x=1\n"
                        "        - http: http://[2001:db8::80]:8080\n"
                        "        - dns: 192.0.2.53\n"
                        "        - {dns: \"[2001:db8::53]:5353\", name: example.com}\n"));
  INFO(test::dump(c));
  REQUIRE(c.ok());
  const auto& p = c.mapping->links[0].health->probes;
  REQUIRE(p.size() == 4);
  CHECK(p[0].kind == core::ProbeKind::kHttp);
  CHECK(p[0].port == 80);
  CHECK(p[0].path == "/health?x=1");
  CHECK(p[1].port == 8080);
  CHECK(p[1].path == "/");
  CHECK(p[1].target.str() == "2001:db8::80");
  CHECK(p[2].kind == core::ProbeKind::kDns);
  CHECK(p[2].port == 53);
  CHECK(p[2].name == ".");
  CHECK(p[3].port == 5353);
  CHECK(p[3].name == "example.com");
  CHECK(core::probe_label(p[0]) == "http 192.0.2.80/health?x=1");
  CHECK(core::probe_label(p[1]) == "http [2001:db8::80]:8080/");
  CHECK(core::probe_label(p[2]) == "dns 192.0.2.53");
  CHECK(core::probe_label(p[3]) == "dns [2001:db8::53]:5353 example.com");
}

TEST_CASE("http: and dns: probe errors say where and what to write") {
  CHECK(has(check(with_probes("        - http: https://192.0.2.80/\n")), 8, "plain HTTP"));
  CHECK(has(check(with_probes("        - http: 192.0.2.80/\n")), 8, "is not an http:// URL"));
  CHECK(has(check(with_probes("        - http: http://example.com/\n")), 8, "not host names"));
  CHECK(has(check(with_probes("        - http: http://192.0.2.80:0/\n")), 8, "'0' is not a port 1-65535"));
  CHECK(has(check(with_probes("        - http: \"http://192.0.2.80/a b\"\n")), 8, "white space"));
  CHECK(has(check(with_probes("        - dns: 192.0.2.53:99999\n")), 8, "not a port"));
  CHECK(has(check(with_probes("        - dns: resolver.example\n")), 8, "not an IP address"));
  CHECK(has(check(with_probes("        - {dns: 192.0.2.53, name: a..b}\n")), 8, "two dots in a row"));
  CHECK(has(check(with_probes("        - {icmp: 192.0.2.1, name: x}\n")), 8, "'name' belongs to a dns probe"));
  CHECK(has(check(with_probes("        - {dns: 192.0.2.53, http: http://192.0.2.1/}\n")), 8, "a probe is one of"));
  auto typo = check(with_probes("        - htp: http://192.0.2.80/\n"));
  CHECK(has(typo, 8, "unknown key 'htp'"));
  CHECK(has(typo, 8, "did you mean 'http'?"));
  CHECK(has(check(with_probes("        - {dns: 192.0.2.53, nmae: x}\n")), 8, "did you mean 'name'?"));
  // A target's family still needs a gateway of that family.
  auto v6 = check(
      "version: 1\nlinks:\n  - name: a\n    interface: wan0\n    gateway: 192.0.2.1\n"
      "    health: {probes: [{http: \"http://[2001:db8::80]/\"}]}\n");
  CHECK(has(v6, 6, "has no such gateway"));
}

TEST_CASE("the HTTP request asks for the path, names the host and closes") {
  const auto v4 = core::http_request(*core::IpAddr::parse("192.0.2.80"), 80, "/health");
  CHECK(v4 == "GET /health HTTP/1.1\r\nHost: 192.0.2.80\r\nUser-Agent: clovisd-probe\r\nConnection: close\r\n\r\n");
  const auto v6 = core::http_request(*core::IpAddr::parse("2001:db8::80"), 8080, "/");
  CHECK(v6.find("\r\nHost: [2001:db8::80]:8080\r\n") != std::string::npos);
}

TEST_CASE("the HTTP status line: complete, partial, or not HTTP") {
  CHECK(core::http_status("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n") == 200);
  CHECK(core::http_status("HTTP/1.0 302 Found\r\n") == 302);
  CHECK(core::http_status("HTTP/1.1 503\r\n") == 503);  // the reason phrase is optional
  CHECK(core::http_status("HTTP/1.1 204 No") == 0);     // the line is not over yet
  CHECK(core::http_status("") == 0);
  CHECK(core::http_status("SSH-2.0-OpenSSH_9.2\r\n") == -1);
  CHECK(core::http_status("HTTP/1.1 2000 OK\r\n") == -1);
  CHECK(core::http_status("HTTP/1.1 099 x\r\n") == -1);
  CHECK(core::http_status(std::string(2000, 'x')) == -1);  // no line end in sight: not HTTP
}

TEST_CASE("the DNS query: header, labels, type") {
  const auto root = core::dns_query(0xbeef, ".");
  const std::vector<uint8_t> want_root{0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1};
  CHECK(root == want_root);  // ". IN NS", recursion desired
  const auto named = core::dns_query(7, "example.com.");
  const std::vector<uint8_t> want_named{0,   7,   0x01, 0x00, 0,   1, 0,   0,   0,   0, 0, 0, 7, 'e', 'x',
                                        'a', 'm', 'p',  'l',  'e', 3, 'c', 'o', 'm', 0, 0, 1, 0, 1};
  CHECK(named == want_named);  // "example.com IN A"
}

TEST_CASE("the DNS answer: ours or not, and its RCODE") {
  auto reply = core::dns_query(0x1234, ".");
  CHECK_FALSE(core::dns_response_rcode(reply, 0x1234));  // a query, not a response
  reply[2] |= 0x80;                                      // QR
  CHECK(core::dns_response_rcode(reply, 0x1234) == 0);
  CHECK_FALSE(core::dns_response_rcode(reply, 0x1235));  // someone else's id
  reply[3] = 0x83;                                       // RA, NXDOMAIN
  CHECK(core::dns_response_rcode(reply, 0x1234) == 3);
  CHECK(core::dns_rcode_ok(3));
  reply[3] = 0x82;  // SERVFAIL
  CHECK(core::dns_response_rcode(reply, 0x1234) == 2);
  CHECK_FALSE(core::dns_rcode_ok(2));
  CHECK(core::dns_rcode_name(2) == "SERVFAIL");
  CHECK(core::dns_rcode_name(9) == "rcode 9");
  CHECK_FALSE(core::dns_response_rcode(std::span<const uint8_t>(reply.data(), 11), 0x1234));
}

TEST_CASE("DNS names: the root, labels of 1-63, 253 characters at most") {
  CHECK(core::dns_name_problem(".").empty());
  CHECK(core::dns_name_problem("example.com").empty());
  CHECK(core::dns_name_problem("example.com.").empty());
  CHECK(!core::dns_name_problem("").empty());
  CHECK(!core::dns_name_problem(std::string(64, 'a') + ".com").empty());
  CHECK(!core::dns_name_problem("a b.com").empty());
  std::string long_name;
  for (int i = 0; i < 64; ++i) long_name += "abc.";
  CHECK(!core::dns_name_problem(long_name).empty());
}

TEST_CASE("a link down by failed http/dns probes says why each failed") {
  using agent::health::Clock;
  using agent::health::ProbeResult;
  core::Health h;
  h.probes.resize(3);
  h.down_after = 1;
  h.reliability = 3;
  agent::health::LinkMonitor m(h, true, Clock::time_point{});
  std::vector<ProbeResult> r{{"icmp 192.0.2.1", false, 0, {}, {}},
                             {"http 192.0.2.80/", false, 0, {}, "http 503"},
                             {"dns 192.0.2.53", false, 0, {}, "timeout"}};
  auto t = m.round(r, Clock::time_point{} + std::chrono::seconds(1));
  REQUIRE(t);
  CHECK(t->reason ==
        "1 probe rounds failed (icmp 192.0.2.1 unanswered; http 192.0.2.80/: http 503; dns 192.0.2.53: timeout)");
}
