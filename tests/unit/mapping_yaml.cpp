#include "mapping_yaml.hpp"

#include <cctype>
#include <random>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace clovis::test {

namespace {

// A YAML value before it is written out: the same tree can be written in
// block or flow style.
struct Value {
  enum class Kind { kScalar, kList, kMap } kind = Kind::kScalar;
  std::string scalar;
  std::vector<Value> items;
  std::vector<std::pair<std::string, Value>> entries;

  static Value of(std::string s) { return {Kind::kScalar, std::move(s), {}, {}}; }
  static Value list() { return {Kind::kList, {}, {}, {}}; }
  static Value map() { return {Kind::kMap, {}, {}, {}}; }
  Value& add(std::string key, Value v) { return entries.emplace_back(std::move(key), std::move(v)), *this; }
  Value& add(std::string key, std::string v) { return add(std::move(key), of(std::move(v))); }
  Value& push(Value v) { return items.push_back(std::move(v)), *this; }
};

class ValueBuilder {
 public:
  explicit ValueBuilder(uint64_t seed) : rng_(seed) {}

  Value mapping(const core::Mapping& m) {
    Value root = Value::map();
    root.add("version", "1");
    Value links = Value::list();
    for (const auto& l : m.links) links.push(link(l));
    root.add("links", std::move(links));
    if (!m.policies.empty()) {
      Value pols = Value::list();
      for (const auto& p : m.policies) pols.push(policy(p));
      root.add("policies", std::move(pols));
    }
    const bool default_first = m.default_target && chance(50);
    if (default_first) root.add("default", target(Value::map(), *m.default_target));
    if (!m.rules.empty()) {
      Value rules = Value::list();
      for (const auto& r : m.rules) rules.push(rule(r));
      root.add("rules", std::move(rules));
    }
    if (m.default_target && !default_first) root.add("default", target(Value::map(), *m.default_target));
    return root;
  }

 private:
  bool chance(int percent) { return static_cast<int>(rng_() % 100) < percent; }

  // One item as a scalar, or a one-item list, or a list.
  template <typename T, typename F>
  Value one_or_list(const std::vector<T>& xs, F str) {
    if (xs.size() == 1 && chance(70)) return Value::of(str(xs[0]));
    Value l = Value::list();
    for (const auto& x : xs) l.push(Value::of(str(x)));
    return l;
  }

  Value link(const core::Link& l) {
    Value v = Value::map();
    v.add("name", l.name).add("interface", l.interface);
    std::vector<core::IpAddr> gws;
    if (l.gateway4) gws.push_back(*l.gateway4);
    if (l.gateway6) gws.push_back(*l.gateway6);
    if (!gws.empty()) v.add("gateway", one_or_list(gws, [](const core::IpAddr& a) { return a.str(); }));
    if (l.mode == core::SteerMode::kRedirect || chance(20)) v.add("mode", core::to_string(l.mode));
    if (l.snat == core::SnatMode::kMasquerade) v.add("snat", "masquerade");
    if (l.snat == core::SnatMode::kAddress) v.add("snat", (l.snat4 ? l.snat4 : l.snat6)->str());
    if (l.weight != 1 || chance(10)) v.add("weight", std::to_string(l.weight));
    if (!l.labels.empty()) v.add("labels", one_or_list(l.labels, [](const std::string& s) { return s; }));
    if (l.health) {
      Value h = Value::map(), probes = Value::list();
      for (const auto& p : l.health->probes)
        probes.push(Value::map().add(
            p.kind == core::ProbeKind::kTcp ? "tcp" : "icmp",
            p.kind == core::ProbeKind::kTcp ? fmt::format("{}:{}", p.target.str(), p.port) : p.target.str()));
      h.add("probes", std::move(probes)).add("interval", fmt::format("{}ms", l.health->interval_ms));
      v.add("health", std::move(h));
    }
    return v;
  }

  Value policy(const core::Policy& p) {
    Value v = Value::map();
    v.add("name", p.name);
    bool failover = true;
    for (size_t i = 0; i < p.members.size(); ++i)
      failover = failover && p.members[i].tier == i + 1 && !p.members[i].weight;
    if (failover && chance(70)) {
      v.add("failover", one_or_list(p.members, [](const core::Member& m) { return m.link; }));
    } else {
      Value ms = Value::list();
      for (const auto& m : p.members) {
        if (m.tier == 1 && !m.weight && chance(30)) {
          ms.push(Value::of(m.link));
          continue;
        }
        Value mv = Value::map();
        mv.add("link", m.link).add("tier", std::to_string(m.tier));
        if (m.weight) mv.add("weight", std::to_string(*m.weight));
        ms.push(std::move(mv));
      }
      v.add("members", std::move(ms));
    }
    if (p.sticky != core::Sticky::kFlow || chance(20)) v.add("sticky", core::to_string(p.sticky));
    if (p.on_link_down != core::OnLinkDown::kMigrate) v.add("on-link-down", core::to_string(p.on_link_down));
    if (!p.avoid_degraded) v.add("avoid-degraded", "false");
    return v;
  }

  Value target(Value v, const core::Target& t) {
    if (t.kind == core::TargetKind::kPolicy) return v.add("policy", t.name);
    if (t.kind == core::TargetKind::kLink) return v.add("link", t.name);
    return v.add("action", core::to_string(t.kind));
  }

  Value match(const core::Match& mt) {
    Value v = Value::map();
    auto cidr = [](const core::Cidr& c) { return c.str(); };
    auto ports = [](const core::PortRange& r) {
      return r.lo == r.hi ? std::to_string(r.lo) : fmt::format("{}-{}", r.lo, r.hi);
    };
    if (!mt.src.empty()) v.add("src", one_or_list(mt.src, cidr));
    if (!mt.dst.empty()) v.add("dst", one_or_list(mt.dst, cidr));
    if (!mt.proto.empty()) v.add("proto", one_or_list(mt.proto, [](uint8_t p) { return core::proto_name(p); }));
    if (!mt.sport.empty()) v.add("sport", one_or_list(mt.sport, ports));
    if (!mt.dport.empty()) v.add("dport", one_or_list(mt.dport, ports));
    if (mt.dscp) v.add("dscp", std::to_string(*mt.dscp));
    if (mt.mark) v.add("mark", fmt::format("{:#x}/{:#x}", mt.mark->first, mt.mark->second));
    if (mt.interface) v.add("interface", *mt.interface);
    if (mt.host) v.add("host", *mt.host);
    if (mt.path_prefix) v.add("path-prefix", *mt.path_prefix);
    if (mt.method) v.add("method", *mt.method);
    if (!mt.headers.empty()) {
      Value h = Value::map();
      for (const auto& hd : mt.headers) h.add(hd.name, hd.value);
      v.add("headers", std::move(h));
    }
    return v;
  }

  Value rule(const core::Rule& r) {
    Value v = Value::map();
    v.add("name", r.name).add("priority", std::to_string(r.priority));
    Value mt = match(r.match);
    const bool early_target = chance(20);
    if (early_target) v = target(std::move(v), r.target);
    if (!mt.entries.empty()) v.add("match", std::move(mt));
    if (!early_target) v = target(std::move(v), r.target);
    return v;
  }

  std::mt19937_64 rng_;
};

// Characters a plain scalar may hold without changing what YAML reads.
bool plain_ok(const std::string& s) {
  if (s.empty() || s == "null" || s == "Null" || s == "NULL" || s == "~" || s.back() == ':') return false;
  const char c = s[0];
  if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '/' || c == '_')) return false;
  for (char ch : s)
    if (!(std::isalnum(static_cast<unsigned char>(ch)) ||
          std::string_view("._/:+%*=@-").find(ch) != std::string_view::npos))
      return false;
  return s.find(": ") == std::string::npos;
}

class Emitter {
 public:
  Emitter(const YamlStyle& s, uint64_t seed) : s_(s), rng_(seed) {}

  std::string emit(const Value& root) {
    block_map(root, 0, "");
    return std::move(out_);
  }

 private:
  bool chance(int percent) { return static_cast<int>(rng_() % 100) < percent; }
  std::string pad(int n) const { return std::string(static_cast<size_t>(n), ' '); }
  std::string after_colon() { return s_.loose && chance(30) ? "   " : " "; }

  std::string scalar(const std::string& s) {
    if (plain_ok(s) && !chance(s_.quote_percent)) return s;
    return chance(50) ? "'" + s + "'" : "\"" + s + "\"";
  }

  std::string flow(const Value& v) {
    const bool loose = s_.loose && chance(40);
    const std::string sep = loose ? " ,  " : ", ";
    std::string out;
    switch (v.kind) {
      case Value::Kind::kScalar: return scalar(v.scalar);
      case Value::Kind::kList:
        if (v.items.empty()) return "[]";
        for (const auto& i : v.items) out += (out.empty() ? "" : sep) + flow(i);
        return loose ? "[ " + out + " ]" : "[" + out + "]";
      case Value::Kind::kMap:
        if (v.entries.empty()) return "{}";
        for (const auto& [k, x] : v.entries)
          out += (out.empty() ? "" : sep) + scalar(k) + ":" + after_colon() + flow(x);
        return loose ? "{ " + out + " }" : "{" + out + "}";
    }
    return out;
  }

  void line(const std::string& text) {
    if (chance(s_.comment_percent)) out_ += pad(static_cast<int>(rng_() % 9)) + "# a comment: [with] {yaml} 'chars'\n";
    out_ += text;
    if (chance(s_.comment_percent)) out_ += "  # note: " + std::to_string(rng_() % 1000);
    out_ += "\n";
    if (s_.loose && chance(10)) out_ += chance(50) ? "\n" : "   \n";
  }

  void block_map(const Value& m, int indent, const std::string& first_prefix) {
    bool first = true;
    for (const auto& [k, v] : m.entries) {
      const std::string key = (first ? first_prefix : pad(indent)) + scalar(k) + ":";
      first = false;
      if (v.kind == Value::Kind::kScalar) {
        line(key + after_colon() + scalar(v.scalar));
      } else if (v.kind == Value::Kind::kList && !v.items.empty() && !chance(s_.flow_percent)) {
        line(key);
        block_seq(v, s_.indentless ? indent : indent + s_.indent, indent == 0);
      } else if (v.kind == Value::Kind::kMap && !v.entries.empty() && !chance(s_.flow_percent)) {
        line(key);
        block_map(v, indent + s_.indent, pad(indent + s_.indent));
      } else {
        line(key + after_colon() + flow(v));
      }
    }
  }

  // `top`: links, policies, rules.
  void block_seq(const Value& l, int indent, bool top) {
    const bool items_flow = s_.flow_items && top;
    for (const auto& item : l.items) {
      const std::string dash = pad(indent) + "-" + (s_.loose && chance(30) ? "   " : " ");
      if (item.kind == Value::Kind::kMap && !item.entries.empty() && !items_flow && !chance(s_.flow_percent / 3))
        block_map(item, static_cast<int>(dash.size()), dash);
      else line(dash + flow(item));
    }
  }

  YamlStyle s_;
  std::mt19937_64 rng_;
  std::string out_;
};

}  // namespace

std::string render_mapping_yaml(const core::Mapping& m, const YamlStyle& style, uint64_t seed) {
  return Emitter(style, seed ^ 0x9e3779b97f4a7c15ull).emit(ValueBuilder(seed).mapping(m));
}

YamlStyle random_yaml_style(uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
  YamlStyle s;
  s.indent = pick(3) == 0 ? 4 : 2;
  s.indentless = pick(4) == 0;
  s.flow_items = pick(3) == 0;
  s.flow_percent = pick(4) * 30;
  s.quote_percent = pick(3) == 0 ? 20 : 0;
  s.comment_percent = pick(3) == 0 ? 15 : 0;
  s.loose = pick(3) == 0;
  return s;
}

}  // namespace clovis::test
