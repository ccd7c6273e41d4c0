// The wire side of the http: and dns: health probes, as pure functions: the
// probe's URL, the HTTP request and its status line, the DNS query and the
// answer's verdict. clovisd's prober (agentd/health/prober.cpp) only moves
// these bytes over sockets bound to the link; tests check them here.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model.hpp"
#include "net.hpp"

namespace clovis::core {

// How logs, events, metrics and diffs name a probe: "icmp 192.0.2.1",
// "tcp 192.0.2.1:443", "http 192.0.2.1:8080/health", "dns 192.0.2.53",
// "dns 192.0.2.53 example.com".
std::string probe_label(const Probe& p);

// `http://ADDRESS[:PORT][/PATH]`: an IP literal (IPv6 in brackets), never a
// host name, because a probe must not depend on a resolver that may sit
// behind the very link it judges.
struct HttpUrl {
  IpAddr addr;
  uint16_t port = 80;
  std::string path = "/";
};
struct UrlError {
  std::string what, hint;
};
std::optional<HttpUrl> parse_http_url(std::string_view text, UrlError* err);

// GET PATH HTTP/1.1 with Host and Connection: close (the server ends the
// exchange, so nothing lingers between rounds).
std::string http_request(const IpAddr& addr, uint16_t port, std::string_view path);

// The status code of a response whose first bytes are `head`: 0 while the
// status line is incomplete, -1 when it is not an HTTP status line.
int http_status(std::string_view head);

// The query name of a dns: probe without `name:`: the root, asked for its NS
// records, which every recursive resolver answers (from its cache, mostly).
inline constexpr std::string_view kDnsDefaultName = ".";

// Empty when `name` is a valid DNS name (dots between labels of 1-63
// characters, 253 at most, a final dot optional); otherwise why not.
std::string dns_name_problem(std::string_view name);

// A recursive query (RD) for `name`: NS for the root, A otherwise.
std::vector<uint8_t> dns_query(uint16_t id, std::string_view name);

// The RCODE of `msg` when it is a response (QR) to the query `id`; nullopt
// when it is not (too short, a query, another id): the prober ignores it.
std::optional<int> dns_response_rcode(std::span<const uint8_t> msg, uint16_t id);

// NOERROR and NXDOMAIN both prove a working resolver reached through the
// link; SERVFAIL, REFUSED and the rest do not.
inline bool dns_rcode_ok(int rcode) {
  return rcode == 0 || rcode == 3;
}
std::string dns_rcode_name(int rcode);

}  // namespace clovis::core
