#include "decision.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "flows.hpp"
#include "table.hpp"

namespace clovis::cli::render {

using nlohmann::json;

namespace {

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

int64_t num(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<int64_t>() : 0;
}

bool flag(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

std::string flow_text(const json& f) {
  const std::string proto = str(f, "proto");
  std::string s = fmt::format("{} {} -> {}", proto, endpoint(str(f, "src"), num(f, "sport"), proto),
                              endpoint(str(f, "dst"), num(f, "dport"), proto));
  if (auto iif = str(f, "iif"); !iif.empty()) s += " iif " + iif;
  if (auto dscp = num(f, "dscp")) s += fmt::format(" dscp {}", dscp);
  if (auto mark = num(f, "mark")) s += fmt::format(" mark {:#x}", mark);
  return s;
}

std::string request_text(const json& r) {
  const std::string method = str(r, "method");
  std::string s = fmt::format("{} {}{}", method.empty() ? "-" : method, str(r, "host"), str(r, "path"));
  if (auto h = r.find("headers"); h != r.end() && h->is_object())
    for (const auto& [k, v] : h->items()) s += fmt::format("  {}: {}", k, v.is_string() ? v.get<std::string>() : "");
  return s;
}

std::string verdict_text(const json& doc) {
  const std::string v = str(doc, "verdict");
  const bool last_resort = flag(doc, "last_resort");
  if (v == "steer" && doc.value("link", json()).is_object()) {
    const json& l = doc["link"];
    std::string via = str(l, "mode") == "route"
                          ? fmt::format("route: mark {:#x} table {}", num(l, "mark"), num(l, "table"))
                          : std::string("redirect");
    return fmt::format("steer via {} (interface {}, {})", str(l, "name"), str(l, "interface"), via);
  }
  if (v == "bypass")
    return last_resort ? "bypass: no usable link, the policy's last resort leaves it to the host's routing"
                       : "bypass: left to the host's routing";
  if (v == "drop") return last_resort ? "drop: no usable link and the policy's last resort is drop" : "drop";
  if (v == "not-steered") return "not steered: no rule matches and the mapping has no default";
  return v;
}

std::string rule_text(const json& r, const std::string& file) {
  std::string s =
      flag(r, "default") ? std::string("default") : fmt::format("{} (priority {})", str(r, "name"), num(r, "priority"));
  if (flag(r, "l7")) s += ", matched on L7 facts";
  if (auto line = num(r, "line"); line > 0)
    s += file.empty() ? fmt::format("  line {}:{}", line, num(r, "col"))
                      : fmt::format("  {}:{}:{}", file, line, num(r, "col"));
  return s;
}

std::string policy_text(const json& p) {
  std::string s = str(p, "name");
  if (p.contains("on_link_down"))
    s += fmt::format(" (on-link-down {}, sticky {}, last-resort {})", str(p, "on_link_down"), str(p, "sticky"),
                     str(p, "last_resort"));
  return s;
}

// The policy's SLA class and strategy, as rows of their own. An older
// clovisd's decision has neither.
void sla_rows(Table& t, const json& p) {
  if (auto sla = p.value("sla", json()); sla.is_object()) {
    std::vector<std::string> limits;
    if (sla.value("latency_ms", json()).is_number())
      limits.push_back(fmt::format("latency {} ms", num(sla, "latency_ms")));
    if (sla.value("jitter_ms", json()).is_number())
      limits.push_back(fmt::format("jitter {} ms", num(sla, "jitter_ms")));
    if (auto l = sla.value("loss_pct", json()); l.is_number())
      limits.push_back(fmt::format("loss {}%", l.get<double>()));
    std::string s = fmt::format("{} ({}), fallback {}", str(sla, "name"), fmt::join(limits, ", "), str(p, "fallback"));
    if (flag(p, "none_in_sla")) s += ": no member meets it";
    t.row({"sla", s});
  }
  if (str(p, "strategy") == "best-quality") t.row({"strategy", "best-quality: the best measured link first"});
}

// `sla_class`: the policy has an SLA class, so each member is in or out of
// it (with strategy: best-quality alone there is only what was measured).
void members_text(std::ostream& os, const json& members, bool sla_class) {
  if (!members.is_array() || members.empty()) return;
  os << "members\n";
  const bool sla =
      std::any_of(members.begin(), members.end(), [](const json& n) { return n.value("sla", json()).is_object(); });
  std::vector<std::string> head = {"  TIER", "LINK", "WEIGHT", "STATE"};
  if (sla) head.push_back("SLA");
  head.push_back("");
  Table m(head);
  for (const auto& n : members) {
    std::vector<std::string> row = {fmt::format("  {}", num(n, "tier")), str(n, "link"),
                                    std::to_string(num(n, "weight")), str(n, "state")};
    if (sla) {
      const json q = n.value("sla", json());
      if (!q.is_object()) row.push_back("-");
      else if (!sla_class) row.push_back(str(q, "why"));
      else row.push_back(fmt::format("{}: {}", flag(q, "in_sla") ? "in" : "out", str(q, "why")));
    }
    row.push_back((flag(n, "chosen") ? "* " : "  ") + str(n, "note"));
    m.row(row);
  }
  m.print(os);
}

void l7_text(std::ostream& os, const json& checked) {
  if (!checked.is_array() || checked.empty()) return;
  os << "L7 rules checked (in priority order)\n";
  for (const auto& c : checked) {
    const std::string why = str(c, "why_not");
    os << fmt::format("  {} (priority {}): {}\n", str(c, "rule"), num(c, "priority"), why.empty() ? "matched" : why);
  }
}

void lookup_text(std::ostream& os, const json& lk, bool wide) {
  const int64_t shapes = num(lk, "shapes"), other = num(lk, "other_family"), probed = num(lk, "probed");
  std::string s = fmt::format("lookup: probed {} of {} table shape{}", probed, shapes, shapes == 1 ? "" : "s");
  std::vector<std::string> why;
  if (int64_t pruned = shapes - other - probed; pruned > 0)
    why.push_back(fmt::format("{} skipped: none could beat the best match", pruned));
  if (other > 0) why.push_back(fmt::format("{} of the other address family", other));
  for (size_t i = 0; i < why.size(); ++i) s += (i ? "; " : " (") + why[i] + (i + 1 == why.size() ? ")" : "");
  os << s << "\n";
  auto probes = lk.find("probes");
  if (!wide || probes == lk.end() || !probes->is_array()) return;
  // A hit is "better" when it beats every earlier hit: the kernel keeps the
  // lowest priority number, as the classifier's trace records.
  int64_t best = -1;
  for (const auto& p : *probes) {
    std::string hit = "no entry";
    if (flag(p, "hit")) {
      const int64_t prio = num(p, "priority");
      const bool better = best < 0 || prio < best;
      if (better) best = prio;
      hit = fmt::format("hit {} (priority {}){}", str(p, "rule"), prio, better ? "" : ", not better");
    }
    os << fmt::format("  #{} {}: {}\n", num(p, "shape"), str(p, "shape_desc"), hit);
  }
}

}  // namespace

void decision_text(std::ostream& os, const json& doc, const std::string& file, bool wide) {
  Table t({"", ""});
  t.row({"flow", flow_text(doc.value("flow", json::object()))});
  if (auto r = doc.value("request", json()); r.is_object()) t.row({"request", request_text(r)});
  t.row({"verdict", verdict_text(doc)});
  // Only where it is news: a request that the data path would drop. An older
  // clovisd's decision has no proxy_answer, and then nothing is claimed.
  if (const std::string answer = str(doc, "proxy_answer"); str(doc, "verdict") == "drop" && !answer.empty())
    t.row({"proxy", answer == "denied"
                        ? "denies it: PERMISSION_DENIED, the client gets 403 (proxy on-drop: deny)"
                        : "answers OK: the request goes on, unsteered (proxy on-drop: allow, fail-open)"});
  if (auto r = doc.value("rule", json()); r.is_object()) t.row({"rule", rule_text(r, file)});
  if (auto p = doc.value("policy", json()); p.is_object()) {
    t.row({"policy", policy_text(p)});
    sla_rows(t, p);
  }
  t.print(os);
  const json policy = doc.value("policy", json());
  members_text(os, doc.value("members", json()), policy.is_object() && policy.value("sla", json()).is_object());
  l7_text(os, doc.value("l7_checked", json()));
  lookup_text(os, doc.value("lookup", json::object()), wide);
}

json decision_text_doc(const DecisionView& v) {
  return core::decision_json(v);
}

}  // namespace clovis::cli::render
