#include "loader.hpp"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "abi.hpp"
#include "loader_impl.hpp"

namespace clovis::core {

namespace loader_detail {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

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

namespace {

constexpr auto kDocumentKeys = key_table<Mapping>({
    {"version",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, Mapping&) {
       auto& r = ld.reader();
       auto ver = r.uint(kv.value, p, 1, 1000);
       if (ver && *ver != 1)
         r.error(kv.value, p, fmt::format("unsupported mapping version {}", *ver), "this clovis reads version 1");
     }},
    {"sla", [](Loader& ld, YamlEntry kv, const YamlPath& p, Mapping& m) { ld.sla_classes(kv.value, p, m); }},
    {"links",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, Mapping& m) {
       if (ld.within(kv.value, p, CLV_MAX_LINKS, "links"))
         ld.reader().list(kv.value, p, [&](YamlNode n, const YamlPath& ip, size_t) { ld.link(n, ip, m); });
     }},
    {"policies",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, Mapping& m) {
       if (ld.within(kv.value, p, CLV_MAX_POLICIES, "policies"))
         ld.reader().list(kv.value, p, [&](YamlNode n, const YamlPath& ip, size_t) { ld.policy(n, ip, m); });
     }},
    {"rules",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, Mapping& m) {
       if (!ld.within(kv.value, p, kMaxRulesPerMapping, "rules")) return;
       m.rules.reserve(m.rules.size() + kv.value.size());
       ld.reader().list(kv.value, p, [&](YamlNode n, const YamlPath& ip, size_t) { ld.rule(n, ip, m); });
     }},
    {"default",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, Mapping& m) {
       m.default_loc = YamlReader::loc(kv.key);
       if (ld.reader().check_map(kv.value, p, {"policy", "link", "action"})) m.default_target = ld.target(kv.value, p);
     }},
    {"proxy", [](Loader& ld, YamlEntry kv, const YamlPath& p, Mapping& m) { ld.proxy(kv.value, p, m); }},
    {"auto-rollback", [](Loader& ld, YamlEntry kv, const YamlPath& p, Mapping& m) { ld.auto_rollback(kv, p, m); }},
    {"unparsed",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, Mapping& m) {
       if (auto w = ld.reader().word(kv.value, p, {"drop", "pass"}))
         m.unparsed = *w == "pass" ? Unparsed::kPass : Unparsed::kDrop;
     }},
});

constexpr auto kProxyKeys = key_table<Mapping>({
    {"on-drop",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, Mapping& m) {
       auto& r = ld.reader();
       auto w = r.view(kv.value, p);
       if (!w) return;
       if (*w == "allow" || *w == "deny") {
         m.proxy.on_drop = *w == "allow" ? OnDrop::kAllow : OnDrop::kDeny;
         return;
       }
       std::string hint = did_you_mean(*w, {"allow", "deny"});
       r.error(kv.value, p, fmt::format("'{}' is not one of: allow, deny", *w),
               hint.empty() ? "allow answers every request OK (fail-open, the default); deny answers a drop "
                              "verdict with 403"
                            : hint);
     }},
});

}  // namespace

void Loader::document(YamlNode root, Mapping& m) {
  if (root.is_null()) {
    r_.diags().error({1, 1}, "", "the mapping is empty",
                     "a mapping needs at least 'links:'; see examples/ or clovis-wan.yaml(5)");
    return;
  }
  const YamlPath top;
  auto seen = read_map(root, top, kDocumentKeys, m);
  if (!seen) return;
  if (!seen->has("links"))
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
      r_.error(
          key, path,
          fmt::format("more than {} rules match on HTTP (host, path-prefix, method, headers)", kMaxL7RulesPerMapping),
          "steer many hosts with one rule each for a suffix (*.example.com) or a path prefix; "
          "see clovis-wan.yaml(5), LIMITS");
    l7_rules_ = kMaxL7RulesPerMapping + 1;  // reported once
    return false;
  }
  ++l7_rules_;
  rule_is_l7_ = true;
  return true;
}

// auto-rollback: {after: DURATION}; "auto-rollback:" alone: after 30 s.
void Loader::auto_rollback(YamlEntry kv, const YamlPath& path, Mapping& m) {
  AutoRollback a;
  a.loc = YamlReader::loc(kv.key);
  if (!kv.value.is_null()) {
    if (!r_.check_map(kv.value, path, {"after"})) return;
    for (YamlEntry e : kv.value.entries()) {
      const YamlPath ep(path, "after");
      auto d = r_.duration_ms(e.value, ep);
      if (!d) return;
      if (*d < kMinAutoRollbackMs || *d > kMaxAutoRollbackMs) {
        r_.error(e.value, ep, fmt::format("auto-rollback after {} ms is out of range", *d),
                 "write a duration from 1s to 1h: long enough for the links' health checks to have a say");
        return;
      }
      a.after_ms = *d;
    }
  }
  m.auto_rollback = a;
}

void Loader::proxy(YamlNode n, const YamlPath& path, Mapping& m) {
  if (n.is_null()) return;  // "proxy:" with nothing: the defaults
  read_map(n, path, kProxyKeys, m);
}

}  // namespace loader_detail

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
    d.error({}, "", fmt::format("the mapping is {} bytes, over the {} MiB limit", text.size(), kMaxMappingBytes >> 20));
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
  loader_detail::Loader(d).document(doc.root(), m);
  d.sort();
  if (d.has_errors()) return Unexpected<Diagnostics>{std::move(d)};
  if (warnings) warnings->append(d);
  return m;
}

}  // namespace clovis::core
