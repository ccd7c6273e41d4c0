#include "diff.hpp"
#include "probe_wire.hpp"

#include <algorithm>
#include <iterator>
#include <string_view>
#include <unordered_map>

#include <fmt/format.h>

namespace clovis::core {

namespace {

// What changed in one entry, "field a -> b, field c -> d", written in place:
// an apply of 10k rules can change 10k of them.
// Without `detail` it only records that something changed, writing no text
// where it can tell without it.
class Changes {
 public:
  explicit Changes(bool detail) : detail_(detail) {}
  bool empty() const { return !changed_ && text_.empty(); }
  std::string take() { return std::move(text_); }
  void note(std::string_view s) {
    changed_ = true;
    if (!detail_) return;
    separate();
    text_ += s;
  }
  // "name a -> b" when the texts differ.
  void field(std::string_view name, std::string_view a, std::string_view b) {
    if (a == b) return;
    changed_ = true;
    if (!detail_) return;
    separate();
    text_.append(name).append(" ").append(a).append(" -> ").append(b);
  }
  // field_with for values that differ, of a type whose different values
  // always write different texts (addresses, ports, numbers).
  template <typename T, typename W>
  void field_distinct(std::string_view name, const T& a, const T& b, W write) {
    if (!detail_) {
      changed_ = true;
      return;
    }
    field_with(name, a, b, write);
  }
  // The same with each text written in place by write(out, value), and taken
  // back when the two come out equal.
  template <typename T, typename W>
  void field_with(std::string_view name, const T& a, const T& b, W write) {
    const size_t start = text_.size();
    separate();
    text_.append(name).append(" ");
    const size_t a0 = text_.size();
    write(text_, a);
    const size_t a1 = text_.size();
    text_ += " -> ";
    const size_t b0 = text_.size();
    write(text_, b);
    const std::string_view t(text_);
    if (t.substr(a0, a1 - a0) == t.substr(b0)) {
      text_.resize(start);
    } else {
      changed_ = true;
      if (!detail_) text_.clear();
    }
  }

 private:
  void separate() {
    if (!text_.empty()) text_ += ", ";
  }
  bool detail_;
  bool changed_ = false;
  std::string text_;
};

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

template <typename T, typename F>
std::string list_str(const std::vector<T>& v, F f, const char* empty = "any") {
  if (v.empty()) return empty;
  std::vector<std::string> parts;
  for (const auto& x : v) parts.push_back(f(x));
  return join(parts);
}

// list_str, written in place: write(out, item) appends one item.
template <typename T, typename W>
auto list_writer(W write, const char* empty = "any") {
  return [write, empty](std::string& out, const std::vector<T>& v) {
    if (v.empty()) out += empty;
    for (size_t i = 0; i < v.size(); ++i) {
      if (i) out += ", ";
      write(out, v[i]);
    }
  };
}

std::string addr_str(const std::optional<IpAddr>& a) {
  return a ? a->str() : "none";
}

template <typename T>
std::string num_str(const std::optional<T>& v, const char* none = "auto") {
  return v ? fmt::format("{}", *v) : none;
}

std::string snat_str(const Link& l) {
  if (l.snat != SnatMode::kAddress) return to_string(l.snat);
  std::vector<std::string> a;
  if (l.snat4) a.push_back(l.snat4->str());
  if (l.snat6) a.push_back(l.snat6->str());
  return join(a);
}

std::string health_str(const std::optional<Health>& h) {
  if (!h) return "none";
  auto probe = [](const Probe& p) { return probe_label(p); };
  return fmt::format("[{}] every {}ms timeout {}ms down {} up {} reliability {} loss {} latency {} jitter {}",
                     list_str(h->probes, probe, ""), h->interval_ms, h->timeout_ms, h->down_after, h->up_after,
                     h->reliability, num_str(h->max_loss_pct, "-"), num_str(h->max_latency_ms, "-"),
                     num_str(h->max_jitter_ms, "-"));
}

Changes link_changes(Changes c, const Link& a, const Link& b) {
  c.field("interface", a.interface, b.interface);
  c.field("gateway", addr_str(a.gateway4), addr_str(b.gateway4));
  c.field("gateway6", addr_str(a.gateway6), addr_str(b.gateway6));
  auto mac = [](const Link& l) { return l.gateway_mac ? format_mac(*l.gateway_mac) : "none"; };
  c.field("gateway-mac", mac(a), mac(b));
  c.field("point-to-point", a.point_to_point ? "yes" : "no", b.point_to_point ? "yes" : "no");
  c.field("mode", to_string(a.mode), to_string(b.mode));
  c.field("snat", snat_str(a), snat_str(b));
  c.field("masquerade", a.masquerade ? "yes" : "no", b.masquerade ? "yes" : "no");
  c.field("mark", num_str(a.mark), num_str(b.mark));
  c.field("table", num_str(a.table), num_str(b.table));
  auto same = [](const std::string& s) { return s; };
  c.field("labels", list_str(a.labels, same, "none"), list_str(b.labels, same, "none"));
  c.field("weight", std::to_string(a.weight), std::to_string(b.weight));
  if (health_str(a.health) != health_str(b.health))
    c.note(!a.health ? "health added" : !b.health ? "health removed" : "health changed");
  auto budget = [](const Link& l) {
    return l.budget ? fmt::format("{} per month from day {}", format_bytes(l.budget->limit_bytes), l.budget->reset_day)
                    : std::string("none");
  };
  c.field("budget", budget(a), budget(b));
  return c;
}

std::string member_str(const Member& m) {
  std::string s = m.link;
  if (m.tier != 1) s += fmt::format(" tier {}", m.tier);
  if (m.weight) s += fmt::format(" weight {}", *m.weight);
  return s;
}

Changes policy_changes(Changes c, const Policy& a, const Policy& b) {
  c.field("members", list_str(a.members, member_str, "none"), list_str(b.members, member_str, "none"));
  c.field("on-link-down", to_string(a.on_link_down), to_string(b.on_link_down));
  c.field("last-resort", to_string(a.last_resort), to_string(b.last_resort));
  c.field("sticky", to_string(a.sticky), to_string(b.sticky));
  c.field("avoid-degraded", a.avoid_degraded ? "yes" : "no", b.avoid_degraded ? "yes" : "no");
  c.field("sla", a.sla.empty() ? "none" : a.sla, b.sla.empty() ? "none" : b.sla);
  c.field("strategy", to_string(a.strategy), to_string(b.strategy));
  c.field("fallback", to_string(a.fallback), to_string(b.fallback));
  c.field("metered", a.metered_allow ? "allow" : "avoid", b.metered_allow ? "allow" : "avoid");
  c.field("on-sla-violation", to_string(a.on_sla_violation), to_string(b.on_sla_violation));
  c.field("hold-down", fmt::format("{}ms", a.hold_down_ms), fmt::format("{}ms", b.hold_down_ms));
  c.field("on-link-up", to_string(a.on_link_up), to_string(b.on_link_up));
  c.field("return-after", fmt::format("{}ms", a.return_after_ms), fmt::format("{}ms", b.return_after_ms));
  return c;
}

Changes sla_changes(Changes c, const SlaClass& a, const SlaClass& b) {
  auto ms = [](const std::optional<uint32_t>& v) { return v ? fmt::format("{}ms", *v) : std::string("none"); };
  auto pct = [](const std::optional<double>& v) { return v ? fmt::format("{}%", *v) : std::string("none"); };
  c.field("latency", ms(a.max_latency_ms), ms(b.max_latency_ms));
  c.field("jitter", ms(a.max_jitter_ms), ms(b.max_jitter_ms));
  c.field("loss", pct(a.max_loss_pct), pct(b.max_loss_pct));
  return c;
}

// Writes a field only when the values differ (most rules of an apply are
// unchanged). Only for types whose different values write different texts,
// so the output is the same as writing every field and comparing texts.
template <typename T, typename W>
void field_if(Changes& c, std::string_view name, const T& a, const T& b, W write) {
  if (!(a == b)) c.field_distinct(name, a, b, write);
}

// Cidr::str() in place. IPv4 by hand: inet_ntop goes through printf, which
// was a third of diffing 10k changed rules.
void write_cidr(std::string& out, const Cidr& c) {
  if (c.addr.family != Family::kV4) {
    out += c.str();
    return;
  }
  const auto& b = c.addr.bytes;
  fmt::format_to(std::back_inserter(out), "{}.{}.{}.{}/{}", b[0], b[1], b[2], b[3], c.plen);
}

bool same_headers(const std::vector<Header>& a, const std::vector<Header>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](const Header& x, const Header& y) { return x.name == y.name && x.value == y.value; });
}

Changes match_changes(Changes c, const Match& a, const Match& b) {
  auto out = [](std::string& s) { return std::back_inserter(s); };
  const auto cidrs = list_writer<Cidr>(write_cidr);
  const auto ports = list_writer<PortRange>([&](std::string& s, const PortRange& r) {
    if (r.lo == r.hi) fmt::format_to(out(s), "{}", r.lo);
    else fmt::format_to(out(s), "{}-{}", r.lo, r.hi);
  });
  const auto protos = list_writer<uint8_t>([](std::string& s, uint8_t p) { s += proto_name(p); });
  // An unset value reads "any", as a set one may: compared as texts.
  auto any = [](const OptString& v) { return v ? std::string_view(*v) : std::string_view("any"); };
  field_if(c, "match.src", a.src, b.src, cidrs);
  field_if(c, "match.dst", a.dst, b.dst, cidrs);
  field_if(c, "match.sport", a.sport, b.sport, ports);
  field_if(c, "match.dport", a.dport, b.dport, ports);
  field_if(c, "match.proto", a.proto, b.proto, protos);
  field_if(c, "match.dscp", a.dscp, b.dscp, [&](std::string& s, const std::optional<uint8_t>& d) {
    if (d) fmt::format_to(out(s), "{}", *d);
    else s += "any";
  });
  field_if(c, "match.mark", a.mark, b.mark, [&](std::string& s, const std::optional<std::pair<uint32_t, uint32_t>>& m) {
    if (m) fmt::format_to(out(s), "{:#x}/{:#x}", m->first, m->second);
    else s += "any";
  });
  c.field("match.interface", any(a.interface), any(b.interface));
  c.field("match.host", any(a.host), any(b.host));
  c.field("match.path-prefix", any(a.path_prefix), any(b.path_prefix));
  c.field("match.method", any(a.method), any(b.method));
  if (!same_headers(a.headers, b.headers))
    c.field_with("match.headers", a.headers, b.headers, list_writer<Header>([](std::string& s, const Header& h) {
                   s.append(h.name).append(": ").append(h.value);
                 }));
  return c;
}

std::string target_str(const Target& t) {
  if (t.kind == TargetKind::kBypass || t.kind == TargetKind::kDrop) return to_string(t.kind);
  return fmt::format("{} {}", to_string(t.kind), t.name);
}

Changes rule_changes(Changes c, const Rule& a, const Rule& b) {
  if (a.priority != b.priority) c.field("priority", std::to_string(a.priority), std::to_string(b.priority));
  c = match_changes(std::move(c), a.match, b.match);
  if (a.target.kind != b.target.kind || a.target.name != b.target.name)
    c.field("target", target_str(a.target), target_str(b.target));
  return c;
}

template <typename T, typename F>
void diff_named(const char* kind, const std::vector<T>* before, const std::vector<T>& after, F changes,
                size_t max_detail, std::vector<DiffItem>& out) {
  auto compare = [&](const T* a, const T& b) {
    if (!a) {
      out.push_back({kind, b.name, "added", {}});
      return;
    }
    Changes c = changes(Changes(out.size() < max_detail), *a, b);
    if (!c.empty()) out.push_back({kind, b.name, "changed", c.take()});
  };
  // Names are unique (validated). When they line up entry by entry, as they
  // do after most edits, pair them by position; otherwise through a hash
  // index: 100k rules must not mean 10^10 comparisons.
  if (before && before->size() == after.size() &&
      std::equal(before->begin(), before->end(), after.begin(),
                 [](const T& a, const T& b) { return a.name == b.name; })) {
    for (size_t i = 0; i < after.size(); ++i) compare(&(*before)[i], after[i]);
    return;
  }
  std::unordered_map<std::string_view, const T*> old_by_name, new_by_name;
  if (before) {
    old_by_name.reserve(before->size());
    for (const auto& x : *before) old_by_name.emplace(x.name, &x);
  }
  new_by_name.reserve(after.size());
  for (const auto& x : after) new_by_name.emplace(x.name, &x);
  for (const auto& b : after) {
    auto it = old_by_name.find(b.name);
    compare(it == old_by_name.end() ? nullptr : it->second, b);
  }
  if (!before) return;
  for (const auto& a : *before)
    if (!new_by_name.count(a.name)) out.push_back({kind, a.name, "removed", {}});
}

}  // namespace

std::vector<DiffItem> diff_mappings(const Mapping* before, const Mapping& after, size_t max_detail) {
  std::vector<DiffItem> out;
  out.reserve(after.slas.size() + after.links.size() + after.policies.size() + after.rules.size() + 1);
  diff_named("sla", before ? &before->slas : nullptr, after.slas, sla_changes, max_detail, out);
  diff_named("link", before ? &before->links : nullptr, after.links, link_changes, max_detail, out);
  diff_named("policy", before ? &before->policies : nullptr, after.policies, policy_changes, max_detail, out);
  diff_named("rule", before ? &before->rules : nullptr, after.rules, rule_changes, max_detail, out);
  const std::optional<Target> none;
  const auto& was = before ? before->default_target : none;
  const auto& now = after.default_target;
  if (!was && now) out.push_back({"default", "default", "added", target_str(*now)});
  else if (was && !now) out.push_back({"default", "default", "removed", target_str(*was)});
  else if (was && now && target_str(*was) != target_str(*now))
    out.push_back({"default", "default", "changed", fmt::format("{} -> {}", target_str(*was), target_str(*now))});
  // The proxy settings are always there (defaults when the file has none):
  // against no mapping, only a setting that differs from its default shows.
  const OnDrop drop_was = before ? before->proxy.on_drop : OnDrop::kAllow, drop_now = after.proxy.on_drop;
  if (drop_was != drop_now && before)
    out.push_back(
        {"proxy", "proxy", "changed", fmt::format("on-drop {} -> {}", to_string(drop_was), to_string(drop_now))});
  else if (drop_was != drop_now)
    out.push_back({"proxy", "proxy", "added", fmt::format("on-drop {}", to_string(drop_now))});
  const Unparsed unparsed_was = before ? before->unparsed : Unparsed::kDrop;
  if (unparsed_was != after.unparsed)
    out.push_back({"unparsed", "unparsed", before ? "changed" : "added",
                   before ? fmt::format("{} -> {}", to_string(unparsed_was), to_string(after.unparsed))
                          : to_string(after.unparsed)});
  // auto-rollback: its `after`, or none.
  const auto guard = [](const Mapping* m) {
    return m && m->auto_rollback ? fmt::format("after {:g}s", m->auto_rollback->after_ms / 1000.0) : std::string();
  };
  const std::string guard_was = guard(before), guard_now = guard(&after);
  if (guard_was != guard_now)
    out.push_back({"auto-rollback", "auto-rollback",
                   guard_was.empty()   ? "added"
                   : guard_now.empty() ? "removed"
                                       : "changed",
                   guard_was.empty() || guard_now.empty() ? guard_was + guard_now : guard_was + " -> " + guard_now});
  return out;
}

}  // namespace clovis::core
