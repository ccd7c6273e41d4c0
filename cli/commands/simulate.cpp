// clovisctl simulate: which rule, policy and link a flow or request gets, and
// why — computed by walking the compiled tables the kernel would read: those
// of a mapping file (FILE or -f, offline), or clovisd's running ones with its live
// link states (the Simulate RPC).
#include <memory>

#include <fmt/format.h>

#include "app.hpp"
#include "client.hpp"
#include "core/classifier.hpp"
#include "core/flow_query.hpp"
#include "core/sla.hpp"
#include "exit_codes.hpp"
#include "mapping_file.hpp"
#include "render/decision.hpp"
#include "render/diagnostics.hpp"

namespace clovis::cli::commands {

namespace {

struct SimulateArgs {
  MappingFileArg file_arg;
  std::string file;  // mapping_path(file_arg): "" asks clovisd
  Output output = Output::kTable;
  std::string src, dst, proto = "tcp", dscp, mark, iif;
  uint16_t sport = 0, dport = 0;
  std::string host, path, method;
  std::vector<std::string> headers, down, degraded;
  std::vector<std::string> latency, jitter, loss;  // what-if: LINK=VALUE
};

struct WhatIf {
  std::string link;
  core::QualityField field;
  double value;
};

// --latency/--jitter/--loss as (link, field, value); on a bad one prints
// what and returns false (a usage error).
bool parse_what_if(const SimulateArgs& a, std::vector<WhatIf>* out, Context& ctx) {
  using F = core::QualityField;
  for (const auto& [list, field] :
       {std::pair{&a.latency, F::kLatency}, std::pair{&a.jitter, F::kJitter}, std::pair{&a.loss, F::kLoss}}) {
    for (const auto& arg : *list) {
      WhatIf w{{}, field, 0};
      std::string error;
      if (!core::parse_quality_arg(field, arg, &w.link, &w.value, &error)) {
        *ctx.err << fmt::format("clovisctl simulate: --{} {}\n", core::to_string(field), error);
        return false;
      }
      out->push_back(std::move(w));
    }
  }
  return true;
}

// Builds the query as clovisd builds a Simulate request's
// (core::build_flow_query); on a bad argument prints what and returns false
// (a usage error).
bool make_query(const SimulateArgs& a, core::FlowQuery* q, Context& ctx) {
  auto bad = [&](const std::string& msg) {
    *ctx.err << "clovisctl simulate: " << msg << "\n";
    return false;
  };
  core::FlowQuerySpec s;
  s.src = a.src;
  s.dst = a.dst;
  s.proto = a.proto;
  s.sport = a.sport;
  s.dport = a.dport;
  s.dscp = a.dscp;
  s.iif = a.iif;
  s.host = a.host;
  s.path = a.path;
  s.method = a.method;
  // Errors in the order the options were always checked: addresses, proto
  // and dscp (core), then mark, then headers.
  std::string mark_error, header_error;
  for (const auto& h : a.headers) {
    auto sep = h.find_first_of("=:");
    if (sep == std::string::npos || sep == 0) {
      if (header_error.empty()) header_error = fmt::format("--header '{}' is not NAME=VALUE", h);
      continue;
    }
    std::string value = h.substr(sep + 1);
    if (!value.empty() && value[0] == ' ') value.erase(0, 1);
    s.headers.emplace_back(h.substr(0, sep), value);
  }
  // The RPC takes the mark as a number; here it is text, hex allowed.
  if (!a.mark.empty()) {
    try {
      size_t used = 0;
      unsigned long v = std::stoul(a.mark, &used, a.mark.rfind("0x", 0) == 0 ? 16 : 10);
      if (used != a.mark.size() || v > 0xffffffffUL) throw std::out_of_range(a.mark);
      s.mark = static_cast<uint32_t>(v);
    } catch (const std::exception&) {
      mark_error = fmt::format("--mark '{}' is not a 32-bit number", a.mark);
    }
  }
  auto built = core::build_flow_query(s, "--");
  if (!built) return bad(built.error().message);
  if (!mark_error.empty()) return bad(mark_error);
  if (!header_error.empty()) return bad(header_error);
  *q = std::move(*built);
  return true;
}

int run_simulate(const SimulateArgs& a, Context& ctx) {
  core::FlowQuery q;
  std::vector<WhatIf> what_if;
  if (!make_query(a, &q, ctx) || !parse_what_if(a, &what_if, ctx)) return kExitUsage;
  auto text = read_mapping_text(a.file, ctx);
  if (!text) return kExitIo;
  const std::string name = display_name(a.file);
  auto checked = core::check_mapping(*text);
  if (!checked.ok()) {
    render::diagnostics_text(*ctx.err, checked.diagnostics, name);
    render::summary_text(*ctx.err, checked, name);
    return kExitInvalid;
  }
  const core::CompiledRules& rules = *checked.compiled;
  clv_link_state st = rules.all_up_state();
  for (const auto& [list, degrade] : {std::pair{&a.down, false}, std::pair{&a.degraded, true}}) {
    for (const auto& l : *list) {
      int slot = rules.link_slot(l);
      if (slot < 0) {
        *ctx.err << fmt::format("clovisctl simulate: no link '{}' in {}\n", l, name);
        return kExitUsage;
      }
      if (degrade) st.degraded |= 1ull << slot;
      else st.up &= ~(1ull << slot);
    }
  }
  // Offline nothing is measured: links are taken to be within their SLAs
  // (core/sla.hpp) unless a what-if value says otherwise.
  core::LinkQualities quality{};
  for (const auto& w : what_if) {
    const int slot = rules.link_slot(w.link);
    if (slot < 0) {
      *ctx.err << fmt::format("clovisctl simulate: --{}: no link '{}' in {}\n", core::to_string(w.field), w.link, name);
      return kExitUsage;
    }
    if (auto why = core::set_quality(&quality[static_cast<size_t>(slot)], w.field, w.value); !why.empty()) {
      *ctx.err << fmt::format("clovisctl simulate: --{}: {}\n", core::to_string(w.field), why);
      return kExitUsage;
    }
  }
  core::Classifier cls(rules);
  auto d = cls.decide(q, st, quality);
  render::DecisionView view{rules, q, d, name};
  if (a.output == Output::kJson) *ctx.out << core::decision_json(view).dump(2) << "\n";
  else render::decision_text(*ctx.out, render::decision_text_doc(view), name, a.output == Output::kWide);
  return kExitOk;
}

// The request carries the query as make_query normalized it, so clovisd sees
// the same flow an offline simulation would.
v1::SimulateRequest live_request(const core::FlowQuery& q, const std::vector<WhatIf>& what_if) {
  const auto& t = q.tuple;
  const auto family = t.family == CLV_AF_INET ? core::Family::kV4 : core::Family::kV6;
  v1::SimulateRequest req;
  req.set_src(core::IpAddr::from_words(family, t.src).str());
  req.set_dst(core::IpAddr::from_words(family, t.dst).str());
  req.set_sport(t.sport);
  req.set_dport(t.dport);
  req.set_proto(core::proto_name(t.proto));
  if (t.dscp) req.set_dscp(std::to_string(t.dscp));
  req.set_mark(t.mark);
  req.set_iif(q.iif);
  if (q.l7) {
    req.set_host(q.l7->host);
    req.set_path(q.l7->path);
    req.set_method(q.l7->method);
    for (const auto& [k, v] : q.l7->headers) (*req.mutable_headers())[k] = v;
  }
  for (const auto& w : what_if) {
    auto* m = w.field == core::QualityField::kLatency  ? req.mutable_latency_ms()
              : w.field == core::QualityField::kJitter ? req.mutable_jitter_ms()
                                                       : req.mutable_loss_pct();
    (*m)[w.link] = w.value;
  }
  return req;
}

int run_live(const SimulateArgs& a, Context& ctx) {
  if (!a.down.empty() || !a.degraded.empty()) {
    *ctx.err << "clovisctl simulate: --down and --degraded need a mapping FILE: without one clovisd's live link states "
                "apply\n";
    return kExitUsage;
  }
  core::FlowQuery q;
  std::vector<WhatIf> what_if;
  if (!make_query(a, &q, ctx) || !parse_what_if(a, &what_if, ctx)) return kExitUsage;
  auto client = Client::open(ctx, "simulate");
  if (!client) return kExitUnavailable;
  v1::SimulateResponse resp;
  if (!client->call(&v1::Agent::Stub::Simulate, live_request(q, what_if), &resp)) return client->failure();
  auto doc = nlohmann::json::parse(resp.decision_json(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    *ctx.err << "clovisctl simulate: clovisd returned a decision that is not a JSON object (a bug; please report it)\n";
    return kExitInternal;
  }
  if (a.output == Output::kJson) {
    *ctx.out << doc.dump(2) << "\n";
  } else {
    *ctx.out << fmt::format("mapping  running, generation {}\n", resp.generation());
    render::decision_text(*ctx.out, doc, "", a.output == Output::kWide);
  }
  return kExitOk;
}

}  // namespace

void add_simulate(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<SimulateArgs>();
  auto* cmd = app.add_subcommand("simulate", "Show which rule, policy and link a flow or request gets, and why");
  add_mapping_file(cmd, &a->file_arg, "; without it, ask clovisd about its running mapping");
  cmd->add_option("--src", a->src, "Source address")->required();
  cmd->add_option("--dst", a->dst, "Destination address")->required();
  cmd->add_option("--sport", a->sport, "Source port");
  cmd->add_option("--dport", a->dport, "Destination port");
  cmd->add_option("--proto", a->proto, "Protocol: tcp, udp, icmp, icmpv6 or a number")->default_str("tcp");
  cmd->add_option("--dscp", a->dscp, "DSCP value or name (ef, af41...)");
  cmd->add_option("--mark", a->mark, "Firewall mark of the packet");
  cmd->add_option("--iif", a->iif, "Ingress interface name");
  cmd->add_option("--host", a->host, "L7: HTTP host (makes this a request)");
  cmd->add_option("--path", a->path, "L7: HTTP path");
  cmd->add_option("--method", a->method, "L7: HTTP method (default GET)");
  cmd->add_option("--header", a->headers, "L7: header NAME=VALUE (repeatable)");
  cmd->add_option("--down", a->down, "Treat this link as down (repeatable)");
  cmd->add_option("--degraded", a->degraded, "Treat this link as degraded (repeatable)");
  cmd->add_option("--latency", a->latency, "What if LINK's latency were this: LINK=180ms (repeatable)");
  cmd->add_option("--jitter", a->jitter, "What if LINK's jitter were this: LINK=40ms (repeatable)");
  cmd->add_option("--loss", a->loss, "What if LINK's loss were this: LINK=3% (repeatable)");
  add_output_option(cmd, &a->output);
  on_run(cmd, ctx, [a, &ctx] {
    a->file = mapping_path(a->file_arg, false);
    return a->file.empty() ? run_live(*a, ctx) : run_simulate(*a, ctx);
  });
}

}  // namespace clovis::cli::commands
