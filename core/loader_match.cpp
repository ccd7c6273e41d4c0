// A rule's match: (addresses, ports, protocols, marks, and the HTTP keys).
#include <algorithm>
#include <cctype>
#include <charconv>

#include <fmt/format.h>

#include "loader_impl.hpp"

namespace clovis::core::loader_detail {

namespace {

void read_cidrs(Loader& ld, YamlEntry kv, const YamlPath& p, Match& mt) {
  auto& out = kv.key.scalar() == "src" ? mt.src : mt.dst;
  if (kv.value.is_sequence()) out.reserve(kv.value.size());  // exact: growing by doubling held up to 3x
  ld.reader().scalar_or_list(kv.value, p, [&](YamlNode item, const YamlPath& ip) {
    if (auto c = ld.cidr(item, ip)) out.push_back(*c);
  });
}

void read_ports(Loader& ld, YamlEntry kv, const YamlPath& p, Match& mt) {
  auto& out = kv.key.scalar() == "sport" ? mt.sport : mt.dport;
  if (kv.value.is_sequence()) out.reserve(kv.value.size());
  ld.reader().scalar_or_list(kv.value, p, [&](YamlNode item, const YamlPath& ip) {
    if (auto pr = ld.port_range(item, ip)) out.push_back(*pr);
  });
}

void read_proto(Loader& ld, YamlEntry kv, const YamlPath& p, Match& mt) {
  auto& r = ld.reader();
  r.scalar_or_list(kv.value, p, [&](YamlNode item, const YamlPath& ip) {
    auto s = r.view(item, ip);
    if (!s) return;
    if (auto pr = parse_proto(*s)) mt.proto.push_back(*pr);
    else
      r.error(item, ip, fmt::format("unknown protocol '{}'", *s),
              "use tcp, udp, icmp, icmpv6, sctp, udplite, gre, esp, ah, igmp or a number 0-255");
  });
}

void read_dscp(Loader& ld, YamlEntry kv, const YamlPath& p, Match& mt) {
  auto& r = ld.reader();
  if (auto s = r.view(kv.value, p)) {
    mt.dscp = parse_dscp(*s);
    if (!mt.dscp)
      r.error(kv.value, p, fmt::format("'{}' is not a DSCP value", *s),
              "use 0-63 or a name: ef, af11..af43, cs0..cs7, va, le");
  }
}

void read_mark(Loader& ld, YamlEntry kv, const YamlPath& p, Match& mt) {
  auto& r = ld.reader();
  YamlNode v = kv.value;
  auto s = r.str(v, p);
  if (!s) return;
  auto slash = s->find('/');
  uint64_t value = 0, mask = 0xffffffff;
  auto parse32 = [](std::string t, uint64_t* out) {
    int base = 10;
    if (t.size() > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) t = t.substr(2), base = 16;
    auto [pp, ec] = std::from_chars(t.data(), t.data() + t.size(), *out, base);
    return !t.empty() && ec == std::errc() && pp == t.data() + t.size() && *out <= 0xffffffff;
  };
  bool ok =
      parse32(s->substr(0, slash), &value) && (slash == std::string::npos || parse32(s->substr(slash + 1), &mask));
  if (!ok || mask == 0) {
    r.error(v, p, fmt::format("'{}' is not a mark", *s), "write VALUE or VALUE/MASK, e.g. 0x10/0xff");
  } else if ((value & ~mask) != 0) {
    r.error(v, p, fmt::format("mark value {:#x} has bits outside mask {:#x}", value, mask),
            fmt::format("did you mean {:#x}/{:#x}?", value & mask, mask));
  } else {
    mt.mark = std::make_pair(static_cast<uint32_t>(value), static_cast<uint32_t>(mask));
  }
}

void read_host(Loader& ld, YamlEntry kv, const YamlPath& p, Match& mt) {
  auto& r = ld.reader();
  if (!ld.l7_ok(kv.key, p)) return;
  if (auto s = r.str(kv.value, p)) {
    std::string h = lower(*s);
    bool ok = !h.empty() && h.find_first_of(" /\t") == std::string::npos && h.find('*', 1) == std::string::npos &&
              (h[0] != '*' || h.rfind("*.", 0) == 0);
    if (!ok)
      r.error(kv.value, p, fmt::format("'{}' is not a host name", *s),
              "write api.example.com, or *.example.com for its subdomains");
    else mt.host = h;
  }
}

void read_path_prefix(Loader& ld, YamlEntry kv, const YamlPath& p, Match& mt) {
  auto& r = ld.reader();
  if (!ld.l7_ok(kv.key, p)) return;
  if (auto s = r.str(kv.value, p)) {
    if (s->empty() || (*s)[0] != '/') r.error(kv.value, p, fmt::format("path prefix '{}' does not start with '/'", *s));
    else mt.path_prefix = *s;
  }
}

void read_method(Loader& ld, YamlEntry kv, const YamlPath& p, Match& mt) {
  auto& r = ld.reader();
  if (!ld.l7_ok(kv.key, p)) return;
  if (auto s = r.str(kv.value, p)) {
    std::string up = *s;
    for (auto& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    bool ok = !up.empty() && std::all_of(up.begin(), up.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
    if (!ok) r.error(kv.value, p, fmt::format("'{}' is not an HTTP method", *s), "e.g. GET, POST");
    else mt.method = up;
  }
}

constexpr auto kMatchKeys = key_table<Match>({
    {"src", read_cidrs},
    {"dst", read_cidrs},
    {"sport", read_ports},
    {"dport", read_ports},
    {"proto", read_proto},
    {"dscp", read_dscp},
    {"mark", read_mark},
    {"interface",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, Match& mt) {
       if (auto s = ld.iface(kv.value, p)) mt.interface = *s;
     }},
    {"host", read_host},
    {"path-prefix", read_path_prefix},
    {"method", read_method},
    {"headers",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, Match& mt) {
       if (ld.l7_ok(kv.key, p)) ld.headers(kv.value, p, mt);
     }},
});

}  // namespace

void Loader::match(YamlNode n, const YamlPath& path, Match& mt) {
  if (n.is_null()) return;  // "match:" with nothing: matches everything
  read_map(n, path, kMatchKeys, mt);
}

void Loader::headers(YamlNode v, const YamlPath& p, Match& mt) {
  if (!v.is_map()) {
    r_.error(v, p, "headers is a mapping of header name to exact value", "e.g. headers: {end-user: minions}");
    return;
  }
  if (headers_ > kMaxHeadersPerMapping) return;  // over the limit: reported once, not read on
  if (headers_ + v.size() > kMaxHeadersPerMapping) {
    r_.error(v.entry(kMaxHeadersPerMapping - headers_).key, p,
             fmt::format("{} headers in the mapping's rules so far, over the limit of {}", headers_ + v.size(),
                         kMaxHeadersPerMapping),
             "match fewer headers, or one host or path prefix for many; see clovis-wan.yaml(5), LIMITS");
    headers_ = kMaxHeadersPerMapping + 1;  // reported once; later rules' headers are not read
    return;
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

}  // namespace clovis::core::loader_detail
