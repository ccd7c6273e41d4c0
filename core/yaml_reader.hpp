// Typed, located access to a parsed YAML document (yaml_doc.hpp). Every failed
// read records a diagnostic with line:col and returns nullopt; callers keep
// going so that one run reports every problem in the file.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "diagnostics.hpp"
#include "yaml_doc.hpp"

namespace clovis::core {

class YamlReader {
 public:
  explicit YamlReader(Diagnostics& diags) : diags_(diags) {}

  static SourceLoc loc(YamlNode n);

  // Checks that n is a mapping whose keys are all in `allowed` and unique.
  // Unknown keys are errors with a did-you-mean hint.
  bool check_map(YamlNode n, const std::string& path,
                 std::initializer_list<std::string_view> allowed);

  std::optional<std::string> str(YamlNode n, const std::string& path);
  std::optional<uint64_t> uint(YamlNode n, const std::string& path, uint64_t min,
                               uint64_t max);
  std::optional<bool> boolean(YamlNode n, const std::string& path);
  std::optional<uint32_t> duration_ms(YamlNode n, const std::string& path);
  // One of the listed words.
  std::optional<std::string> word(YamlNode n, const std::string& path,
                                  std::initializer_list<std::string_view> words);
  // Calls each(item, item_path) for a scalar or for every item of a sequence.
  void scalar_or_list(YamlNode n, const std::string& path,
                      const std::function<void(YamlNode, const std::string&)>& each);
  // Calls each(item, item_path, index) for every item of a sequence.
  bool list(YamlNode n, const std::string& path,
            const std::function<void(YamlNode, const std::string&, size_t)>& each);

  void error(YamlNode n, const std::string& path, std::string msg, std::string hint = {});
  void warning(YamlNode n, const std::string& path, std::string msg,
               std::string hint = {});
  Diagnostics& diags() { return diags_; }

 private:
  Diagnostics& diags_;
};

// "did you mean 'x'?" for a typo among candidates, or empty.
std::string did_you_mean(std::string_view word, std::initializer_list<std::string_view> candidates);

}  // namespace clovis::core
