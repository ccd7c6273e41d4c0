// clovisctl envoy: the Envoy configuration that steers Envoy's own upstream
// connections by clovisd's ext_authz answers (docs/ENVOY.md): per-link
// clusters marked with each link's fwmark, the ext_authz filter, the routes.
// The marks come from a mapping file compiled here (-f), or from clovisd's
// running mapping compiled with the link slots clovisd holds (default marks
// and tables follow slots, and slots depend on the mappings applied before).
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <fmt/format.h>

#include "app.hpp"
#include "client.hpp"
#include "exit_codes.hpp"
#include "mapping_file.hpp"
#include "render/diagnostics.hpp"
#include "render/envoy.hpp"

namespace clovis::cli::commands {

namespace {

constexpr const char* kUpstreamForm = "NAME=[https://]HOST:PORT[,HOST:PORT...], e.g. api=https://api.example.com:443";

struct EnvoyArgs {
  MappingFileArg file_arg;
  std::string file;  // mapping_path(file_arg): "" asks clovisd
  std::vector<std::string> upstreams;
  std::string listen = "127.0.0.1:10000";
  std::string authz_socket = "/run/clovis/authz.sock";
  std::string authz_timeout = "100ms";
  std::string part = "bootstrap";
  std::string output = "yaml";
};

// Prints message; false, for a usage error (the command exits kExitUsage).
bool usage(Context& ctx, const std::string& message) {
  *ctx.err << "clovisctl envoy: " << message << "\n";
  return false;
}

render::EnvoyPart part_of(const std::string& p) {
  if (p == "clusters") return render::EnvoyPart::kClusters;
  if (p == "filter") return render::EnvoyPart::kFilter;
  if (p == "routes") return render::EnvoyPart::kRoutes;
  return render::EnvoyPart::kBootstrap;
}

bool make_options(const EnvoyArgs& a, render::EnvoyOptions* o, Context& ctx) {
  o->part = part_of(a.part);
  for (const auto& spec : a.upstreams) {
    auto u = render::parse_envoy_upstream(spec);
    if (!u) return usage(ctx, fmt::format("--upstream '{}': {}\n  write {}", spec, u.error().message, kUpstreamForm));
    o->upstreams.push_back(std::move(*u));
  }
  if (auto st = render::check_envoy_upstreams(o->upstreams); !st)
    return usage(ctx, "--upstream: " + st.error().message);
  if (o->upstreams.empty() && o->part != render::EnvoyPart::kFilter)
    return usage(ctx, fmt::format("name the service(s) Envoy forwards to: --upstream {}", kUpstreamForm));
  auto listen = render::parse_envoy_endpoint(a.listen);
  if (!listen) return usage(ctx, fmt::format("--listen '{}': {}", a.listen, listen.error().message));
  if (!listen->ip)
    return usage(ctx, fmt::format("--listen '{}': Envoy listens on an IP address, not a name", a.listen));
  o->listen = *listen;
  if (a.authz_socket.empty() || (a.authz_socket[0] != '/' && a.authz_socket[0] != '@'))
    return usage(ctx,
                 fmt::format("--authz-socket '{}' is not an absolute path (clovisd's --authz-socket)", a.authz_socket));
  o->authz_socket = a.authz_socket;
  auto ms = core::parse_duration_ms(a.authz_timeout);
  if (!ms || *ms == 0)
    return usage(ctx, fmt::format("--authz-timeout '{}' is not a duration (e.g. 100ms)", a.authz_timeout));
  o->authz_timeout_ms = *ms;
  return true;
}

// The links of a checked mapping with their marks, in the mapping's order.
std::vector<core::LinkRouting> links_in_order(const core::Checked& c) {
  const auto all = core::link_routing(*c.compiled);
  std::vector<core::LinkRouting> out;
  for (const auto& l : c.mapping->links)
    for (const auto& r : all)
      if (r.name == l.name) out.push_back(r);
  return out;
}

struct Source {
  core::Checked checked;
  std::string name;
};

// A source, or the exit code of a failure already reported.
using SourceOrExit = std::variant<Source, int>;

SourceOrExit from_file(const EnvoyArgs& a, render::EnvoyOptions* o, Context& ctx) {
  auto text = read_mapping_text(a.file, ctx);
  if (!text) return kExitIo;
  Source s{core::check_mapping(*text), display_name(a.file)};
  if (!s.checked.ok()) {
    render::diagnostics_text(*ctx.err, s.checked.diagnostics, s.name);
    render::summary_text(*ctx.err, s.checked, s.name);
    return kExitInvalid;
  }
  std::vector<std::string> implicit;
  for (const auto& l : s.checked.mapping->links)
    if (!l.mark) implicit.push_back(l.name);
  if (!implicit.empty()) {
    std::string names;
    for (const auto& n : implicit) names += (names.empty() ? "" : ", ") + n;
    o->caveats.push_back(
        fmt::format("No mark: for {0} in {1}:\n"
                    "these marks are the ones a clovisd that starts from this mapping gives them. One that\n"
                    "ran other mappings first may hold the links in other slots, with other marks: render\n"
                    "from the running clovisd (no mapping FILE), or set mark: on every link.",
                    names, s.name));
    *ctx.err << fmt::format(
        "clovisctl envoy: note: links {} have no mark: in {}; their marks here are those a clovisd starting from "
        "this mapping assigns. Render from the running clovisd (without -f), or set mark: on every link.\n",
        names, s.name);
  }
  o->source = s.name;
  return s;
}

// GetMapping, the slots from ListLinks, GetMapping again: the same generation
// both times means the slots belong to that mapping.
SourceOrExit from_agent(render::EnvoyOptions* o, Context& ctx) {
  auto client = Client::open(ctx, "envoy");
  if (!client) return kExitUnavailable;
  for (int attempt = 0; attempt < 3; ++attempt) {
    v1::GetMappingResponse before, after;
    v1::ListLinksResponse links;
    if (!client->call(&v1::Agent::Stub::GetMapping, v1::GetMappingRequest(), &before)) return client->failure();
    if (before.generation() == 0 && before.mapping_yaml().empty()) {
      *ctx.err << "clovisctl envoy: clovisd runs no mapping yet; apply one (clovisctl apply FILE) or render "
                  "from a file (clovisctl envoy FILE ...)\n";
      return kExitInvalid;
    }
    if (!client->call(&v1::Agent::Stub::ListLinks, v1::ListLinksRequest(), &links)) return client->failure();
    if (!client->call(&v1::Agent::Stub::GetMapping, v1::GetMappingRequest(), &after)) return client->failure();
    if (before.generation() != after.generation()) continue;
    std::vector<std::pair<std::string, int>> slots;
    for (const auto& l : links.links()) slots.emplace_back(l.name(), static_cast<int>(l.slot()));
    const core::CompiledRules layout = core::slot_layout(slots);
    core::CompileOptions opts;
    opts.generation = before.generation();
    opts.previous = &layout;
    Source s{core::check_mapping(before.mapping_yaml(), opts),
             fmt::format("clovisd's running mapping (generation {}, socket {})", before.generation(), ctx.socket)};
    if (!s.checked.ok()) {
      render::diagnostics_text(*ctx.err, s.checked.diagnostics, "<running mapping>");
      *ctx.err << "clovisctl envoy: this clovisctl rejects the mapping clovisd runs; are clovisctl and clovisd of "
                  "the same version?\n";
      return kExitInternal;
    }
    for (const auto& [name, slot] : slots)
      if (s.checked.compiled->link_slot(name) != slot) {
        *ctx.err << fmt::format(
            "clovisctl envoy: clovisd holds link {} in slot {}, which its running mapping "
            "cannot explain (a bug; please report it)\n",
            name, slot);
        return kExitInternal;
      }
    o->source = s.name;
    return s;
  }
  *ctx.err << "clovisctl envoy: clovisd's mapping kept changing while it was read; try again\n";
  return kExitUnavailable;
}

int run_envoy(const EnvoyArgs& a, Context& ctx) {
  render::EnvoyOptions o;
  if (!make_options(a, &o, ctx)) return kExitUsage;
  auto got = a.file.empty() ? from_agent(&o, ctx) : from_file(a, &o, ctx);
  if (const int* code = std::get_if<int>(&got)) return *code;
  const Source* src = &std::get<Source>(got);
  const auto cfg = render::envoy_config(links_in_order(src->checked), o);
  for (const auto& s : cfg.skipped) *ctx.err << "clovisctl envoy: note: no cluster for " << s << "\n";
  *ctx.out << (a.output == "json" ? render::envoy_json(cfg) : render::envoy_yaml(cfg));
  return kExitOk;
}

}  // namespace

void add_envoy(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<EnvoyArgs>();
  auto* cmd = app.add_subcommand(
      "envoy", "Render the Envoy configuration that sends each request out of the link clovisd picks");
  cmd->footer(
      "Per upstream service: one cluster per link (SERVICE@LINK) whose sockets carry the link's mark, and one\n"
      "unmarked cluster (SERVICE); the ext_authz filter that asks clovisd; routes on x-clovis-link.\n"
      "See docs/ENVOY.md and clovisctl(8).");
  add_mapping_file(cmd, &a->file_arg, "; without it, clovisd's running mapping and link slots");
  cmd->add_option("--upstream", a->upstreams,
                  "Service to forward to, NAME=[https://]HOST:PORT[,HOST:PORT...] (repeatable)");
  cmd->add_option("--listen", a->listen, "Envoy's listener, ADDRESS:PORT")->default_str(a->listen);
  cmd->add_option("--authz-socket", a->authz_socket, "clovisd's ext_authz socket")->default_str(a->authz_socket);
  cmd->add_option("--authz-timeout", a->authz_timeout, "How long Envoy waits for clovisd's answer")
      ->default_str(a->authz_timeout);
  cmd->add_option("--part", a->part, "What to print: a whole bootstrap, or one part to paste")
      ->check(CLI::IsMember({"bootstrap", "clusters", "filter", "routes"}))
      ->default_str(a->part);
  cmd->add_option("-o,--output", a->output, "Output format: yaml (default) or json")
      ->check(CLI::IsMember({"yaml", "json"}));
  on_run(cmd, ctx, [a, &ctx] {
    a->file = mapping_path(a->file_arg, false);
    return run_envoy(*a, ctx);
  });
}

}  // namespace clovis::cli::commands
