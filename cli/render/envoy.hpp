// The Envoy configuration that closes the loop with clovisd's ext_authz
// answers (docs/ENVOY.md): for each upstream service, one cluster per link
// whose sockets carry the link's mark (SO_MARK, so the link's fwmark rule and
// table route them) and one unmarked cluster; the ext_authz filter pointed at
// clovisd's socket; routes that pick the cluster by the x-clovis-link header
// clovisd adds. Pure: link facts and options in, a document out.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/compiled.hpp"
#include "core/net.hpp"
#include "core/result.hpp"

namespace clovis::cli::render {

inline constexpr const char* kEnvoyAuthzCluster = "clovisd_authz";
// Where Debian and Ubuntu keep the system's CA bundle; TLS upstreams verify against it.
inline constexpr const char* kEnvoyCaBundle = "/etc/ssl/certs/ca-certificates.crt";

struct EnvoyEndpoint {
  std::string host;  // a DNS name or an IP address (no brackets)
  uint16_t port = 0;
  std::optional<core::Family> ip;  // set when host is an IP address
};

struct EnvoyUpstream {
  std::string name;
  bool tls = false;  // https://: Envoy originates TLS and verifies the server
  std::vector<EnvoyEndpoint> endpoints;
};

// "HOST:PORT", "[V6]:PORT". Errors say what is wrong, for a message that
// names the option.
core::Result<EnvoyEndpoint> parse_envoy_endpoint(std::string_view text);

// "NAME=[https://|http://]HOST:PORT[,HOST:PORT...]".
core::Result<EnvoyUpstream> parse_envoy_upstream(std::string_view spec);

// Names unique, not reserved; with several upstreams, no host in two of them
// (each gets the virtual host of its host names).
core::Status check_envoy_upstreams(const std::vector<EnvoyUpstream>& upstreams);

// Cluster names: SERVICE@LINK for a link, SERVICE for the unmarked one. '@'
// is in neither a service nor a link name, so no two clusters can share a name.
std::string envoy_link_cluster(const std::string& service, const std::string& link);

enum class EnvoyPart { kBootstrap, kClusters, kFilter, kRoutes };

struct EnvoyOptions {
  std::vector<EnvoyUpstream> upstreams;
  EnvoyEndpoint listen{"127.0.0.1", 10000, core::Family::kV4};
  std::string authz_socket = "/run/clovis/authz.sock";
  uint32_t authz_timeout_ms = 100;
  EnvoyPart part = EnvoyPart::kBootstrap;
  std::string source;                // what the links came from, for the header comment
  std::vector<std::string> caveats;  // more header comment lines
};

struct EnvoyConfig {
  // Envoy's schema, keys in output order; comments under '#' keys (render/yaml.hpp).
  nlohmann::ordered_json doc;
  // Upstream/link pairs that got no cluster, and why (also in the comments).
  std::vector<std::string> skipped;
};

// `links` in the order to render them (a mapping's order).
EnvoyConfig envoy_config(const std::vector<core::LinkRouting>& links, const EnvoyOptions& o);

std::string envoy_yaml(const EnvoyConfig& c);
std::string envoy_json(const EnvoyConfig& c);

}  // namespace clovis::cli::render
