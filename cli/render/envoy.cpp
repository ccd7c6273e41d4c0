#include "envoy.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include <fmt/format.h>

#include "clovis/rpc/wire.hpp"
#include "yaml.hpp"

namespace clovis::cli::render {

namespace {

using J = nlohmann::ordered_json;

core::Unexpected<core::Error> bad(std::string message) {
  return core::fail(core::ErrorCode::kInvalidArgument, std::move(message));
}

bool valid_dns_name(std::string_view h) {
  if (h.empty() || h.size() > 253) return false;
  size_t start = 0;
  while (true) {
    const size_t dot = h.find('.', start);
    const std::string_view label =
        h.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool valid_service_name(std::string_view n) {
  if (n.empty() || n.size() > 64 || !std::isalnum(static_cast<unsigned char>(n[0]))) return false;
  return std::all_of(n.begin(), n.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; });
}

std::string hostport(const EnvoyEndpoint& e) {
  return e.ip == core::Family::kV6 ? fmt::format("[{}]:{}", e.host, e.port) : fmt::format("{}:{}", e.host, e.port);
}

// "100ms" -> "0.1s": protobuf's JSON form of a Duration.
std::string duration(uint32_t ms) {
  std::string s = fmt::format("{}.{:03}", ms / 1000, ms % 1000);
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s + "s";
}

std::string families(const core::LinkRouting& l) {
  return l.v4 && l.v6 ? "IPv4+IPv6" : l.v4 ? "IPv4" : l.v6 ? "IPv6" : "no address family";
}

J socket_address(const EnvoyEndpoint& e) {
  return J{{"socket_address", J{{"address", e.host}, {"port_value", e.port}}}};
}

J load_assignment(const std::string& cluster, const std::vector<EnvoyEndpoint>& eps) {
  J lb = J::array();
  for (const auto& e : eps) lb.push_back(J{{"endpoint", J{{"address", socket_address(e)}}}});
  return J{{"cluster_name", cluster}, {"endpoints", J::array({J{{"lb_endpoints", lb}}})}};
}

J tls_socket(const EnvoyUpstream& u) {
  J ctx = J::object();
  ctx["@type"] = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";
  // SNI names a host; an upstream given by address sends none.
  for (const auto& e : u.endpoints)
    if (!e.ip) {
      ctx["sni"] = e.host;
      break;
    }
  J sans = J::array();
  std::set<std::string> seen;
  for (const auto& e : u.endpoints)
    if (seen.insert(e.host).second)
      sans.push_back(J{{"san_type", e.ip ? "IP_ADDRESS" : "DNS"}, {"matcher", J{{"exact", e.host}}}});
  ctx["common_tls_context"] = J{{"validation_context", J{{"trusted_ca", J{{"filename", kEnvoyCaBundle}}},
                                                         {"match_typed_subject_alt_names", sans}}}};
  return J{{"name", "envoy.transport_sockets.tls"}, {"typed_config", ctx}};
}

// Envoy's default tag extraction takes a cluster's stat name up to its first
// dot: a name with dots gets a dot-free stat name.
void stat_name(J& c, const std::string& name) {
  if (name.find('.') == std::string::npos) return;
  std::string s = name;
  std::replace(s.begin(), s.end(), '.', '_');
  c["alt_stat_name"] = s;
}

J upstream_cluster(const EnvoyUpstream& u, const core::LinkRouting* link, const std::vector<EnvoyEndpoint>& eps) {
  const std::string name = link ? envoy_link_cluster(u.name, link->name) : u.name;
  const bool all_ip = std::all_of(eps.begin(), eps.end(), [](const EnvoyEndpoint& e) { return e.ip.has_value(); });
  J c = J::object();
  if (link)
    add_comment(c, fmt::format("{} via link {}: sockets marked {:#x}, routed by clovisd's table {}\n"
                               "(link in {} mode on {}, {})",
                               u.name, link->name, link->mark, link->table, core::to_string(link->mode),
                               link->interface, families(*link)));
  else
    add_comment(c, fmt::format("{} with no link: unmarked, routed by the main table\n"
                               "(clovisd answered no link, e.g. bypass, or could not be asked)",
                               u.name));
  c["name"] = name;
  stat_name(c, name);
  c["type"] = all_ip ? "STATIC" : "STRICT_DNS";
  c["connect_timeout"] = "5s";
  // A marked socket of a family the link has no rule for would leave by the
  // main table: resolve names only in the link's families.
  if (link && !all_ip) c["dns_lookup_family"] = link->v4 && link->v6 ? "AUTO" : link->v4 ? "V4_ONLY" : "V6_ONLY";
  c["load_assignment"] = load_assignment(name, eps);
  if (link) {
    // SOL_SOCKET and SO_MARK as this platform's headers define them: the
    // configuration is for the host clovisctl and clovisd run on.
    J opt = J{{"description", fmt::format("SO_MARK {:#x}: leave by link {}", link->mark, link->name)},
              {"level", SOL_SOCKET},
              {"name", SO_MARK},
              {"int_value", link->mark},
              {"state", "STATE_PREBIND"}};
    c["upstream_bind_config"] = J{{"socket_options", J::array({opt})}};
  }
  if (u.tls) c["transport_socket"] = tls_socket(u);
  return c;
}

J authz_cluster(const EnvoyOptions& o) {
  J c = J::object();
  add_comment(c, "clovisd's ext_authz Check service (gRPC over a Unix socket)");
  c["name"] = kEnvoyAuthzCluster;
  c["type"] = "STATIC";
  c["connect_timeout"] = "1s";
  c["typed_extension_protocol_options"] =
      J{{"envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
         J{{"@type", "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"},
           {"explicit_http_config", J{{"http2_protocol_options", J::object()}}}}}};
  J ep = J{{"endpoint", J{{"address", J{{"pipe", J{{"path", o.authz_socket}}}}}}}};
  c["load_assignment"] =
      J{{"cluster_name", kEnvoyAuthzCluster}, {"endpoints", J::array({J{{"lb_endpoints", J::array({ep})}}})}};
  return c;
}

// The endpoints of `u` a socket marked for `l` can reach by `l`.
std::vector<EnvoyEndpoint> reachable(const EnvoyUpstream& u, const core::LinkRouting& l) {
  std::vector<EnvoyEndpoint> out;
  for (const auto& e : u.endpoints)
    if (!e.ip || (*e.ip == core::Family::kV4 ? l.v4 : l.v6)) out.push_back(e);
  return out;
}

struct Built {
  J clusters = J::array();
  J virtual_hosts = J::array();
  std::vector<std::string> skipped;
};

J header_route(const std::string& cluster, const std::string& link) {
  J headers = J::array({J{{"name", rpc::kLinkHeader}, {"string_match", J{{"exact", link}}}}});
  return J{{"name", cluster}, {"match", J{{"prefix", "/"}, {"headers", headers}}}, {"route", J{{"cluster", cluster}}}};
}

J domains(const EnvoyUpstream& u, bool only) {
  if (only) return J::array({"*"});
  J d = J::array();
  std::set<std::string> seen;
  for (const auto& e : u.endpoints) {
    const std::string bare = e.ip == core::Family::kV6 ? "[" + e.host + "]" : e.host;
    for (const std::string& x : {bare, hostport(e)})
      if (seen.insert(x).second) d.push_back(x);
  }
  return d;
}

Built build(const std::vector<core::LinkRouting>& links, const EnvoyOptions& o) {
  Built b;
  for (const auto& u : o.upstreams) {
    J routes = J::array();
    for (const auto& l : links) {
      auto eps = reachable(u, l);
      if (eps.empty()) {
        b.skipped.push_back(
            fmt::format("{} via {}: link {} carries {} only and every endpoint of {} is an address "
                        "of the other family; requests clovisd steers to {} use cluster {}",
                        u.name, l.name, l.name, families(l), u.name, l.name, u.name));
        continue;
      }
      b.clusters.push_back(upstream_cluster(u, &l, eps));
      routes.push_back(header_route(envoy_link_cluster(u.name, l.name), l.name));
    }
    b.clusters.push_back(upstream_cluster(u, nullptr, u.endpoints));
    J fallback = J::object();
    add_comment(fallback, "no x-clovis-link: the unmarked cluster");
    fallback["name"] = u.name;
    fallback["match"] = J{{"prefix", "/"}};
    fallback["route"] = J{{"cluster", u.name}};
    routes.push_back(fallback);
    b.virtual_hosts.push_back(
        J{{"name", u.name}, {"domains", domains(u, o.upstreams.size() == 1)}, {"routes", routes}});
  }
  b.clusters.push_back(authz_cluster(o));
  return b;
}

J early_header_mutation() {
  J mutations = J::array();
  for (const char* h : {rpc::kLinkHeader, rpc::kRuleHeader, rpc::kErrorHeader}) mutations.push_back(J{{"remove", h}});
  J m = J::object();
  add_comment(m,
              "A client's own x-clovis-* headers are dropped before routing: when clovisd cannot be\n"
              "asked, a request must not pick its link itself.");
  m["name"] = "envoy.http.early_header_mutation.header_mutation";
  m["typed_config"] =
      J{{"@type", "type.googleapis.com/envoy.extensions.http.early_header_mutation.header_mutation.v3.HeaderMutation"},
        {"mutations", mutations}};
  return J::array({m});
}

J ext_authz_filter(const EnvoyOptions& o) {
  J f = J::object();
  add_comment(f,
              "Before the router: clovisd's answer adds x-clovis-link, and clear_route_cache makes\n"
              "the route be chosen again with it. failure_mode_allow: clovis is never why a request fails.");
  f["name"] = "envoy.filters.http.ext_authz";
  f["typed_config"] = J{{"@type", "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz"},
                        {"transport_api_version", "V3"},
                        {"grpc_service", J{{"envoy_grpc", J{{"cluster_name", kEnvoyAuthzCluster}}},
                                           {"timeout", duration(o.authz_timeout_ms)}}},
                        {"failure_mode_allow", true},
                        {"clear_route_cache", true}};
  return f;
}

J router_filter() {
  return J{{"name", "envoy.filters.http.router"},
           {"typed_config", J{{"@type", "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}}};
}

J bootstrap(const Built& b, const EnvoyOptions& o) {
  J hcm = J::object();
  hcm["@type"] =
      "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
  hcm["stat_prefix"] = "clovis_egress";
  hcm["codec_type"] = "AUTO";
  hcm["early_header_mutation_extensions"] = early_header_mutation();
  hcm["route_config"] = J{{"name", "clovis_egress"}, {"virtual_hosts", b.virtual_hosts}};
  hcm["http_filters"] = J::array({ext_authz_filter(o), router_filter()});
  J listener =
      J{{"name", "clovis_egress"},
        {"address", socket_address(o.listen)},
        {"filter_chains", J::array({J{{"filters", J::array({J{{"name", "envoy.filters.network.http_connection_manager"},
                                                              {"typed_config", hcm}}})}}})}};
  return J{{"static_resources", J{{"listeners", J::array({listener})}, {"clusters", b.clusters}}}};
}

std::string header(const std::vector<core::LinkRouting>& links, const EnvoyOptions& o,
                   const std::vector<std::string>& skipped) {
  std::string h = fmt::format("Envoy configuration rendered by `clovisctl envoy` from {}.\n", o.source);
  switch (o.part) {
    case EnvoyPart::kBootstrap: h += "A complete static bootstrap: envoy -c FILE.\n"; break;
    case EnvoyPart::kClusters: h += "Part: clusters, for static_resources.clusters.\n"; break;
    case EnvoyPart::kFilter:
      h += "Part: filter, fields of the http_connection_manager's typed_config; ext_authz goes\n"
           "before envoy.filters.http.router.\n";
      break;
    case EnvoyPart::kRoutes: h += "Part: routes, for route_config.virtual_hosts.\n"; break;
  }
  h += "clovisd answers each request's ext_authz Check with x-clovis-link: LINK; the route for\n"
       "that value sends it to cluster SERVICE@LINK, whose sockets carry LINK's mark and so\n"
       "leave by LINK (clovisd installs ip rule fwmark MARK lookup TABLE for every link).\n"
       "No link in the answer, or no answer: cluster SERVICE, unmarked.\n"
       "Needs Envoy 1.25 or later; see docs/ENVOY.md.\nLinks:";
  for (const auto& l : links)
    h += fmt::format("\n  {}: mark {:#x} ({}), table {}, {} mode on {}, {}", l.name, l.mark, l.mark, l.table,
                     core::to_string(l.mode), l.interface, families(l));
  for (const auto& c : o.caveats) h += "\n" + c;
  for (const auto& s : skipped) h += "\nNo cluster for " + s + ".";
  return h;
}

}  // namespace

core::Result<EnvoyEndpoint> parse_envoy_endpoint(std::string_view text) {
  EnvoyEndpoint e;
  std::string_view host, port;
  if (!text.empty() && text[0] == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return bad(fmt::format("'{}' has no ']' after its IPv6 address", text));
    host = text.substr(1, close - 1);
    if (close + 1 >= text.size() || text[close + 1] != ':')
      return bad(fmt::format("'{}' has no port: write [ADDRESS]:PORT", text));
    port = text.substr(close + 2);
    auto ip = core::IpAddr::parse(host);
    if (!ip || ip->family != core::Family::kV6)
      return bad(fmt::format("'{}' in brackets is not an IPv6 address", host));
    e.ip = core::Family::kV6;
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad(fmt::format("'{}' has no port: write HOST:PORT", text));
    if (text.find(':') != colon)
      return bad(fmt::format("'{}': an IPv6 address goes in brackets, as in [2001:db8::1]:443", text));
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (auto ip = core::IpAddr::parse(host)) e.ip = ip->family;
    else if (!valid_dns_name(host))
      return bad(fmt::format("'{}' is neither an IP address nor a host name (letters, digits, '-' and dots)", host));
  }
  unsigned long p = 0;
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }) ||
      (p = std::stoul(std::string(port))) == 0 || p > 65535)
    return bad(fmt::format("port '{}' of '{}' is not 1-65535", port, text));
  e.host = std::string(host);
  e.port = static_cast<uint16_t>(p);
  return e;
}

core::Result<EnvoyUpstream> parse_envoy_upstream(std::string_view spec) {
  const size_t eq = spec.find('=');
  if (eq == std::string_view::npos || eq == 0) return bad("no NAME= before the endpoints");
  EnvoyUpstream u;
  u.name = std::string(spec.substr(0, eq));
  if (!valid_service_name(u.name))
    return bad(
        fmt::format("name '{}' is not 1-64 letters, digits, '_' or '-' starting with a letter or digit", u.name));
  if (u.name == kEnvoyAuthzCluster)
    return bad(fmt::format("name '{}' is the cluster of clovisd's own socket; pick another", u.name));
  std::string_view rest = spec.substr(eq + 1);
  if (rest.rfind("https://", 0) == 0) {
    u.tls = true;
    rest.remove_prefix(8);
  } else if (rest.rfind("http://", 0) == 0) {
    rest.remove_prefix(7);
  } else if (const size_t s = rest.find("://"); s != std::string_view::npos) {
    return bad(fmt::format("scheme '{}' is neither http nor https", rest.substr(0, s)));
  }
  if (rest.empty()) return bad("no HOST:PORT after the name");
  while (true) {
    const size_t comma = rest.find(',');
    const std::string_view one = rest.substr(0, comma);
    if (one.find('/') != std::string_view::npos) return bad(fmt::format("'{}' has a path; give HOST:PORT only", one));
    auto e = parse_envoy_endpoint(one);
    if (!e) return core::Unexpected<core::Error>{e.error()};
    u.endpoints.push_back(*e);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return u;
}

core::Status check_envoy_upstreams(const std::vector<EnvoyUpstream>& upstreams) {
  std::set<std::string> names;
  for (const auto& u : upstreams)
    if (!names.insert(u.name).second) return bad(fmt::format("upstream '{}' is given twice", u.name));
  if (upstreams.size() < 2) return core::Ok{};
  std::map<std::string, std::string> owner;
  for (const auto& u : upstreams)
    for (const auto& e : u.endpoints) {
      auto [it, fresh] = owner.emplace(e.host, u.name);
      if (!fresh && it->second != u.name)
        return bad(
            fmt::format("host {} is in upstreams '{}' and '{}': with several upstreams Envoy picks one by "
                        "the request's Host, so a host can belong to one only",
                        e.host, it->second, u.name));
    }
  return core::Ok{};
}

std::string envoy_link_cluster(const std::string& service, const std::string& link) {
  return service + "@" + link;
}

EnvoyConfig envoy_config(const std::vector<core::LinkRouting>& links, const EnvoyOptions& o) {
  Built b = build(links, o);
  EnvoyConfig c;
  c.skipped = b.skipped;
  J doc = J::object();
  add_comment(doc, header(links, o, b.skipped));
  switch (o.part) {
    case EnvoyPart::kBootstrap: {
      J full = bootstrap(b, o);
      for (auto it = full.begin(); it != full.end(); ++it) doc[it.key()] = it.value();
      break;
    }
    case EnvoyPart::kClusters: doc["clusters"] = b.clusters; break;
    case EnvoyPart::kFilter:
      doc["early_header_mutation_extensions"] = early_header_mutation();
      doc["http_filters"] = J::array({ext_authz_filter(o)});
      break;
    case EnvoyPart::kRoutes: doc["virtual_hosts"] = b.virtual_hosts; break;
  }
  c.doc = std::move(doc);
  return c;
}

std::string envoy_yaml(const EnvoyConfig& c) {
  return to_yaml(c.doc);
}

std::string envoy_json(const EnvoyConfig& c) {
  return strip_comments(c.doc).dump(2) + "\n";
}

}  // namespace clovis::cli::render
