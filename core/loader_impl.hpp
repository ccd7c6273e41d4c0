// The loader's internals, shared by loader.cpp (the document, common values),
// loader_link.cpp (links, health, probes) and loader_rule.cpp (policies,
// rules, matches). Not part of libclovis_core's interface: include
// loader.hpp.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "loader.hpp"
#include "yaml_reader.hpp"

namespace clovis::core::loader_detail {

class Loader;

// One key of a YAML mapping and how its value is read into T. A null `read`
// is a key that is allowed but read elsewhere (a rule's policy/link/action).
template <typename T>
struct KeyHandler {
  std::string_view key;
  void (*read)(Loader& ld, YamlEntry kv, const YamlPath& p, T& out);
};

// A mapping's keys in the order check_map names them ("allowed here: ...")
// and their handlers. Built at compile time by key_table().
template <typename T, size_t N>
struct KeyTable {
  std::array<KeyHandler<T>, N> handlers;
  std::array<std::string_view, N> names;
};

template <typename T, size_t N>
constexpr KeyTable<T, N> key_table(const KeyHandler<T> (&h)[N]) {
  KeyTable<T, N> t{};
  for (size_t i = 0; i < N; ++i) t.handlers[i] = h[i], t.names[i] = h[i].key;
  return t;
}

// Which keys of a table a mapping had: "have a name?" after reading it.
class KeysSeen {
 public:
  KeysSeen(const std::string_view* names, size_t n) : names_(names), n_(n) {}
  void set(size_t i) { bits_ |= uint64_t{1} << i; }
  bool has(std::string_view key) const {
    for (size_t i = 0; i < n_; ++i)
      if (names_[i] == key) return (bits_ >> i) & 1;
    return false;
  }

 private:
  const std::string_view* names_;
  size_t n_;
  uint64_t bits_ = 0;
};

class Loader {
 public:
  explicit Loader(Diagnostics& d) : r_(d) {}

  void document(YamlNode root, Mapping& m);
  void auto_rollback(YamlEntry kv, const YamlPath& path, Mapping& m);

  // check_map with the table's keys, then read_entries; nullopt when `n` is
  // not a mapping (reported).
  template <typename T, size_t N>
  std::optional<KeysSeen> read_map(YamlNode n, const YamlPath& path, const KeyTable<T, N>& t, T& out) {
    if (!r_.check_map(n, path, t.names)) return std::nullopt;
    return read_entries(n, path, t, out);
  }
  // Each entry of `n` to its key's handler, in document order; unknown keys
  // were reported by check_map and are skipped.
  template <typename T, size_t N>
  KeysSeen read_entries(YamlNode n, const YamlPath& path, const KeyTable<T, N>& t, T& out) {
    static_assert(N <= 64, "KeysSeen holds 64 keys");
    KeysSeen seen(t.names.data(), N);
    for (YamlEntry kv : n.entries()) {
      const std::string_view k = kv.key.scalar();
      for (size_t i = 0; i < N; ++i) {
        if (t.names[i] != k) continue;
        seen.set(i);
        if (t.handlers[i].read) t.handlers[i].read(*this, kv, YamlPath(path, k), out);
        break;
      }
    }
    return seen;
  }

  // Values common to several sections (loader.cpp).
  std::optional<std::string> name(YamlNode n, const YamlPath& path);
  std::optional<std::string> iface(YamlNode n, const YamlPath& path);
  std::optional<IpAddr> addr(YamlNode n, const YamlPath& path);
  std::optional<Cidr> cidr(YamlNode n, const YamlPath& path);
  bool within(YamlNode list, const YamlPath& path, size_t limit, const char* what);
  // The first HTTP key of a rule counts it against kMaxL7RulesPerMapping;
  // false past the limit (reported once), and the key is not read.
  bool l7_ok(YamlNode key, const YamlPath& path);

  // Sections (loader_link.cpp, loader_rule.cpp).
  void link(YamlNode n, const YamlPath& path, Mapping& m);
  void health(YamlNode n, const YamlPath& path, Link& l);
  void probe(YamlNode n, const YamlPath& path, Health& h);
  bool probe_address(YamlNode v, const YamlPath& kp, std::string a, bool port_required, Probe& pr);
  void policy(YamlNode n, const YamlPath& path, Mapping& m);
  void member(YamlNode item, const YamlPath& path, Member& mem);
  void rule(YamlNode n, const YamlPath& path, Mapping& m);
  void match(YamlNode n, const YamlPath& path, Match& mt);
  void headers(YamlNode v, const YamlPath& p, Match& mt);
  void proxy(YamlNode n, const YamlPath& path, Mapping& m);
  void sla_classes(YamlNode n, const YamlPath& path, Mapping& m);  // loader_sla.cpp
  void budget(YamlNode n, const YamlPath& path, Link& l);          // loader_sla.cpp
  // A percentage 0-100 ("1%", "0.5%"), reported when it is not one.
  std::optional<double> percent(YamlNode n, const YamlPath& path);
  std::optional<PortRange> port_range(YamlNode n, const YamlPath& path);
  // policy: / link: / action: — exactly one of them in `n`.
  std::optional<Target> target(YamlNode n, const YamlPath& path);

  YamlReader& reader() { return r_; }

  // Headers read so far, across all rules (kMaxHeadersPerMapping).
  size_t headers_ = 0;
  size_t l7_rules_ = 0;
  bool rule_is_l7_ = false;  // the rule being read was counted in l7_rules_

 private:
  YamlReader r_;
};

std::string lower(std::string s);

}  // namespace clovis::core::loader_detail
