// Typed, located access to a parsed YAML document (yaml/yaml_doc.hpp). Every failed
// read records a diagnostic with line:col and returns nullopt; callers keep
// going so that one run reports every problem in the file.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "diagnostics.hpp"
#include "yaml/yaml_doc.hpp"

namespace clovis::core {

// Where a node is in the document, as diagnostics name it
// (rules[3].match.dport). A chain of parents on the caller's stack, made
// into text only when a diagnostic needs it: a big mapping has a path per
// node, and almost never an error.
class YamlPath {
 public:
  YamlPath() = default;  // the document itself: ""
  YamlPath(const YamlPath& parent, std::string_view key) : parent_(&parent), key_(key) {}
  YamlPath(const YamlPath& parent, size_t index) : parent_(&parent), index_(index) {}

  std::string str() const;

 private:
  void append(std::string& out) const;

  const YamlPath* parent_ = nullptr;
  std::string_view key_;
  size_t index_ = SIZE_MAX;  // SIZE_MAX: a key
};

class YamlReader {
 public:
  explicit YamlReader(Diagnostics& diags) : diags_(diags) {}

  static SourceLoc loc(YamlNode n);

  // Checks that n is a mapping whose keys are all in `allowed` and unique.
  // Unknown keys are errors with a did-you-mean hint.
  bool check_map(YamlNode n, const YamlPath& path, std::span<const std::string_view> allowed);
  bool check_map(YamlNode n, const YamlPath& path, std::initializer_list<std::string_view> allowed) {
    return check_map(n, path, std::span<const std::string_view>(allowed.begin(), allowed.size()));
  }

  std::optional<std::string> str(YamlNode n, const YamlPath& path);
  // The same without a copy: valid while the document lives.
  std::optional<std::string_view> view(YamlNode n, const YamlPath& path);
  std::optional<uint64_t> uint(YamlNode n, const YamlPath& path, uint64_t min, uint64_t max);
  std::optional<bool> boolean(YamlNode n, const YamlPath& path);
  std::optional<uint32_t> duration_ms(YamlNode n, const YamlPath& path);
  // One of the listed words.
  std::optional<std::string> word(YamlNode n, const YamlPath& path, std::initializer_list<std::string_view> words);
  // Calls each(item, item_path) for a scalar or for every item of a sequence.
  template <typename F>
  void scalar_or_list(YamlNode n, const YamlPath& path, F each);
  // Calls each(item, item_path, index) for every item of a sequence.
  template <typename F>
  bool list(YamlNode n, const YamlPath& path, F each);

  void error(YamlNode n, const YamlPath& path, std::string msg, std::string hint = {});
  void warning(YamlNode n, const YamlPath& path, std::string msg, std::string hint = {});
  Diagnostics& diags() { return diags_; }

 private:
  // "expected ..., found a list" and its like, for the templates above.
  void wrong_kind(YamlNode n, const YamlPath& path, const char* expected);

  Diagnostics& diags_;
};

// "did you mean 'x'?" for a typo among candidates, or empty.
std::string did_you_mean(std::string_view word, std::span<const std::string_view> candidates);
inline std::string did_you_mean(std::string_view word, std::initializer_list<std::string_view> candidates) {
  return did_you_mean(word, std::span<const std::string_view>(candidates.begin(), candidates.size()));
}

template <typename F>
void YamlReader::scalar_or_list(YamlNode n, const YamlPath& path, F each) {
  if (n.is_sequence()) {
    if (n.size() == 0) error(n, path, "empty list", "remove the key to match anything");
    for (size_t i = 0; i < n.size(); ++i) each(n.item(i), YamlPath(path, i));
  } else if (n.is_scalar()) {
    each(n, path);
  } else {
    wrong_kind(n, path, "a value or a list");
  }
}

template <typename F>
bool YamlReader::list(YamlNode n, const YamlPath& path, F each) {
  if (n.is_null()) return true;
  if (!n.is_sequence()) {
    wrong_kind(n, path, "a list (- item)");
    return false;
  }
  for (size_t i = 0; i < n.size(); ++i) each(n.item(i), YamlPath(path, i), i);
  return true;
}

}  // namespace clovis::core
