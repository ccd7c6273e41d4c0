// JSON text written straight into a buffer, byte for byte as nlohmann's
// dump(2) prints the same document, for the outputs that can be large
// (`flows -o json`, the diff of `apply -o json`): no JSON object is built.
// Tests hold each writer to nlohmann's output.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace clovis::core {

// `s` as a JSON string (quotes included), escaped as nlohmann's dump does
// by default: \" \\ \b \f \n \r \t, other control characters as \u00xx,
// everything else (UTF-8 included) as it is. (Protobuf checks that string
// fields are UTF-8, so nothing else reaches here from clovisd.)
void append_json_string(std::string* out, std::string_view s);

// A double as nlohmann dumps it: the shortest text that reads back as the
// same value, "0.0" style for integral values, null when not finite.
void append_json_double(std::string* out, double v);

void append_json_uint(std::string* out, uint64_t v);

// Members of an object whose members sit at `indent` spaces, in nlohmann's
// order (its objects are std::maps: the caller adds keys sorted), as
// "key": value separated by ",\n". The caller writes the braces.
class JsonMembers {
 public:
  JsonMembers(std::string* out, int indent) : out_(out), indent_(indent) {}
  // Starts the member; the caller appends its value to the result.
  std::string& key(std::string_view k);
  void str(std::string_view k, std::string_view v) { append_json_string(&key(k), v); }
  void str_or_null(std::string_view k, std::string_view v) {
    if (v.empty()) key(k).append("null");
    else str(k, v);
  }
  void num(std::string_view k, uint64_t v) { append_json_uint(&key(k), v); }
  void dbl(std::string_view k, double v) { append_json_double(&key(k), v); }
  void boolean(std::string_view k, bool v) { key(k).append(v ? "true" : "false"); }

 private:
  std::string* out_;
  int indent_;
  bool first_ = true;
};

}  // namespace clovis::core
