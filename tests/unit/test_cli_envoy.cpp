// clovisctl envoy: the rendered Envoy configuration read back as Envoy would
// read it (YAML parsed by yaml-cpp; its structure and every mark checked
// against the compiled mapping), golden renderings, argument errors, and the
// live path against a real agent over fakes of the kernel and the host.
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>

#include <doctest/doctest.h>
#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

#include "cli_run.hpp"
#include "exit_codes.hpp"
#include "fakes.hpp"
#include "helpers.hpp"
#include "render/envoy.hpp"
#include "render/yaml.hpp"
#include "service/agent_service.hpp"
#include "service/authz_service.hpp"
#include "service/server.hpp"

using namespace clovis;
using nlohmann::json;
using test::clovisctl;
using test::golden;
using test::Run;

namespace {

const std::string kExample = test::source_path("examples/edge-site.yaml");
const std::vector<std::string> kTwoUpstreams = {"--upstream", "api=https://api.example.com:443", "--upstream",
                                                "video=198.51.100.10:8000,[2001:db8:100::10]:8000"};

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::vector<std::string> args(std::vector<std::string> head, const std::vector<std::string>& tail) {
  head.insert(head.end(), tail.begin(), tail.end());
  return head;
}

// A YAML document as JSON, the way a YAML reader types it: quoted scalars are
// strings, plain ones that read as integers or booleans are those.
json to_json(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      json j = json::object();
      for (const auto& kv : n) j[kv.first.as<std::string>()] = to_json(kv.second);
      return j;
    }
    case YAML::NodeType::Sequence: {
      json j = json::array();
      for (const auto& v : n) j.push_back(to_json(v));
      return j;
    }
    case YAML::NodeType::Scalar: {
      const std::string s = n.Scalar();
      if (n.Tag() == "!") return s;
      if (s == "true" || s == "false") return s == "true";
      if (!s.empty() && s.find_first_not_of("0123456789") == std::string::npos) return std::stoll(s);
      return s;
    }
    default: return nullptr;
  }
}

json parse_yaml(const std::string& text) {
  return to_json(YAML::Load(text));
}

std::string write_temp(const std::string& name, const std::string& text) {
  const std::string path = "/tmp/clovis-unit-" + std::to_string(getpid()) + "-" + name;
  std::ofstream(path) << text;
  return path;
}

// Link name -> mark, and the links in the mapping's order, as core compiles them.
struct Marks {
  std::vector<std::string> order;
  std::map<std::string, uint32_t> mark;
};

Marks compiled_marks(const std::string& text, const core::CompileOptions& opts = {}) {
  auto c = core::check_mapping(text, opts);
  REQUIRE(c.ok());
  Marks m;
  for (const auto& l : c.mapping->links) m.order.push_back(l.name);
  for (const auto& r : core::link_routing(*c.compiled)) m.mark[r.name] = r.mark;
  return m;
}

const json* cluster(const json& clusters, const std::string& name) {
  for (const auto& c : clusters)
    if (c.value("name", "") == name) return &c;
  return nullptr;
}

// What a proxy that follows the rendered configuration relies on.
void check_structure(const json& doc, const Marks& m, const std::vector<std::string>& services,
                     const std::string& authz_path) {
  const json& clusters = doc.at("static_resources").at("clusters");
  std::set<std::string> names;
  for (const auto& c : clusters) {
    INFO("cluster " << c.dump());
    CHECK(names.insert(c.at("name").get<std::string>()).second);
    CHECK(c.at("load_assignment").at("cluster_name") == c.at("name"));
  }
  for (const auto& svc : services) {
    for (const auto& link : m.order) {
      INFO("service " << svc << " link " << link);
      const json* c = cluster(clusters, svc + "@" + link);
      REQUIRE(c);
      const json& opts = c->at("upstream_bind_config").at("socket_options");
      REQUIRE(opts.size() == 1);
      CHECK(opts[0].at("level") == SOL_SOCKET);
      CHECK(opts[0].at("name") == SO_MARK);
      CHECK(opts[0].at("int_value") == m.mark.at(link));
      CHECK(opts[0].at("state") == "STATE_PREBIND");
      CHECK_FALSE(c->at("upstream_bind_config").contains("source_address"));
    }
    const json* plain = cluster(clusters, svc);
    REQUIRE(plain);
    CHECK_FALSE(plain->contains("upstream_bind_config"));
  }
  const json* authz = cluster(clusters, "clovisd_authz");
  REQUIRE(authz);
  CHECK(authz->at("load_assignment")
            .at("endpoints")[0]
            .at("lb_endpoints")[0]
            .at("endpoint")
            .at("address")
            .at("pipe")
            .at("path") == authz_path);
  CHECK(authz->at("typed_extension_protocol_options")
            .at("envoy.extensions.upstreams.http.v3.HttpProtocolOptions")
            .at("explicit_http_config")
            .contains("http2_protocol_options"));

  const json& listeners = doc.at("static_resources").at("listeners");
  REQUIRE(listeners.size() == 1);
  const json& hcm = listeners[0].at("filter_chains")[0].at("filters")[0].at("typed_config");
  const json& filters = hcm.at("http_filters");
  REQUIRE(filters.size() == 2);
  CHECK(filters[0].at("name") == "envoy.filters.http.ext_authz");
  CHECK(filters.back().at("name") == "envoy.filters.http.router");
  const json& authz_cfg = filters[0].at("typed_config");
  CHECK(authz_cfg.at("transport_api_version") == "V3");
  CHECK(authz_cfg.at("failure_mode_allow") == true);
  CHECK(authz_cfg.at("clear_route_cache") == true);
  CHECK(authz_cfg.at("grpc_service").at("envoy_grpc").at("cluster_name") == "clovisd_authz");
  const json& removed = hcm.at("early_header_mutation_extensions")[0].at("typed_config").at("mutations");
  CHECK(removed[0].at("remove") == "x-clovis-link");

  const json& vhosts = hcm.at("route_config").at("virtual_hosts");
  REQUIRE(vhosts.size() == services.size());
  for (size_t v = 0; v < services.size(); ++v) {
    const std::string& svc = services[v];
    INFO("virtual host " << svc);
    const json& routes = vhosts[v].at("routes");
    REQUIRE(routes.size() == m.order.size() + 1);
    for (size_t i = 0; i < m.order.size(); ++i) {
      const json& h = routes[i].at("match").at("headers");
      REQUIRE(h.size() == 1);
      CHECK(h[0].at("name") == "x-clovis-link");
      CHECK(h[0].at("string_match") == json{{"exact", m.order[i]}});
      CHECK(routes[i].at("route").at("cluster") == svc + "@" + m.order[i]);
    }
    const json& last = routes.back();
    CHECK_FALSE(last.at("match").contains("headers"));
    CHECK(last.at("match").at("prefix") == "/");
    CHECK(last.at("route").at("cluster") == svc);
    for (const auto& r : routes) CHECK(cluster(clusters, r.at("route").at("cluster")) != nullptr);
  }
}

// The rendered text with the example's absolute path as the repo-relative one.
std::string relative(std::string s) {
  for (size_t at; (at = s.find(kExample)) != std::string::npos;)
    s.replace(at, kExample.size(), "examples/edge-site.yaml");
  return s;
}

}  // namespace

TEST_CASE("envoy: golden bootstrap for examples/edge-site.yaml, YAML and JSON") {
  auto yaml = clovisctl(args({"envoy", "-f", kExample}, kTwoUpstreams));
  INFO(yaml.err);
  REQUIRE(yaml.code == cli::kExitOk);
  golden("envoy-edge-site.yaml", relative(yaml.out));
  auto js = clovisctl(args({"envoy", "-f", kExample, "-o", "json"}, kTwoUpstreams));
  REQUIRE(js.code == cli::kExitOk);
  golden("envoy-edge-site.json", js.out);
  // One document, two spellings.
  CHECK(parse_yaml(yaml.out) == json::parse(js.out));
}

TEST_CASE("envoy: one marked cluster per upstream and link, with the compiled mark, and routes on x-clovis-link") {
  auto r = clovisctl(args({"envoy", "-f", kExample, "--authz-socket", "/tmp/x/authz.sock"}, kTwoUpstreams));
  REQUIRE(r.code == cli::kExitOk);
  const Marks m = compiled_marks(*core::read_file(kExample));
  REQUIRE(m.order == std::vector<std::string>{"mpls", "broadband", "lte"});
  check_structure(parse_yaml(r.out), m, {"api", "video"}, "/tmp/x/authz.sock");
  // The implicit marks are noted, on stderr and in the header comment.
  CHECK(contains(r.err, "note: links mpls, broadband, lte have no mark:"));
  CHECK(contains(r.out, "# No mark: for mpls, broadband, lte in " + kExample + ":\n"));

  const json doc = json::parse(clovisctl(args({"envoy", "-f", kExample, "-o", "json"}, kTwoUpstreams)).out);
  check_structure(doc, m, {"api", "video"}, "/run/clovis/authz.sock");
  const json& clusters = doc["static_resources"]["clusters"];
  // Names resolve only in the families the link has a rule for.
  CHECK(cluster(clusters, "api@mpls")->at("dns_lookup_family") == "AUTO");
  CHECK(cluster(clusters, "api@lte")->at("dns_lookup_family") == "V4_ONLY");
  CHECK_FALSE(cluster(clusters, "api")->contains("dns_lookup_family"));
  // An IPv6 endpoint only where the link carries IPv6.
  CHECK(cluster(clusters, "video@mpls")->at("load_assignment")["endpoints"][0]["lb_endpoints"].size() == 2);
  CHECK(cluster(clusters, "video@lte")->at("load_assignment")["endpoints"][0]["lb_endpoints"].size() == 1);
  CHECK(cluster(clusters, "video@lte")->at("type") == "STATIC");
  // https: TLS with the host's name, verified.
  const json& tls = cluster(clusters, "api@broadband")->at("transport_socket").at("typed_config");
  CHECK(tls.at("sni") == "api.example.com");
  CHECK(tls.at("common_tls_context").at("validation_context").at("match_typed_subject_alt_names")[0] ==
        json{{"san_type", "DNS"}, {"matcher", {{"exact", "api.example.com"}}}});
  CHECK_FALSE(cluster(clusters, "video@mpls")->contains("transport_socket"));
  // With several upstreams each virtual host is its hosts'; with one, any host.
  const json& hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
  CHECK(hcm["route_config"]["virtual_hosts"][0]["domains"] == json{"api.example.com", "api.example.com:443"});
  const json one = json::parse(
      clovisctl({"envoy", "-f", kExample, "-o", "json", "--upstream", "svc=192.0.2.80:8080", "--listen", "[::1]:15001"})
          .out);
  const json& l = one["static_resources"]["listeners"][0];
  CHECK(l["address"]["socket_address"] == json{{"address", "::1"}, {"port_value", 15001}});
  CHECK(l["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]["virtual_hosts"][0]["domains"] ==
        json{"*"});
  CHECK(l["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"][0]["typed_config"]["grpc_service"]
         ["timeout"] == "0.1s");
}

TEST_CASE("envoy: explicit marks are rendered as written, and a link with dots gets a dot-free stat name") {
  const std::string text = R"(version: 1
links:
  - {name: isp.a, interface: wan0, gateway: 192.0.2.1, mark: 0x77}
  - {name: b, interface: wan1, gateway: 198.51.100.1, mark: 4096, mode: redirect}
default: {link: b}
)";
  const std::string file = write_temp("envoy-marks.yaml", text);
  auto r = clovisctl({"envoy", "-f", file, "--upstream", "svc=192.0.2.80:8080", "--authz-timeout", "250ms"});
  REQUIRE(r.code == cli::kExitOk);
  CHECK(r.err.empty());  // every mark is explicit: no note
  const Marks m = compiled_marks(text);
  CHECK(m.mark.at("isp.a") == 0x77);
  CHECK(m.mark.at("b") == 4096);
  const json doc = parse_yaml(r.out);
  check_structure(doc, m, {"svc"}, "/run/clovis/authz.sock");
  CHECK(cluster(doc["static_resources"]["clusters"], "svc@isp.a")->at("alt_stat_name") == "svc@isp_a");
  CHECK_FALSE(cluster(doc["static_resources"]["clusters"], "svc@b")->contains("alt_stat_name"));
  CHECK(contains(r.out, "timeout: \"0.25s\""));
  std::remove(file.c_str());
}

TEST_CASE("envoy: a link without the endpoints' family gets no cluster, and says so") {
  const std::string file = write_temp("envoy-v6only.yaml", R"(version: 1
links:
  - {name: dual, interface: wan0, gateway: [192.0.2.1, "2001:db8::1"]}
  - {name: v6, interface: wan1, gateway: "2001:db8:1::1"}
default: {link: dual}
)");
  auto r = clovisctl({"envoy", "-f", file, "-o", "json", "--upstream", "svc=192.0.2.80:8080"});
  REQUIRE(r.code == cli::kExitOk);
  CHECK(contains(r.err, "note: no cluster for svc via v6: link v6 carries IPv6 only"));
  const json doc = json::parse(r.out);
  const json& clusters = doc["static_resources"]["clusters"];
  CHECK(cluster(clusters, "svc@dual") != nullptr);
  CHECK(cluster(clusters, "svc@v6") == nullptr);
  const json& routes = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
                          ["route_config"]["virtual_hosts"][0]["routes"];
  REQUIRE(routes.size() == 2);  // dual, then the catch-all: x-clovis-link: v6 falls through to svc
  CHECK(routes[0]["route"]["cluster"] == "svc@dual");
  CHECK(routes[1]["route"]["cluster"] == "svc");
  // A name resolves in the link's family instead.
  auto named = clovisctl({"envoy", "-f", file, "-o", "json", "--upstream", "svc=svc.example.net:80"});
  const json named_doc = json::parse(named.out);
  const json& nc = named_doc["static_resources"]["clusters"];
  CHECK(cluster(nc, "svc@v6")->at("dns_lookup_family") == "V6_ONLY");
  std::remove(file.c_str());
}

TEST_CASE("envoy: parts to paste into an existing configuration") {
  auto clusters = clovisctl({"envoy", "-f", kExample, "--part", "clusters", "--upstream", "svc=192.0.2.80:8080"});
  REQUIRE(clusters.code == cli::kExitOk);
  json doc = parse_yaml(clusters.out);
  CHECK(doc.size() == 1);
  CHECK(doc["clusters"].size() == 3 + 1 + 1);
  auto filter = clovisctl({"envoy", "-f", kExample, "--part", "filter", "-o", "json"});  // needs no upstream
  REQUIRE(filter.code == cli::kExitOk);
  doc = json::parse(filter.out);
  CHECK(doc["http_filters"].size() == 1);
  CHECK(doc["http_filters"][0]["name"] == "envoy.filters.http.ext_authz");
  CHECK(doc.contains("early_header_mutation_extensions"));
  auto routes = clovisctl({"envoy", "-f", kExample, "--part", "routes", "--upstream", "svc=192.0.2.80:8080"});
  REQUIRE(routes.code == cli::kExitOk);
  doc = parse_yaml(routes.out);
  CHECK(doc["virtual_hosts"][0]["routes"].size() == 4);
  CHECK(contains(routes.out, "# Part: routes, for route_config.virtual_hosts."));
}

TEST_CASE("envoy: bad arguments are usage errors that say what and how to fix it") {
  struct Case {
    std::vector<std::string> extra;
    std::string says;
  };
  const Case cases[] = {
      {{"--upstream", "api"}, "--upstream 'api': no NAME= before the endpoints"},
      {{"--upstream", "=h:1"}, "no NAME="},
      {{"--upstream", "a b=h:1"}, "name 'a b' is not"},
      {{"--upstream", "api=api.example.com"}, "has no port: write HOST:PORT"},
      {{"--upstream", "api=h:0"}, "port '0' of 'h:0' is not 1-65535"},
      {{"--upstream", "api=h:70000"}, "is not 1-65535"},
      {{"--upstream", "api=2001:db8::1:443"}, "an IPv6 address goes in brackets"},
      {{"--upstream", "api=[10.0.0.1]:443"}, "is not an IPv6 address"},
      {{"--upstream", "api=ftp://h:21"}, "scheme 'ftp' is neither http nor https"},
      {{"--upstream", "api=https://h:443/v1"}, "has a path"},
      {{"--upstream", "api=bad_host:80"}, "'bad_host' is neither an IP address nor a host name"},
      {{"--upstream", "api=h:80,"}, "has no port"},
      {{"--upstream", "clovisd_authz=h:80"}, "is the cluster of clovisd's own socket"},
      {{"--upstream", "a=h:80", "--upstream", "a=g:80"}, "upstream 'a' is given twice"},
      {{"--upstream", "a=h:80", "--upstream", "b=h:81"}, "host h is in upstreams 'a' and 'b'"},
      {{}, "name the service(s) Envoy forwards to"},
      {{"--upstream", "a=h:80", "--listen", "localhost:10000"}, "Envoy listens on an IP address"},
      {{"--upstream", "a=h:80", "--authz-socket", "run/authz.sock"}, "is not an absolute path"},
      {{"--upstream", "a=h:80", "--authz-timeout", "soon"}, "--authz-timeout 'soon' is not a duration"},
  };
  for (const auto& c : cases) {
    auto r = clovisctl(args({"envoy", "-f", kExample}, c.extra));
    INFO((c.extra.empty() ? std::string("(none)") : c.extra.back()) << "\n" << r.err);
    CHECK(r.code == cli::kExitUsage);
    CHECK(r.out.empty());
    CHECK(contains(r.err, c.says));
  }
  auto r = clovisctl({"envoy", "-f", kExample, "--upstream", "api"});
  CHECK(contains(r.err, "write NAME=[https://]HOST:PORT[,HOST:PORT...], e.g. api=https://api.example.com:443"));
  CHECK(clovisctl({"envoy", "-f", kExample, "--part", "listeners"}).code == cli::kExitUsage);
  CHECK(clovisctl({"envoy", "-f", kExample, "-o", "table"}).code == cli::kExitUsage);
}

TEST_CASE("envoy: a rejected mapping, a missing file") {
  const std::string file = write_temp("envoy-bad.yaml", "version: 1\nlinks:\n  - {name: a, interface: wan0}\n");
  auto bad = clovisctl({"envoy", "-f", file, "--upstream", "a=h:80"});
  CHECK(bad.code == cli::kExitInvalid);
  CHECK(bad.out.empty());
  CHECK(contains(bad.err, "rejected"));
  std::remove(file.c_str());
  auto missing = clovisctl({"envoy", "-f", "/nonexistent/wan.yaml", "--upstream", "a=h:80"});
  CHECK(missing.code == cli::kExitIo);
}

TEST_CASE("envoy: every example mapping renders, with its compiled marks") {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(test::source_path("examples"))) {
    if (e.path().extension() != ".yaml") continue;
    ++n;
    INFO(e.path().string());
    auto r = clovisctl({"envoy", "-f", e.path().string(), "--upstream", "svc=192.0.2.80:8080"});
    REQUIRE(r.code == cli::kExitOk);
    const json doc = parse_yaml(r.out);
    Marks m = compiled_marks(*core::read_file(e.path().string()));
    // Links without IPv4 get no cluster for an IPv4 endpoint.
    auto c = core::check_mapping(*core::read_file(e.path().string()));
    for (const auto& l : core::link_routing(*c.compiled))
      if (!l.v4) m.order.erase(std::find(m.order.begin(), m.order.end(), l.name));
    check_structure(doc, m, {"svc"}, "/run/clovis/authz.sock");
  }
  CHECK(n >= 2);
}

TEST_CASE("yaml: plain where unambiguous, quoted otherwise, and comments") {
  nlohmann::ordered_json doc = nlohmann::ordered_json::object();
  cli::render::add_comment(doc, "top\n\nthree lines");
  doc["@type"] = "type.googleapis.com/x.v3.Y";
  doc["plain"] = "envoy.filters.http.router";
  for (const char* s : {"0.1s", "127.0.0.1", "*", "yes", "Off", "", "a: b", "x-clovis-link", "/run/a.sock"})
    doc["s"].push_back(s);
  doc["n"] = 36;
  doc["b"] = true;
  doc["empty"] = nlohmann::ordered_json::object();
  doc["list"] = nlohmann::ordered_json::array();
  nlohmann::ordered_json item = nlohmann::ordered_json::object();
  cli::render::add_comment(item, "an item");
  item["k"] = "v";
  item["nested"]["deep"] = 1;
  doc["items"].push_back(item);
  const std::string want = R"(# top
#
# three lines
"@type": type.googleapis.com/x.v3.Y
plain: envoy.filters.http.router
s:
  - "0.1s"
  - "127.0.0.1"
  - "*"
  - "yes"
  - "Off"
  - ""
  - "a: b"
  - x-clovis-link
  - /run/a.sock
"n": 36
b: true
empty: {}
list: []
items:
  # an item
  - k: v
    nested:
      deep: 1
)";
  CHECK(cli::render::to_yaml(doc) == want);
  // yaml-cpp reads back the same values, comments gone.
  CHECK(parse_yaml(want) == json::parse(cli::render::strip_comments(doc).dump()));
}

namespace {

// clovisd on a socket of its own: the real agent and service over fakes.
struct LiveAgent {
  test::TempDir dir{"envoy-live"};
  test::FakeDataplane dp;
  test::FakeHost host;
  std::unique_ptr<agent::Agent> agent;
  agent::Telemetry telemetry{dp};
  std::unique_ptr<agent::service::AgentService> service;
  std::unique_ptr<agent::service::ApiServer> server;

  LiveAgent() {
    int ifindex = 4;
    for (const char* n : {"wan0", "wan1", "wan2"})
      host.set_interface(n, {ifindex++, true, core::IpAddr::parse("192.0.2.2"), core::IpAddr::parse("2001:db8::2")});
    agent = std::make_unique<agent::Agent>(agent::AgentOptions{dir.path + "/state", 10000}, dp, host);
    service =
        std::make_unique<agent::service::AgentService>(*agent, telemetry, agent::service::ServiceOptions{"/pins", {}});
    auto s = agent::service::ApiServer::start({socket(), ""}, *service);
    REQUIRE_MESSAGE(s, (s ? "" : s.error().what()));
    server = std::move(*s);
  }
  ~LiveAgent() {
    server.reset();
    service.reset();
    agent.reset();
  }
  std::string socket() const { return dir.path + "/api/clovisd.sock"; }
  Run run(const std::vector<std::string>& a) { return clovisctl(a, socket()); }
  void apply(const std::string& name, const std::string& text) {
    const std::string file = dir.path + "/" + name;
    std::ofstream(file) << text;
    auto r = run({"apply", "-f", file});
    REQUIRE_MESSAGE(r.code == cli::kExitOk, r.err);
  }
};

const char* kFirst = R"(version: 1
links:
  - {name: a, interface: wan0, gateway: 192.0.2.1}
  - {name: b, interface: wan1, gateway: 198.51.100.1}
  - {name: c, interface: wan2, gateway: [203.0.113.1, "2001:db8::1"]}
default: {link: a}
)";

// b and c stay in slots 1 and 2; a fresh compile would put them in 0 and 1,
// with other default marks.
const char* kSecond = R"(version: 1
links:
  - {name: b, interface: wan1, gateway: 198.51.100.1}
  - {name: c, interface: wan2, gateway: [203.0.113.1, "2001:db8::1"]}
default: {link: c}
)";

}  // namespace

TEST_CASE("envoy live: the marks of the slots clovisd holds the links in, not a fresh compile's") {
  LiveAgent live;
  live.apply("first.yaml", kFirst);
  live.apply("second.yaml", kSecond);
  auto r = live.run({"envoy", "--upstream", "svc=192.0.2.80:8080"});
  INFO(r.err);
  REQUIRE(r.code == cli::kExitOk);
  CHECK(r.err.empty());  // the marks are clovisd's: no note about implicit marks
  CHECK(contains(r.out, "from clovisd's running mapping (generation 2, socket " + live.socket() + ")"));
  const json doc = parse_yaml(r.out);

  // The marks clovisd's fwmark rules use, as the agent handed them to the host.
  Marks installed;
  installed.order = {"b", "c"};
  for (const auto& rl : live.host.route_links()) {
    if (rl.interface == "wan1") installed.mark["b"] = rl.mark;
    if (rl.interface == "wan2") installed.mark["c"] = rl.mark;
  }
  REQUIRE(installed.mark.size() == 2);
  CHECK(installed.mark["b"] == 0x200);
  CHECK(installed.mark["c"] == 0x300);
  check_structure(doc, installed, {"svc"}, "/run/clovis/authz.sock");
  // What -f on the same text would have said.
  const Marks fresh = compiled_marks(kSecond);
  CHECK(fresh.mark.at("b") == 0x100);
  CHECK(fresh.mark.at("c") == 0x200);

  auto js = live.run({"envoy", "-o", "json", "--upstream", "svc=192.0.2.80:8080"});
  REQUIRE(js.code == cli::kExitOk);
  CHECK(json::parse(js.out) == doc);
}

TEST_CASE("envoy live: no mapping yet, no clovisd") {
  LiveAgent live;
  auto none = live.run({"envoy", "--upstream", "svc=192.0.2.80:8080"});
  CHECK(none.code == cli::kExitInvalid);
  CHECK(contains(none.err, "clovisd runs no mapping yet"));
  auto gone = clovisctl({"envoy", "--upstream", "svc=192.0.2.80:8080"}, "/nonexistent/clovisd.sock");
  CHECK(gone.code == cli::kExitUnavailable);
  CHECK(contains(gone.err, "clovisd is not running"));
}
