#include "decision_json.hpp"

#include <fmt/format.h>

#include "core/match_box.hpp"

namespace clovis::core {

using nlohmann::json;

namespace {

std::string addr(const uint32_t w[4], uint8_t family) {
  return IpAddr::from_words(family == CLV_AF_INET ? Family::kV4 : Family::kV6, w).str();
}

}  // namespace

json decision_json(const DecisionView& v) {
  const auto& r = v.rules;
  const auto& d = v.decision;
  const auto& t = v.query.tuple;
  json j;
  j["flow"] = {{"family", t.family == CLV_AF_INET ? "ipv4" : "ipv6"},
               {"src", addr(t.src, t.family)},
               {"dst", addr(t.dst, t.family)},
               {"sport", t.sport},
               {"dport", t.dport},
               {"proto", proto_name(t.proto)},
               {"dscp", t.dscp},
               {"mark", t.mark},
               {"iif", v.query.iif}};
  if (v.query.l7) {
    json h = json::object();
    for (const auto& [k, val] : v.query.l7->headers) h[k] = val;
    j["request"] = {
        {"host", v.query.l7->host}, {"path", v.query.l7->path}, {"method", v.query.l7->method}, {"headers", h}};
  } else {
    j["request"] = nullptr;
  }
  j["verdict"] = to_string(d.verdict);
  // What clovisd's ext_authz Check answers a proxy for this request: OK
  // (fail-open), or a denial for a drop verdict when the mapping says
  // proxy: {on-drop: deny}. A packet has no proxy to answer.
  if (v.query.l7) j["proxy_answer"] = d.verdict == Verdict::kDrop && r.on_drop == OnDrop::kDeny ? "denied" : "ok";
  else j["proxy_answer"] = nullptr;
  if (d.rule_id) {
    const auto& ri = r.rules[*d.rule_id];
    j["rule"] = {{"name", ri.name},          {"priority", ri.is_default ? json(nullptr) : json(ri.priority)},
                 {"default", ri.is_default}, {"l7", d.by_l7},
                 {"line", ri.loc.line},      {"col", ri.loc.col}};
  } else {
    j["rule"] = nullptr;
  }
  if (d.policy >= 0) {
    static const char* const kSticky[] = {"flow", "source", "source-dest"};
    static const char* const kDown[] = {"migrate", "keep", "drop"};
    const clv_policy& p = r.policies[d.policy];
    j["policy"] = {{"name", r.policy_info[d.policy].name},
                   {"implicit", r.policy_info[d.policy].implicit},
                   {"on_link_down", kDown[p.on_down % 3]},
                   {"sticky", kSticky[p.sticky % 3]},
                   {"last_resort", p.last_resort == CLV_LAST_DROP ? "drop" : "default"}};
    // Additive: the policy's SLA class, strategy and fallback.
    const PolicySla* ps = static_cast<size_t>(d.policy) < r.policy_sla.size() ? &r.policy_sla[d.policy] : nullptr;
    json sla = nullptr;
    if (ps && ps->sla) {
      const SlaClass& c = *ps->sla;
      sla = {{"name", c.name},
             {"latency_ms", c.max_latency_ms ? json(*c.max_latency_ms) : json(nullptr)},
             {"jitter_ms", c.max_jitter_ms ? json(*c.max_jitter_ms) : json(nullptr)},
             {"loss_pct", c.max_loss_pct ? json(*c.max_loss_pct) : json(nullptr)}};
    }
    j["policy"]["sla"] = sla;
    j["policy"]["strategy"] = to_string(ps ? ps->strategy : Strategy::kTiers);
    j["policy"]["fallback"] = ps && ps->sla ? json(to_string(ps->fallback)) : json(nullptr);
    j["policy"]["none_in_sla"] = d.none_in_sla;
  } else {
    j["policy"] = nullptr;
  }
  if (d.link >= 0) {
    const auto& l = r.links[d.link];
    j["link"] = {{"name", r.link_info[d.link].name},
                 {"interface", r.link_info[d.link].interface},
                 {"mode", l.mode == CLV_MODE_ROUTE ? "route" : "redirect"},
                 {"mark", l.mark},
                 {"table", l.table}};
  } else {
    j["link"] = nullptr;
  }
  j["last_resort"] = d.last_resort;
  j["hash"] = fmt::format("{:#010x}", d.hash);
  json members = json::array();
  for (size_t i = 0; i < d.members.size(); ++i) {
    const auto& m = d.members[i];
    json mj = {{"link", r.link_info[m.slot].name},
               {"tier", m.tier},
               {"weight", m.weight},
               {"state", m.state},
               {"chosen", m.chosen},
               {"note", m.note}};
    // Additive: the member's SLA standing, null without an SLA or strategy.
    mj["sla"] = nullptr;
    if (d.sla_applied && i < d.sla.size()) {
      const MemberSla& s = d.sla[i];
      mj["sla"] = {{"in_sla", s.in_sla},
                   {"measured", s.measured},
                   {"latency_ms", s.measured ? json(s.quality.latency_ms) : json(nullptr)},
                   {"jitter_ms", s.measured ? json(s.quality.jitter_ms) : json(nullptr)},
                   {"loss_pct", s.measured ? json(s.quality.loss_pct) : json(nullptr)},
                   {"why", s.why}};
    }
    members.push_back(std::move(mj));
  }
  j["members"] = members;
  json probes = json::array();
  for (const auto& p : d.probes) {
    json pj = {{"shape", p.shape}, {"shape_desc", describe_shape(r.shapes[p.shape])}, {"hit", p.hit}};
    if (p.hit) pj["rule"] = r.rules[p.rule_id].name, pj["priority"] = p.priority;
    probes.push_back(pj);
  }
  j["lookup"] = {{"shapes", d.shapes_total},
                 {"other_family", d.shapes_other_family},
                 {"probed", d.probes.size()},
                 {"probes", probes}};
  json l7 = json::array();
  for (const auto& c : d.l7_checked)
    l7.push_back({{"rule", r.rules[c.rule_id].name},
                  {"priority", r.rules[c.rule_id].priority},
                  {"matched", c.why_not.empty()},
                  {"why_not", c.why_not}});
  j["l7_checked"] = l7;
  return j;
}

}  // namespace clovis::core
