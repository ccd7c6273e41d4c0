// links:, their health: and its probes:.
#include <algorithm>
#include <charconv>
#include <stdexcept>

#include <fmt/format.h>

#include "abi.hpp"
#include "loader_impl.hpp"
#include "probe_wire.hpp"

namespace clovis::core::loader_detail {

namespace {

void read_gateway(Loader& ld, YamlEntry kv, const YamlPath& p, Link& l) {
  auto& r = ld.reader();
  r.scalar_or_list(kv.value, p, [&](YamlNode item, const YamlPath& ip) {
    auto a = ld.addr(item, ip);
    if (!a) return;
    auto& slot = a->family == Family::kV4 ? l.gateway4 : l.gateway6;
    if (slot)
      r.error(item, ip, "more than one gateway of the same address family",
              "give at most one IPv4 and one IPv6 gateway");
    else slot = a;
  });
}

void read_snat(Loader& ld, YamlEntry kv, const YamlPath& p, Link& l) {
  auto& r = ld.reader();
  YamlNode v = kv.value;
  r.scalar_or_list(v, p, [&](YamlNode item, const YamlPath& ip) {
    auto s = r.str(item, ip);
    if (!s) return;
    if (*s == "none" || *s == "masquerade") {
      if (v.is_sequence()) r.error(item, ip, fmt::format("'{}' cannot be part of a list", *s));
      l.snat = *s == "none" ? SnatMode::kNone : SnatMode::kMasquerade;
      return;
    }
    auto a = IpAddr::parse(*s);
    if (!a) {
      r.error(item, ip, fmt::format("'{}' is not none, masquerade or an address", *s),
              "snat: none | masquerade | <the link's address> (one IPv4 and/or one IPv6)");
      return;
    }
    l.snat = SnatMode::kAddress;
    auto& slot = a->family == Family::kV4 ? l.snat4 : l.snat6;
    if (slot) r.error(item, ip, "more than one snat address of the same family");
    slot = a;
  });
}

constexpr auto kLinkKeys = key_table<Link>({
    {"name",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, Link& l) {
       if (auto s = ld.name(kv.value, p)) l.name = *s;
     }},
    {"interface",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, Link& l) {
       if (auto s = ld.iface(kv.value, p)) l.interface = *s;
     }},
    {"gateway", read_gateway},
    {"gateway-mac",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, Link& l) {
       auto& r = ld.reader();
       if (auto s = r.str(kv.value, p)) {
         l.gateway_mac = parse_mac(*s);
         if (!l.gateway_mac)
           r.error(kv.value, p, fmt::format("'{}' is not a MAC address", *s), "write aa:bb:cc:dd:ee:ff");
       }
     }},
    {"point-to-point",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, Link& l) {
       if (auto b = ld.reader().boolean(kv.value, p)) l.point_to_point = *b;
     }},
    {"mode",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, Link& l) {
       if (auto w = ld.reader().word(kv.value, p, {"route", "redirect"}))
         l.mode = *w == "route" ? SteerMode::kRoute : SteerMode::kRedirect;
     }},
    {"snat", read_snat},
    {"masquerade",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, Link& l) {
       if (auto b = ld.reader().boolean(kv.value, p)) l.masquerade = *b;
     }},
    {"mark",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, Link& l) {
       if (auto u = ld.reader().uint(kv.value, p, 1, 0xffffffff)) l.mark = static_cast<uint32_t>(*u);
     }},
    {"table",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, Link& l) {
       if (auto u = ld.reader().uint(kv.value, p, 1, 0xfffffffe)) l.table = static_cast<uint32_t>(*u);
     }},
    {"labels",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, Link& l) {
       if (!ld.within(kv.value, p, kMaxLabelsPerLink, "labels")) return;
       ld.reader().scalar_or_list(kv.value, p, [&](YamlNode item, const YamlPath& ip) {
         if (auto s = ld.name(item, ip)) l.labels.push_back(*s);
       });
     }},
    {"weight",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, Link& l) {
       if (auto u = ld.reader().uint(kv.value, p, 0, 1000)) l.weight = static_cast<uint32_t>(*u);
     }},
    {"health", [](Loader& ld, YamlEntry kv, const YamlPath& p, Link& l) { ld.health(kv.value, p, l); }},
    {"budget", [](Loader& ld, YamlEntry kv, const YamlPath& p, Link& l) { ld.budget(kv.value, p, l); }},
});

void read_max_loss(Loader& ld, YamlEntry kv, const YamlPath& p, Health& h) {
  auto& r = ld.reader();
  auto s = r.str(kv.value, p);
  if (!s) return;
  std::string t = *s;
  if (!t.empty() && t.back() == '%') t.pop_back();
  try {
    size_t used = 0;
    double pct = std::stod(t, &used);
    if (used != t.size() || pct < 0 || pct > 100) throw std::invalid_argument(t);
    h.max_loss_pct = pct;
  } catch (const std::exception&) {
    r.error(kv.value, p, fmt::format("'{}' is not a percentage", *s), "write e.g. 5%");
  }
}

// A count of probes 1..max into `field`.
template <auto field, uint64_t max>
void read_count(Loader& ld, YamlEntry kv, const YamlPath& p, Health& h) {
  if (auto u = ld.reader().uint(kv.value, p, 1, max)) h.*field = static_cast<uint32_t>(*u);
}

template <auto field>
void read_duration(Loader& ld, YamlEntry kv, const YamlPath& p, Health& h) {
  if (auto d = ld.reader().duration_ms(kv.value, p)) h.*field = *d;
}

constexpr auto kHealthKeys = key_table<Health>({
    {"probes",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, Health& h) {
       ld.reader().list(kv.value, p, [&](YamlNode item, const YamlPath& ip, size_t) { ld.probe(item, ip, h); });
     }},
    {"interval", read_duration<&Health::interval_ms>},
    {"timeout", read_duration<&Health::timeout_ms>},
    {"down", read_count<&Health::down_after, 100>},
    {"up", read_count<&Health::up_after, 100>},
    {"reliability", read_count<&Health::reliability, 16>},
    {"max-loss", read_max_loss},
    {"max-latency", read_duration<&Health::max_latency_ms>},
    {"max-jitter", read_duration<&Health::max_jitter_ms>},
});

}  // namespace

void Loader::link(YamlNode n, const YamlPath& path, Mapping& m) {
  if (!r_.check_map(n, path, kLinkKeys.names)) return;
  Link l;
  l.loc = YamlReader::loc(n);
  KeysSeen seen = read_entries(n, path, kLinkKeys, l);
  if (!seen.has("name")) r_.error(n, path, "link has no 'name'", "add name: <short name>");
  if (!seen.has("interface")) r_.error(n, path, "link has no 'interface'", "add interface: <WAN interface>");
  m.links.push_back(std::move(l));
}

void Loader::health(YamlNode n, const YamlPath& path, Link& l) {
  if (!r_.check_map(n, path, kHealthKeys.names)) return;
  Health h;
  h.loc = YamlReader::loc(n);
  KeysSeen seen = read_entries(n, path, kHealthKeys, h);
  if (!seen.has("timeout")) h.timeout_ms = h.interval_ms * 4 / 5;  // answered before the next probe
  l.health = std::move(h);
}

// ADDRESS[:PORT] (IPv6 with a port in brackets) into `pr`; false after an error.
bool Loader::probe_address(YamlNode v, const YamlPath& kp, std::string a, bool port_required, Probe& pr) {
  const bool bracketed = !a.empty() && a[0] == '[';
  const auto colon = a.rfind(':');
  const bool one_colon = colon != std::string::npos && a.find(':') == colon;
  const bool has_port = bracketed ? a.find("]:") != std::string::npos : one_colon;
  if (port_required && !has_port) {
    r_.error(v, kp, fmt::format("'{}' has no port", a), "write ADDRESS:PORT, or [IPv6]:PORT");
    return false;
  }
  if (has_port) {
    std::string port = a.substr(colon + 1);
    a = a.substr(0, colon);
    uint64_t pv = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), pv);
    if (ec != std::errc() || p != port.data() + port.size() || pv == 0 || pv > 65535) {
      r_.error(v, kp, fmt::format("'{}' is not a port 1-65535", port));
      return false;
    }
    pr.port = static_cast<uint16_t>(pv);
  }
  if (bracketed && a.size() >= 2 && a.back() == ']') a = a.substr(1, a.size() - 2);
  auto ip = IpAddr::parse(a);
  if (!ip) {
    r_.error(v, kp, fmt::format("'{}' is not an IP address", a),
             "probe targets are addresses, not host names (no DNS on a dead link)");
    return false;
  }
  pr.target = *ip;
  return true;
}

void Loader::probe(YamlNode n, const YamlPath& path, Health& h) {
  static constexpr std::string_view kKinds[] = {"icmp", "tcp", "http", "dns"};
  if (!r_.check_map(n, path, {"icmp", "tcp", "http", "dns", "name"})) return;
  std::optional<YamlEntry> kind_kv, name_kv;
  size_t kinds = 0;
  for (size_t i = 0; i < n.size(); ++i) {
    const YamlEntry e = n.entry(i);
    if (e.key.scalar() == "name") name_kv = e;
    else ++kinds, kind_kv = e;
  }
  if (kinds != 1) {
    r_.error(n, path,
             "a probe is one of 'icmp: ADDRESS', 'tcp: ADDRESS:PORT', 'http: http://ADDRESS[:PORT]/PATH' or "
             "'dns: ADDRESS[:PORT]'");
    return;
  }
  const YamlEntry kv = *kind_kv;
  const std::string_view k = kv.key.scalar();
  const YamlPath kp(path, k);
  if (name_kv && k != "dns") {
    r_.error(name_kv->key, YamlPath(path, "name"), fmt::format("'name' belongs to a dns probe, not to {}", k),
             "remove it, or write {dns: ADDRESS, name: NAME}");
    return;
  }
  auto s = r_.str(kv.value, kp);
  if (!s) return;
  Probe pr;
  pr.loc = YamlReader::loc(kv.value);
  pr.kind = static_cast<ProbeKind>(std::find(std::begin(kKinds), std::end(kKinds), k) - std::begin(kKinds));
  if (pr.kind == ProbeKind::kHttp) {
    UrlError err;
    auto u = parse_http_url(*s, &err);
    if (!u) return r_.error(kv.value, kp, err.what, err.hint);
    pr.target = u->addr, pr.port = u->port, pr.path = u->path;
  } else if (!probe_address(kv.value, kp, *s, pr.kind == ProbeKind::kTcp, pr)) {
    return;
  }
  if (pr.kind == ProbeKind::kDns) {
    if (!pr.port) pr.port = 53;
    pr.name = std::string(kDnsDefaultName);
    if (name_kv) {
      const YamlPath np(path, "name");
      auto nm = r_.str(name_kv->value, np);
      if (!nm) return;
      if (auto why = dns_name_problem(*nm); !why.empty())
        return r_.error(name_kv->value, np, fmt::format("'{}' is not a DNS name: {}", *nm, why),
                        "write e.g. example.com");
      pr.name = *nm;
    }
  }
  h.probes.push_back(pr);
}

}  // namespace clovis::core::loader_detail
