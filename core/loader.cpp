#include "loader.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

#include <fmt/format.h>

#include "abi.hpp"
#include "yaml_reader.hpp"

namespace clovis::core {

namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

class Loader {
 public:
  explicit Loader(Diagnostics& d) : r_(d) {}

  void document(YamlNode root, Mapping& m);

 private:
  std::optional<std::string> name(YamlNode n, const YamlPath& path);
  std::optional<std::string> iface(YamlNode n, const YamlPath& path);
  std::optional<IpAddr> addr(YamlNode n, const YamlPath& path);
  void link(YamlNode n, const YamlPath& path, Mapping& m);
  void health(YamlNode n, const YamlPath& path, Link& l);
  void probe(YamlNode n, const YamlPath& path, Health& h);
  void policy(YamlNode n, const YamlPath& path, Mapping& m);
  void rule(YamlNode n, const YamlPath& path, Mapping& m);
  void match(YamlNode n, const YamlPath& path, Match& mt);
  void proxy(YamlNode n, const YamlPath& path, Mapping& m);
  bool within(YamlNode list, const YamlPath& path, size_t limit, const char* what);
  // The first HTTP key of a rule counts it against kMaxL7RulesPerMapping;
  // false past the limit (reported once), and the key is not read.
  bool l7_ok(YamlNode key, const YamlPath& path);

  // Headers read so far, across all rules (kMaxHeadersPerMapping).
  size_t headers_ = 0;
  size_t l7_rules_ = 0;
  bool rule_is_l7_ = false;  // the rule being read was counted in l7_rules_
  std::optional<PortRange> port_range(YamlNode n, const YamlPath& path);
  std::optional<Cidr> cidr(YamlNode n, const YamlPath& path);
  // policy: / link: / action: — exactly one of them in `n`.
  std::optional<Target> target(YamlNode n, const YamlPath& path);

  YamlReader r_;
};

std::optional<std::string> Loader::name(YamlNode n, const YamlPath& path) {
  auto s = r_.str(n, path);
  if (!s) return s;
  if (!valid_name(*s)) {
    r_.error(n, path, fmt::format("invalid name '{}'", *s),
             fmt::format("names are 1-{} characters: letters, digits, '.', '_' or '-', starting "
                         "with a letter or digit",
                         kMaxNameLength));
    return std::nullopt;
  }
  return s;
}

std::optional<std::string> Loader::iface(YamlNode n, const YamlPath& path) {
  auto s = r_.str(n, path);
  if (!s) return s;
  bool ok = !s->empty() && s->size() <= 15 && *s != "." && *s != "..";
  for (char c : *s) ok = ok && c != '/' && c != ':' && !std::isspace(static_cast<unsigned char>(c));
  if (!ok) {
    r_.error(n, path, fmt::format("invalid interface name '{}'", *s),
             "Linux interface names are 1-15 characters without '/', ':' or spaces");
    return std::nullopt;
  }
  return s;
}

std::optional<IpAddr> Loader::addr(YamlNode n, const YamlPath& path) {
  auto s = r_.view(n, path);
  if (!s) return std::nullopt;
  auto a = IpAddr::parse(*s);
  if (!a) r_.error(n, path, fmt::format("'{}' is not an IPv4 or IPv6 address", *s));
  return a;
}

std::optional<Cidr> Loader::cidr(YamlNode n, const YamlPath& path) {
  auto s = r_.view(n, path);
  if (!s) return std::nullopt;
  auto c = Cidr::parse(*s);
  if (!c) {
    r_.error(n, path, fmt::format("'{}' is not an address or prefix", *s),
             "write e.g. 10.1.0.0/16, 192.0.2.7 or 2001:db8::/32");
    return std::nullopt;
  }
  if (c->host_bits_set()) {
    r_.error(n, path, fmt::format("'{}' has bits set after the /{} prefix", *s, c->plen),
             fmt::format("did you mean {}?", c->normalized().str()));
    return std::nullopt;
  }
  return c;
}

void Loader::document(YamlNode root, Mapping& m) {
  if (root.is_null()) {
    r_.diags().error({1, 1}, "", "the mapping is empty",
                     "a mapping needs at least 'links:'; see examples/ or clovis-wan.yaml(5)");
    return;
  }
  const YamlPath top;
  if (!r_.check_map(root, top, {"version", "links", "policies", "rules", "default", "proxy", "unparsed"})) return;
  bool have_links = false;
  for (YamlEntry kv : root.entries()) {
    const std::string_view k = kv.key.scalar();
    YamlNode v = kv.value;
    const YamlPath p(top, k);
    if (k == "version") {
      auto ver = r_.uint(v, p, 1, 1000);
      if (ver && *ver != 1)
        r_.error(v, p, fmt::format("unsupported mapping version {}", *ver),
                 "this clovis reads version 1");
    } else if (k == "links") {
      have_links = true;
      if (within(v, p, CLV_MAX_LINKS, "links"))
        r_.list(v, p, [&](YamlNode n, const YamlPath& ip, size_t) { link(n, ip, m); });
    } else if (k == "policies") {
      if (within(v, p, CLV_MAX_POLICIES, "policies"))
        r_.list(v, p, [&](YamlNode n, const YamlPath& ip, size_t) { policy(n, ip, m); });
    } else if (k == "rules") {
      if (!within(v, p, kMaxRulesPerMapping, "rules")) continue;
      m.rules.reserve(m.rules.size() + v.size());
      r_.list(v, p, [&](YamlNode n, const YamlPath& ip, size_t) { rule(n, ip, m); });
    } else if (k == "default") {
      m.default_loc = YamlReader::loc(kv.key);
      if (r_.check_map(v, p, {"policy", "link", "action"})) m.default_target = target(v, p);
    } else if (k == "proxy") {
      proxy(v, p, m);
    } else if (k == "unparsed") {
      if (auto w = r_.word(v, p, {"drop", "pass"})) m.unparsed = *w == "pass" ? Unparsed::kPass : Unparsed::kDrop;
    }
  }
  if (!have_links)
    r_.error(root, YamlPath(top, "links"), "no 'links:' section",
             "declare at least one WAN link (name, interface, gateway)");
}

// A list longer than the kernel's tables allow is refused here, unread: its
// items would cost memory (a rule ~0.5 KB) only to be refused by validate().
bool Loader::within(YamlNode list, const YamlPath& path, size_t limit, const char* what) {
  if (!list.is_sequence() || list.size() <= limit) return true;
  r_.error(list.item(limit), YamlPath(path, limit),
           fmt::format("{} {}, over the limit of {}", list.size(), what, limit), "see clovis-wan.yaml(5), LIMITS");
  return false;
}

bool Loader::l7_ok(YamlNode key, const YamlPath& path) {
  if (rule_is_l7_) return true;
  if (l7_rules_ >= kMaxL7RulesPerMapping) {
    if (l7_rules_ == kMaxL7RulesPerMapping)
      r_.error(key, path,
               fmt::format("more than {} rules match on HTTP (host, path-prefix, method, headers)",
                           kMaxL7RulesPerMapping),
               "steer many hosts with one rule each for a suffix (*.example.com) or a path prefix; "
               "see clovis-wan.yaml(5), LIMITS");
    l7_rules_ = kMaxL7RulesPerMapping + 1;  // reported once
    return false;
  }
  ++l7_rules_;
  rule_is_l7_ = true;
  return true;
}

void Loader::proxy(YamlNode n, const YamlPath& path, Mapping& m) {
  if (n.is_null()) return;  // "proxy:" with nothing: the defaults
  if (!r_.check_map(n, path, {"on-drop"})) return;
  for (YamlEntry kv : n.entries()) {
    const YamlPath p(path, kv.key.scalar());
    if (kv.key.scalar() != "on-drop") continue;
    auto w = r_.view(kv.value, p);
    if (!w) continue;
    if (*w == "allow" || *w == "deny") {
      m.proxy.on_drop = *w == "allow" ? OnDrop::kAllow : OnDrop::kDeny;
      continue;
    }
    std::string hint = did_you_mean(*w, {"allow", "deny"});
    r_.error(kv.value, p, fmt::format("'{}' is not one of: allow, deny", *w),
             hint.empty() ? "allow answers every request OK (fail-open, the default); deny answers a drop "
                            "verdict with 403"
                          : hint);
  }
}

void Loader::link(YamlNode n, const YamlPath& path, Mapping& m) {
  if (!r_.check_map(n, path,
                    {"name", "interface", "gateway", "gateway-mac", "point-to-point", "mode",
                     "snat", "mark", "table", "labels", "weight", "health"}))
    return;
  Link l;
  l.loc = YamlReader::loc(n);
  bool have_name = false, have_iface = false;
  for (YamlEntry kv : n.entries()) {
    const std::string_view k = kv.key.scalar();
    YamlNode v = kv.value;
    const YamlPath p(path, k);
    if (k == "name") {
      have_name = true;
      if (auto s = name(v, p)) l.name = *s;
    } else if (k == "interface") {
      have_iface = true;
      if (auto s = iface(v, p)) l.interface = *s;
    } else if (k == "gateway") {
      r_.scalar_or_list(v, p, [&](YamlNode item, const YamlPath& ip) {
        auto a = addr(item, ip);
        if (!a) return;
        auto& slot = a->family == Family::kV4 ? l.gateway4 : l.gateway6;
        if (slot)
          r_.error(item, ip, "more than one gateway of the same address family",
                   "give at most one IPv4 and one IPv6 gateway");
        else
          slot = a;
      });
    } else if (k == "gateway-mac") {
      if (auto s = r_.str(v, p)) {
        l.gateway_mac = parse_mac(*s);
        if (!l.gateway_mac)
          r_.error(v, p, fmt::format("'{}' is not a MAC address", *s), "write aa:bb:cc:dd:ee:ff");
      }
    } else if (k == "point-to-point") {
      if (auto b = r_.boolean(v, p)) l.point_to_point = *b;
    } else if (k == "mode") {
      if (auto w = r_.word(v, p, {"route", "redirect"}))
        l.mode = *w == "route" ? SteerMode::kRoute : SteerMode::kRedirect;
    } else if (k == "snat") {
      r_.scalar_or_list(v, p, [&](YamlNode item, const YamlPath& ip) {
        auto s = r_.str(item, ip);
        if (!s) return;
        if (*s == "none" || *s == "masquerade") {
          if (v.is_sequence())
            r_.error(item, ip, fmt::format("'{}' cannot be part of a list", *s));
          l.snat = *s == "none" ? SnatMode::kNone : SnatMode::kMasquerade;
          return;
        }
        auto a = IpAddr::parse(*s);
        if (!a) {
          r_.error(item, ip, fmt::format("'{}' is not none, masquerade or an address", *s),
                   "snat: none | masquerade | <the link's address> (one IPv4 and/or one IPv6)");
          return;
        }
        l.snat = SnatMode::kAddress;
        auto& slot = a->family == Family::kV4 ? l.snat4 : l.snat6;
        if (slot) r_.error(item, ip, "more than one snat address of the same family");
        slot = a;
      });
    } else if (k == "mark") {
      if (auto u = r_.uint(v, p, 1, 0xffffffff)) l.mark = static_cast<uint32_t>(*u);
    } else if (k == "table") {
      if (auto u = r_.uint(v, p, 1, 0xfffffffe)) l.table = static_cast<uint32_t>(*u);
    } else if (k == "labels") {
      if (!within(v, p, kMaxLabelsPerLink, "labels")) continue;
      r_.scalar_or_list(v, p, [&](YamlNode item, const YamlPath& ip) {
        if (auto s = name(item, ip)) l.labels.push_back(*s);
      });
    } else if (k == "weight") {
      if (auto u = r_.uint(v, p, 0, 1000)) l.weight = static_cast<uint32_t>(*u);
    } else if (k == "health") {
      health(v, p, l);
    }
  }
  if (!have_name) r_.error(n, path, "link has no 'name'", "add name: <short name>");
  if (!have_iface) r_.error(n, path, "link has no 'interface'", "add interface: <WAN interface>");
  m.links.push_back(std::move(l));
}

void Loader::health(YamlNode n, const YamlPath& path, Link& l) {
  if (!r_.check_map(n, path,
                    {"probes", "interval", "timeout", "down", "up", "reliability", "max-loss",
                     "max-latency", "max-jitter"}))
    return;
  Health h;
  h.loc = YamlReader::loc(n);
  bool have_timeout = false;
  for (YamlEntry kv : n.entries()) {
    const std::string_view k = kv.key.scalar();
    YamlNode v = kv.value;
    const YamlPath p(path, k);
    if (k == "probes") {
      r_.list(v, p, [&](YamlNode item, const YamlPath& ip, size_t) { probe(item, ip, h); });
    } else if (k == "interval") {
      if (auto d = r_.duration_ms(v, p)) h.interval_ms = *d;
    } else if (k == "timeout") {
      have_timeout = true;
      if (auto d = r_.duration_ms(v, p)) h.timeout_ms = *d;
    } else if (k == "down") {
      if (auto u = r_.uint(v, p, 1, 100)) h.down_after = static_cast<uint32_t>(*u);
    } else if (k == "up") {
      if (auto u = r_.uint(v, p, 1, 100)) h.up_after = static_cast<uint32_t>(*u);
    } else if (k == "reliability") {
      if (auto u = r_.uint(v, p, 1, 16)) h.reliability = static_cast<uint32_t>(*u);
    } else if (k == "max-loss") {
      if (auto s = r_.str(v, p)) {
        std::string t = *s;
        if (!t.empty() && t.back() == '%') t.pop_back();
        try {
          size_t used = 0;
          double pct = std::stod(t, &used);
          if (used != t.size() || pct < 0 || pct > 100) throw std::invalid_argument(t);
          h.max_loss_pct = pct;
        } catch (const std::exception&) {
          r_.error(v, p, fmt::format("'{}' is not a percentage", *s), "write e.g. 5%");
        }
      }
    } else if (k == "max-latency") {
      if (auto d = r_.duration_ms(v, p)) h.max_latency_ms = *d;
    } else if (k == "max-jitter") {
      if (auto d = r_.duration_ms(v, p)) h.max_jitter_ms = *d;
    }
  }
  if (!have_timeout) h.timeout_ms = h.interval_ms * 4 / 5;  // answered before the next probe
  l.health = std::move(h);
}

void Loader::probe(YamlNode n, const YamlPath& path, Health& h) {
  if (!r_.check_map(n, path, {"icmp", "tcp"})) return;
  if (n.size() != 1) {
    r_.error(n, path, "a probe is one of 'icmp: ADDRESS' or 'tcp: ADDRESS:PORT'");
    return;
  }
  const YamlEntry kv = n.entry(0);
  const std::string_view k = kv.key.scalar();
  const YamlPath kp(path, k);
  auto s = r_.str(kv.value, kp);
  if (!s) return;
  Probe pr;
  pr.loc = YamlReader::loc(kv.value);
  std::string a = *s;
  if (k == "tcp") {
    pr.kind = ProbeKind::kTcp;
    auto colon = a.rfind(':');
    bool bracketed = !a.empty() && a[0] == '[';
    if (colon == std::string::npos || (!bracketed && a.find(':') != colon)) {
      r_.error(kv.value, kp, fmt::format("'{}' has no port", a),
               "write ADDRESS:PORT, or [IPv6]:PORT");
      return;
    }
    std::string port = a.substr(colon + 1);
    a = a.substr(0, colon);
    if (bracketed && a.size() >= 2 && a.back() == ']') a = a.substr(1, a.size() - 2);
    uint64_t pv = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), pv);
    if (ec != std::errc() || p != port.data() + port.size() || pv == 0 || pv > 65535) {
      r_.error(kv.value, kp, fmt::format("'{}' is not a port 1-65535", port));
      return;
    }
    pr.port = static_cast<uint16_t>(pv);
  }
  auto ip = IpAddr::parse(a);
  if (!ip) {
    r_.error(kv.value, kp, fmt::format("'{}' is not an IP address", a),
             "probe targets are addresses, not host names (no DNS on a dead link)");
    return;
  }
  pr.target = *ip;
  h.probes.push_back(pr);
}

void Loader::policy(YamlNode n, const YamlPath& path, Mapping& m) {
  if (!r_.check_map(n, path,
                    {"name", "failover", "members", "on-link-down", "last-resort", "sticky",
                     "avoid-degraded"}))
    return;
  Policy pol;
  pol.loc = YamlReader::loc(n);
  bool have_name = false, have_members = false;
  for (YamlEntry kv : n.entries()) {
    const std::string_view k = kv.key.scalar();
    YamlNode v = kv.value;
    const YamlPath p(path, k);
    if (k == "name") {
      have_name = true;
      if (auto s = name(v, p)) pol.name = *s;
    } else if (k == "failover" || k == "members") {
      if (have_members)
        r_.error(kv.key, p, "a policy has either 'failover' or 'members', not both",
                 "failover: [a, b] is shorthand for members a (tier 1) and b (tier 2)");
      have_members = true;
      if (!within(v, p, CLV_POLICY_MAX_MEMBERS, "members")) continue;
      uint32_t tier = 0;
      r_.list(v, p, [&](YamlNode item, const YamlPath& ip, size_t) {
        Member mem;
        mem.loc = YamlReader::loc(item);
        mem.tier = k == "failover" ? ++tier : 1;
        if (item.is_scalar() || k == "failover") {
          if (auto s = name(item, ip)) mem.link = *s;
        } else if (r_.check_map(item, ip, {"link", "tier", "weight"})) {
          bool have_link = false;
          for (YamlEntry mkv : item.entries()) {
            const std::string_view mk = mkv.key.scalar();
            const YamlPath mp(ip, mk);
            if (mk == "link") {
              have_link = true;
              if (auto s = name(mkv.value, mp)) mem.link = *s;
            } else if (mk == "tier") {
              if (auto u = r_.uint(mkv.value, mp, 1, 255)) mem.tier = static_cast<uint32_t>(*u);
            } else if (mk == "weight") {
              if (auto u = r_.uint(mkv.value, mp, 0, 1000)) mem.weight = static_cast<uint32_t>(*u);
            }
          }
          if (!have_link) r_.error(item, ip, "member has no 'link'");
        }
        pol.members.push_back(mem);
      });
    } else if (k == "on-link-down") {
      if (auto w = r_.word(v, p, {"migrate", "keep", "drop"}))
        pol.on_link_down = *w == "migrate" ? OnLinkDown::kMigrate
                           : *w == "keep"  ? OnLinkDown::kKeep
                                           : OnLinkDown::kDrop;
    } else if (k == "last-resort") {
      if (auto w = r_.word(v, p, {"default", "drop"}))
        pol.last_resort = *w == "default" ? LastResort::kDefault : LastResort::kDrop;
    } else if (k == "sticky") {
      if (auto w = r_.word(v, p, {"flow", "source", "source-dest"}))
        pol.sticky = *w == "flow" ? Sticky::kFlow : *w == "source" ? Sticky::kSource : Sticky::kSourceDest;
    } else if (k == "avoid-degraded") {
      if (auto b = r_.boolean(v, p)) pol.avoid_degraded = *b;
    }
  }
  if (!have_name) r_.error(n, path, "policy has no 'name'");
  if (!have_members)
    r_.error(n, path, "policy has no links", "add failover: [link, ...] or members: [...]");
  m.policies.push_back(std::move(pol));
}

std::optional<Target> Loader::target(YamlNode n, const YamlPath& path) {
  std::optional<Target> t;
  for (YamlEntry kv : n.entries()) {
    const std::string_view k = kv.key.scalar();
    if (k != "policy" && k != "link" && k != "action") continue;
    const YamlPath p(path, k);
    if (t) {
      r_.error(kv.key, p, "more than one of 'policy', 'link', 'action'", "keep exactly one");
      return std::nullopt;
    }
    Target tt;
    tt.loc = YamlReader::loc(kv.value);
    if (k == "action") {
      auto w = r_.word(kv.value, p, {"bypass", "drop"});
      if (!w) return std::nullopt;
      tt.kind = *w == "bypass" ? TargetKind::kBypass : TargetKind::kDrop;
    } else {
      auto s = name(kv.value, p);
      if (!s) return std::nullopt;
      tt.kind = k == "policy" ? TargetKind::kPolicy : TargetKind::kLink;
      tt.name = *s;
    }
    t = tt;
  }
  if (!t)
    r_.error(n, path, "no target: say where matching traffic goes",
             "add policy: NAME, link: NAME or action: bypass|drop");
  return t;
}

void Loader::rule(YamlNode n, const YamlPath& path, Mapping& m) {
  if (!r_.check_map(n, path, {"name", "priority", "match", "policy", "link", "action"})) return;
  Rule& rl = m.rules.emplace_back();  // in place: a Rule is large, and there may be 100k
  rl.loc = YamlReader::loc(n);
  rule_is_l7_ = false;
  bool have_name = false, have_prio = false;
  for (YamlEntry kv : n.entries()) {
    const std::string_view k = kv.key.scalar();
    YamlNode v = kv.value;
    const YamlPath p(path, k);
    if (k == "name") {
      have_name = true;
      if (auto s = name(v, p)) rl.name = *s;
    } else if (k == "priority") {
      have_prio = true;
      if (auto u = r_.uint(v, p, 0, 0xfffffffe)) rl.priority = static_cast<uint32_t>(*u);
    } else if (k == "match") {
      match(v, p, rl.match);
    }
  }
  if (auto t = target(n, path)) rl.target = std::move(*t);
  if (!have_name) r_.error(n, path, "rule has no 'name'");
  if (!have_prio)
    r_.error(n, path, "rule has no 'priority'",
             "rules are evaluated by explicit priority, lowest first; add priority: N");
}

std::optional<PortRange> Loader::port_range(YamlNode n, const YamlPath& path) {
  auto s = r_.view(n, path);
  if (!s) return std::nullopt;
  auto parse_port = [](std::string_view t, uint16_t* out) {
    uint32_t v = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (t.empty() || ec != std::errc() || p != t.data() + t.size() || v > 65535) return false;
    *out = static_cast<uint16_t>(v);
    return true;
  };
  PortRange r;
  auto dash = s->find('-');
  bool ok = dash == std::string_view::npos
                ? parse_port(*s, &r.lo) && (r.hi = r.lo, true)
                : parse_port(s->substr(0, dash), &r.lo) &&
                      parse_port(s->substr(dash + 1), &r.hi);
  if (!ok) {
    r_.error(n, path, fmt::format("'{}' is not a port or port range", *s),
             "write e.g. 443 or 8000-8080 (0-65535)");
    return std::nullopt;
  }
  if (r.lo > r.hi) {
    r_.error(n, path, fmt::format("port range '{}' is reversed", *s),
             fmt::format("did you mean {}-{}?", r.hi, r.lo));
    return std::nullopt;
  }
  return r;
}

void Loader::match(YamlNode n, const YamlPath& path, Match& mt) {
  if (n.is_null()) return;  // "match:" with nothing: matches everything
  if (!r_.check_map(n, path,
                    {"src", "dst", "sport", "dport", "proto", "dscp", "mark", "interface", "host",
                     "path-prefix", "method", "headers"}))
    return;
  for (YamlEntry kv : n.entries()) {
    const std::string_view k = kv.key.scalar();
    YamlNode v = kv.value;
    const YamlPath p(path, k);
    if ((k == "host" || k == "path-prefix" || k == "method" || k == "headers") && !l7_ok(kv.key, p)) continue;
    if (k == "src" || k == "dst") {
      auto& out = k == "src" ? mt.src : mt.dst;
      if (v.is_sequence()) out.reserve(v.size());  // exact: growing by doubling held up to 3x
      r_.scalar_or_list(v, p, [&](YamlNode item, const YamlPath& ip) {
        if (auto c = cidr(item, ip)) out.push_back(*c);
      });
    } else if (k == "sport" || k == "dport") {
      auto& out = k == "sport" ? mt.sport : mt.dport;
      if (v.is_sequence()) out.reserve(v.size());
      r_.scalar_or_list(v, p, [&](YamlNode item, const YamlPath& ip) {
        if (auto pr = port_range(item, ip)) out.push_back(*pr);
      });
    } else if (k == "proto") {
      r_.scalar_or_list(v, p, [&](YamlNode item, const YamlPath& ip) {
        auto s = r_.view(item, ip);
        if (!s) return;
        if (auto pr = parse_proto(*s)) mt.proto.push_back(*pr);
        else r_.error(item, ip, fmt::format("unknown protocol '{}'", *s),
                      "use tcp, udp, icmp, icmpv6, sctp, udplite, gre, esp, ah, igmp or a number 0-255");
      });
    } else if (k == "dscp") {
      if (auto s = r_.view(v, p)) {
        mt.dscp = parse_dscp(*s);
        if (!mt.dscp)
          r_.error(v, p, fmt::format("'{}' is not a DSCP value", *s),
                   "use 0-63 or a name: ef, af11..af43, cs0..cs7, va, le");
      }
    } else if (k == "mark") {
      if (auto s = r_.str(v, p)) {
        auto slash = s->find('/');
        uint64_t value = 0, mask = 0xffffffff;
        auto parse32 = [](std::string t, uint64_t* out) {
          int base = 10;
          if (t.size() > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) t = t.substr(2), base = 16;
          auto [pp, ec] = std::from_chars(t.data(), t.data() + t.size(), *out, base);
          return !t.empty() && ec == std::errc() && pp == t.data() + t.size() && *out <= 0xffffffff;
        };
        bool ok = parse32(s->substr(0, slash), &value) &&
                  (slash == std::string::npos || parse32(s->substr(slash + 1), &mask));
        if (!ok || mask == 0) {
          r_.error(v, p, fmt::format("'{}' is not a mark", *s), "write VALUE or VALUE/MASK, e.g. 0x10/0xff");
        } else if ((value & ~mask) != 0) {
          r_.error(v, p, fmt::format("mark value {:#x} has bits outside mask {:#x}", value, mask),
                   fmt::format("did you mean {:#x}/{:#x}?", value & mask, mask));
        } else {
          mt.mark = std::make_pair(static_cast<uint32_t>(value), static_cast<uint32_t>(mask));
        }
      }
    } else if (k == "interface") {
      if (auto s = iface(v, p)) mt.interface = *s;
    } else if (k == "host") {
      if (auto s = r_.str(v, p)) {
        std::string h = lower(*s);
        bool ok = !h.empty() && h.find_first_of(" /\t") == std::string::npos &&
                  h.find('*', 1) == std::string::npos && (h[0] != '*' || h.rfind("*.", 0) == 0);
        if (!ok)
          r_.error(v, p, fmt::format("'{}' is not a host name", *s),
                   "write api.example.com, or *.example.com for its subdomains");
        else
          mt.host = h;
      }
    } else if (k == "path-prefix") {
      if (auto s = r_.str(v, p)) {
        if (s->empty() || (*s)[0] != '/')
          r_.error(v, p, fmt::format("path prefix '{}' does not start with '/'", *s));
        else
          mt.path_prefix = *s;
      }
    } else if (k == "method") {
      if (auto s = r_.str(v, p)) {
        std::string up = *s;
        for (auto& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        bool ok = !up.empty() && std::all_of(up.begin(), up.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
        if (!ok) r_.error(v, p, fmt::format("'{}' is not an HTTP method", *s), "e.g. GET, POST");
        else mt.method = up;
      }
    } else if (k == "headers") {
      if (!v.is_map()) {
        r_.error(v, p, "headers is a mapping of header name to exact value",
                 "e.g. headers: {end-user: minions}");
        continue;
      }
      if (headers_ > kMaxHeadersPerMapping) continue;  // over the limit: reported once, not read on
      if (headers_ + v.size() > kMaxHeadersPerMapping) {
        r_.error(v.entry(kMaxHeadersPerMapping - headers_).key, p,
                 fmt::format("{} headers in the mapping's rules so far, over the limit of {}", headers_ + v.size(),
                             kMaxHeadersPerMapping),
                 "match fewer headers, or one host or path prefix for many; see clovis-wan.yaml(5), LIMITS");
        headers_ = kMaxHeadersPerMapping + 1;  // reported once; later rules' headers are not read
        continue;
      }
      headers_ += v.size();
      for (YamlEntry hkv : v.entries()) {
        auto hn = r_.str(hkv.key, p);
        auto hv = r_.str(hkv.value, YamlPath(p, hn ? std::string_view(*hn) : std::string_view("?")));
        if (!hn || !hv) continue;
        bool ok = !hn->empty() && std::all_of(hn->begin(), hn->end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == ':';
        });
        if (!ok) {
          r_.error(hkv.key, p, fmt::format("'{}' is not an HTTP header name", *hn));
          continue;
        }
        mt.headers.push_back({lower(*hn), *hv, YamlReader::loc(hkv.key)});
      }
    }
  }
}

}  // namespace

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  if (!std::isalnum(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

static_assert(kMaxRulesPerMapping <= CLV_MAX_RULES - 1, "one rule id is the default's");

Result<Mapping, Diagnostics> load_mapping(std::string_view text, Diagnostics* warnings) {
  if (text.size() > kMaxMappingBytes) {
    Diagnostics d;
    d.error({}, "", fmt::format("the mapping is {} bytes, over the {} MiB limit", text.size(),
                                kMaxMappingBytes >> 20));
    return Unexpected<Diagnostics>{std::move(d)};
  }
  auto doc = YamlDoc::parse_borrowing(text);  // text outlives doc
  if (!doc) {
    Diagnostics d;
    const YamlError& e = doc.error();
    d.error(e.loc, "", e.message, e.hint);
    return Unexpected<Diagnostics>{std::move(d)};
  }
  return load_mapping(*doc, warnings);
}

Result<Mapping, Diagnostics> load_mapping(const YamlDoc& doc, Diagnostics* warnings) {
  Diagnostics d;
  Mapping m;
  Loader(d).document(doc.root(), m);
  d.sort();
  if (d.has_errors()) return Unexpected<Diagnostics>{std::move(d)};
  if (warnings) warnings->append(d);
  return m;
}

}  // namespace clovis::core
