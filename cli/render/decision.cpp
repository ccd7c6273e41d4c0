#include "decision.hpp"

#include <fmt/format.h>

#include "match_box.hpp"
#include "table.hpp"

namespace clovis::cli::render {

using nlohmann::json;

namespace {

std::string addr(const uint32_t w[4], uint8_t family) {
  return core::IpAddr::from_words(family == CLV_AF_INET ? core::Family::kV4 : core::Family::kV6, w).str();
}

bool has_ports(uint8_t proto) { return proto == 6 || proto == 17 || proto == 132 || proto == 136; }

std::string endpoint(const uint32_t w[4], uint8_t family, uint8_t proto, uint16_t port) {
  std::string a = addr(w, family);
  if (!has_ports(proto)) return a;
  return family == CLV_AF_INET6 ? fmt::format("[{}]:{}", a, port) : fmt::format("{}:{}", a, port);
}

std::string link_text(const core::CompiledRules& r, int slot) {
  const auto& li = r.link_info[slot];
  const auto& l = r.links[slot];
  std::string via = l.mode == CLV_MODE_ROUTE ? fmt::format("route: mark {:#x} table {}", l.mark, l.table)
                                             : std::string("redirect");
  return fmt::format("{} (interface {}, {})", li.name, li.interface, via);
}

std::string rule_pos(const DecisionView& v, const core::RuleInfo& ri) {
  if (ri.loc.line == 0) return "";
  return fmt::format("{}:{}:{}", v.file, ri.loc.line, ri.loc.col);
}

}  // namespace

std::string flow_text(const core::FlowQuery& q) {
  const auto& t = q.tuple;
  std::string s = fmt::format("{} {} -> {}", core::proto_name(t.proto),
                              endpoint(t.src, t.family, t.proto, t.sport),
                              endpoint(t.dst, t.family, t.proto, t.dport));
  if (!q.iif.empty()) s += " iif " + q.iif;
  if (t.dscp) s += fmt::format(" dscp {}", t.dscp);
  if (t.mark) s += fmt::format(" mark {:#x}", t.mark);
  return s;
}

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
               {"proto", core::proto_name(t.proto)},
               {"dscp", t.dscp},
               {"mark", t.mark},
               {"iif", v.query.iif}};
  if (v.query.l7) {
    json h = json::object();
    for (const auto& [k, val] : v.query.l7->headers) h[k] = val;
    j["request"] = {{"host", v.query.l7->host}, {"path", v.query.l7->path},
                    {"method", v.query.l7->method}, {"headers", h}};
  } else {
    j["request"] = nullptr;
  }
  j["verdict"] = core::to_string(d.verdict);
  if (d.rule_id) {
    const auto& ri = r.rules[*d.rule_id];
    j["rule"] = {{"name", ri.name},
                 {"priority", ri.is_default ? json(nullptr) : json(ri.priority)},
                 {"default", ri.is_default},
                 {"l7", d.by_l7},
                 {"line", ri.loc.line},
                 {"col", ri.loc.col}};
  } else {
    j["rule"] = nullptr;
  }
  j["policy"] = d.policy >= 0 ? json{{"name", r.policy_info[d.policy].name},
                                     {"implicit", r.policy_info[d.policy].implicit}}
                              : json(nullptr);
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
  for (const auto& m : d.members)
    members.push_back({{"link", r.link_info[m.slot].name}, {"tier", m.tier}, {"weight", m.weight},
                       {"state", m.state}, {"chosen", m.chosen}, {"note", m.note}});
  j["members"] = members;
  json probes = json::array();
  for (const auto& p : d.probes) {
    json pj = {{"shape", p.shape}, {"shape_desc", core::describe_shape(r.shapes[p.shape])}, {"hit", p.hit}};
    if (p.hit) pj["rule"] = r.rules[p.rule_id].name, pj["priority"] = p.priority;
    probes.push_back(pj);
  }
  j["lookup"] = {{"shapes", d.shapes_total},
                 {"other_family", d.shapes_other_family},
                 {"probed", d.probes.size()},
                 {"probes", probes}};
  json l7 = json::array();
  for (const auto& c : d.l7_checked)
    l7.push_back({{"rule", r.rules[c.rule_id].name}, {"priority", r.rules[c.rule_id].priority},
                  {"matched", c.why_not.empty()}, {"why_not", c.why_not}});
  j["l7_checked"] = l7;
  return j;
}

void decision_text(std::ostream& os, const DecisionView& v, bool wide) {
  const auto& r = v.rules;
  const auto& d = v.decision;
  Table t({"", ""});
  t.row({"flow", flow_text(v.query)});
  if (v.query.l7) {
    std::string req = fmt::format("{} {}{}", v.query.l7->method.empty() ? "-" : v.query.l7->method,
                                  v.query.l7->host, v.query.l7->path);
    for (const auto& [k, val] : v.query.l7->headers) req += fmt::format("  {}: {}", k, val);
    t.row({"request", req});
  }
  std::string verdict;
  switch (d.verdict) {
    case core::Verdict::kSteer: verdict = "steer via " + link_text(r, d.link); break;
    case core::Verdict::kBypass:
      verdict = d.last_resort ? "bypass: no usable link, the policy's last resort leaves it to the host's routing"
                              : "bypass: left to the host's routing";
      break;
    case core::Verdict::kDrop:
      verdict = d.last_resort ? "drop: no usable link and the policy's last resort is drop" : "drop";
      break;
    case core::Verdict::kNotSteered:
      verdict = "not steered: no rule matches and the mapping has no default";
      break;
  }
  t.row({"verdict", verdict});
  if (d.rule_id) {
    const auto& ri = r.rules[*d.rule_id];
    std::string rule = ri.is_default ? "default" : fmt::format("{} (priority {})", ri.name, ri.priority);
    if (d.by_l7) rule += ", matched on L7 facts";
    if (auto pos = rule_pos(v, ri); !pos.empty()) rule += "  " + pos;
    t.row({"rule", rule});
  }
  if (d.policy >= 0) {
    const auto& p = r.policies[d.policy];
    static const char* kSticky[] = {"flow", "source", "source-dest"};
    static const char* kDown[] = {"migrate", "keep", "drop"};
    t.row({"policy", fmt::format("{} (on-link-down {}, sticky {}, last-resort {})", r.policy_info[d.policy].name,
                                 kDown[p.on_down % 3], kSticky[p.sticky % 3],
                                 p.last_resort == CLV_LAST_DROP ? "drop" : "default")});
  }
  t.print(os);
  if (!d.members.empty()) {
    os << "members\n";
    Table m({"  TIER", "LINK", "WEIGHT", "STATE", ""});
    for (const auto& n : d.members)
      m.row({fmt::format("  {}", n.tier), r.link_info[n.slot].name, std::to_string(n.weight), n.state,
             (n.chosen ? "* " : "  ") + n.note});
    m.print(os);
  }
  if (!d.l7_checked.empty()) {
    os << "L7 rules checked (in priority order)\n";
    for (const auto& c : d.l7_checked) {
      const auto& ri = r.rules[c.rule_id];
      os << fmt::format("  {} (priority {}): {}\n", ri.name, ri.priority,
                        c.why_not.empty() ? "matched" : c.why_not);
    }
  }
  std::string probes = fmt::format("lookup: probed {} of {} table shape{}", d.probes.size(), d.shapes_total,
                                   d.shapes_total == 1 ? "" : "s");
  int pruned = d.shapes_total - d.shapes_other_family - static_cast<int>(d.probes.size());
  std::vector<std::string> why;
  if (pruned > 0) why.push_back(fmt::format("{} skipped: none could beat the best match", pruned));
  if (d.shapes_other_family > 0) why.push_back(fmt::format("{} of the other address family", d.shapes_other_family));
  for (size_t i = 0; i < why.size(); ++i) probes += (i ? "; " : " (") + why[i] + (i + 1 == why.size() ? ")" : "");
  os << probes << "\n";
  if (wide) {
    for (const auto& p : d.probes) {
      std::string hit = p.hit ? fmt::format("hit {} (priority {}){}", r.rules[p.rule_id].name, p.priority,
                                            p.better ? "" : ", not better")
                              : "no entry";
      os << fmt::format("  #{} {}: {}\n", p.shape, core::describe_shape(r.shapes[p.shape]), hit);
    }
  }
}

}  // namespace clovis::cli::render
