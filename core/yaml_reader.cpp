#include "yaml_reader.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <unordered_set>

#include <fmt/format.h>
#include <fmt/ranges.h>

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

const char* kind_name(YamlNode n) {
  switch (n.kind()) {
    case YamlKind::kNull: return "nothing";
    case YamlKind::kScalar: return "a scalar";
    case YamlKind::kSequence: return "a list";
    case YamlKind::kMap: return "a mapping";
  }
  return "an undefined node";
}

// Key comparisons are most of check_map's work on a big mapping: reject on the
// length and first character before calling memcmp.
bool same_key(std::string_view a, std::string_view b) {
  return a.size() == b.size() && (a.empty() || (a[0] == b[0] && std::memcmp(a.data(), b.data(), a.size()) == 0));
}

// The keys of one mapping so far: a linear scan for the few keys a mapping
// usually has, a hash set beyond that so a huge mapping stays linear.
class KeySet {
 public:
  // False when k was already there.
  bool insert(std::string_view k) {
    if (n_ < kSmall) {
      for (size_t i = 0; i < n_; ++i)
        if (same_key(small_[i], k)) return false;
      small_[n_++] = k;
      return true;
    }
    if (big_.empty()) big_.insert(small_.begin(), small_.end());
    return big_.insert(k).second;
  }

 private:
  static constexpr size_t kSmall = 16;
  std::array<std::string_view, kSmall> small_;
  size_t n_ = 0;
  std::unordered_set<std::string_view> big_;
};

}  // namespace

std::string did_you_mean(std::string_view word, std::span<const std::string_view> cands) {
  std::string_view best;
  size_t best_d = SIZE_MAX;
  for (auto c : cands) {
    size_t d = edit_distance(word, c);
    if (d < best_d) best_d = d, best = c;
  }
  if (best_d <= std::max<size_t>(2, word.size() / 3)) return fmt::format("did you mean '{}'?", best);
  return {};
}

std::string YamlPath::str() const {
  std::string out;
  append(out);
  return out;
}

void YamlPath::append(std::string& out) const {
  if (!parent_) return;
  parent_->append(out);
  if (index_ != SIZE_MAX) {
    out += fmt::format("[{}]", index_);
  } else {
    if (parent_->parent_) out += '.';
    out += key_;
  }
}

SourceLoc YamlReader::loc(YamlNode n) {
  return n.loc();
}

void YamlReader::error(YamlNode n, const YamlPath& path, std::string msg, std::string hint) {
  diags_.error(loc(n), path.str(), std::move(msg), std::move(hint));
}

void YamlReader::warning(YamlNode n, const YamlPath& path, std::string msg, std::string hint) {
  diags_.warning(loc(n), path.str(), std::move(msg), std::move(hint));
}

void YamlReader::wrong_kind(YamlNode n, const YamlPath& path, const char* expected) {
  error(n, path, fmt::format("expected {}, found {}", expected, kind_name(n)));
}

bool YamlReader::check_map(YamlNode n, const YamlPath& path, std::span<const std::string_view> allowed) {
  if (!n.is_map()) {
    wrong_kind(n, path, "a mapping (key: value)");
    return false;
  }
  KeySet seen;
  for (YamlEntry kv : n.entries()) {
    YamlNode key = kv.key;
    if (!key.is_scalar()) {
      error(key, path, "keys must be plain words");
      continue;
    }
    const std::string_view k = key.scalar();
    if (!seen.insert(k))
      diags_.error(loc(key), fmt::format("{}.{}", path.str(), k), fmt::format("duplicate key '{}'", k),
                   "a later value would silently replace the earlier one; keep one");
    if (std::none_of(allowed.begin(), allowed.end(), [&](std::string_view a) { return same_key(a, k); })) {
      std::string hint = did_you_mean(k, allowed);
      error(key, YamlPath(path, k), fmt::format("unknown key '{}'", k),
            hint.empty() ? fmt::format("allowed here: {}", fmt::join(allowed, ", ")) : hint);
    }
  }
  return true;
}

std::optional<std::string> YamlReader::str(YamlNode n, const YamlPath& path) {
  auto v = view(n, path);
  if (!v) return std::nullopt;
  return std::string(*v);
}

std::optional<std::string_view> YamlReader::view(YamlNode n, const YamlPath& path) {
  if (!n.is_scalar()) {
    wrong_kind(n, path, "a value");
    return std::nullopt;
  }
  return n.scalar();
}

std::optional<uint64_t> YamlReader::uint(YamlNode n, const YamlPath& path, uint64_t min, uint64_t max) {
  const auto s = view(n, path);
  if (!s) return std::nullopt;
  std::string_view sv = *s;
  uint64_t v = 0;
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

std::optional<bool> YamlReader::boolean(YamlNode n, const YamlPath& path) {
  auto s = str(n, path);
  if (!s) return std::nullopt;
  if (*s == "true" || *s == "yes" || *s == "on") return true;
  if (*s == "false" || *s == "no" || *s == "off") return false;
  error(n, path, fmt::format("'{}' is not a boolean", *s), "use true or false");
  return std::nullopt;
}

std::optional<uint32_t> YamlReader::duration_ms(YamlNode n, const YamlPath& path) {
  auto s = str(n, path);
  if (!s) return std::nullopt;
  auto v = parse_duration_ms(*s);
  if (!v) error(n, path, fmt::format("'{}' is not a duration", *s), "write e.g. 500ms, 2s or 1m");
  return v;
}

std::optional<std::string> YamlReader::word(YamlNode n, const YamlPath& path,
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

}  // namespace clovis::core
