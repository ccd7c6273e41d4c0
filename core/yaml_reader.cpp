#include "yaml_reader.hpp"

#include <algorithm>
#include <charconv>
#include <set>

#include <fmt/format.h>

#include "net.hpp"

namespace clovis::core {

namespace {

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

const char* kind_name(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null: return "nothing";
    case YAML::NodeType::Scalar: return "a scalar";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a mapping";
    default: return "an undefined node";
  }
}

}  // namespace

std::string did_you_mean(std::string_view word, std::initializer_list<std::string_view> cands) {
  std::string_view best;
  size_t best_d = SIZE_MAX;
  for (auto c : cands) {
    size_t d = edit_distance(word, c);
    if (d < best_d) best_d = d, best = c;
  }
  if (best_d <= std::max<size_t>(2, word.size() / 3)) return fmt::format("did you mean '{}'?", best);
  return {};
}

SourceLoc YamlReader::loc(const YAML::Node& n) {
  auto m = n.Mark();
  if (m.is_null()) return {};
  return {m.line + 1, m.column + 1};
}

void YamlReader::error(const YAML::Node& n, const std::string& path, std::string msg,
                       std::string hint) {
  diags_.error(loc(n), path, std::move(msg), std::move(hint));
}

void YamlReader::warning(const YAML::Node& n, const std::string& path, std::string msg,
                         std::string hint) {
  diags_.warning(loc(n), path, std::move(msg), std::move(hint));
}

bool YamlReader::check_map(const YAML::Node& n, const std::string& path,
                           std::initializer_list<std::string_view> allowed) {
  if (!n.IsMap()) {
    error(n, path, fmt::format("expected a mapping (key: value), found {}", kind_name(n)));
    return false;
  }
  std::set<std::string> seen;
  std::string keys;
  for (auto k : allowed) keys += (keys.empty() ? "" : ", ") + std::string(k);
  for (const auto& kv : n) {
    const auto& key = kv.first;
    if (!key.IsScalar()) {
      error(key, path, "keys must be plain words");
      continue;
    }
    const std::string& k = key.Scalar();
    if (!seen.insert(k).second)
      error(key, path + "." + k, fmt::format("duplicate key '{}'", k),
            "a later value would silently replace the earlier one; keep one");
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
      std::string hint = did_you_mean(k, allowed);
      error(key, path.empty() ? k : path + "." + k,
            fmt::format("unknown key '{}'", k),
            hint.empty() ? fmt::format("allowed here: {}", keys) : hint);
    }
  }
  return true;
}

std::optional<std::string> YamlReader::str(const YAML::Node& n, const std::string& path) {
  if (!n.IsScalar()) {
    error(n, path, fmt::format("expected a value, found {}", kind_name(n)));
    return std::nullopt;
  }
  return n.Scalar();
}

std::optional<uint64_t> YamlReader::uint(const YAML::Node& n, const std::string& path,
                                         uint64_t min, uint64_t max) {
  auto s = str(n, path);
  if (!s) return std::nullopt;
  uint64_t v = 0;
  std::string_view sv = *s;
  int base = 10;
  if (sv.size() > 2 && sv[0] == '0' && (sv[1] == 'x' || sv[1] == 'X')) sv.remove_prefix(2), base = 16;
  auto [p, ec] = std::from_chars(sv.data(), sv.data() + sv.size(), v, base);
  if (sv.empty() || ec != std::errc() || p != sv.data() + sv.size()) {
    error(n, path, fmt::format("'{}' is not a whole number", *s));
    return std::nullopt;
  }
  if (v < min || v > max) {
    error(n, path, fmt::format("{} is out of range", *s), fmt::format("use {}..{}", min, max));
    return std::nullopt;
  }
  return v;
}

std::optional<bool> YamlReader::boolean(const YAML::Node& n, const std::string& path) {
  auto s = str(n, path);
  if (!s) return std::nullopt;
  if (*s == "true" || *s == "yes" || *s == "on") return true;
  if (*s == "false" || *s == "no" || *s == "off") return false;
  error(n, path, fmt::format("'{}' is not a boolean", *s), "use true or false");
  return std::nullopt;
}

std::optional<uint32_t> YamlReader::duration_ms(const YAML::Node& n, const std::string& path) {
  auto s = str(n, path);
  if (!s) return std::nullopt;
  auto v = parse_duration_ms(*s);
  if (!v) error(n, path, fmt::format("'{}' is not a duration", *s), "write e.g. 500ms, 2s or 1m");
  return v;
}

std::optional<std::string> YamlReader::word(const YAML::Node& n, const std::string& path,
                                            std::initializer_list<std::string_view> words) {
  auto s = str(n, path);
  if (!s) return std::nullopt;
  if (std::find(words.begin(), words.end(), *s) != words.end()) return s;
  std::string all;
  for (auto w : words) all += (all.empty() ? "" : ", ") + std::string(w);
  std::string hint = did_you_mean(*s, words);
  error(n, path, fmt::format("'{}' is not one of: {}", *s, all), hint);
  return std::nullopt;
}

void YamlReader::scalar_or_list(
    const YAML::Node& n, const std::string& path,
    const std::function<void(const YAML::Node&, const std::string&)>& each) {
  if (n.IsSequence()) {
    if (n.size() == 0) error(n, path, "empty list", "remove the key to match anything");
    for (size_t i = 0; i < n.size(); ++i) each(n[i], fmt::format("{}[{}]", path, i));
  } else if (n.IsScalar()) {
    each(n, path);
  } else {
    error(n, path, fmt::format("expected a value or a list, found {}", kind_name(n)));
  }
}

bool YamlReader::list(const YAML::Node& n, const std::string& path,
                      const std::function<void(const YAML::Node&, const std::string&, size_t)>& each) {
  if (n.IsNull()) return true;
  if (!n.IsSequence()) {
    error(n, path, fmt::format("expected a list (- item), found {}", kind_name(n)));
    return false;
  }
  for (size_t i = 0; i < n.size(); ++i) each(n[i], fmt::format("{}[{}]", path, i), i);
  return true;
}

}  // namespace clovis::core
