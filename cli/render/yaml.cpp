#include "yaml.hpp"

#include <cctype>
#include <cstring>
#include <stdexcept>

namespace clovis::cli::render {

namespace {

using J = nlohmann::ordered_json;

bool is_comment_key(const std::string& k) {
  return !k.empty() && k[0] == '#';
}

size_t real_size(const J& v) {
  if (!v.is_object()) return v.size();
  size_t n = 0;
  for (auto it = v.begin(); it != v.end(); ++it)
    if (!is_comment_key(it.key())) ++n;
  return n;
}

bool is_inline(const J& v) {
  return (!v.is_object() && !v.is_array()) || real_size(v) == 0;
}

// Plain (unquoted) only when no YAML reader could take the text for anything
// but this string: starts with a letter, '/' or '_', no indicators, spaces or
// colons, not a word YAML 1.1 readers turn into a boolean or null. Everything
// else is double-quoted; JSON's string escapes are valid YAML escapes.
bool plain_ok(const std::string& s) {
  if (s.empty()) return false;
  const auto c0 = static_cast<unsigned char>(s[0]);
  if (!std::isalpha(c0) && c0 != '/' && c0 != '_') return false;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (!std::isalnum(c) && std::strchr("_./@-", ch) == nullptr) return false;
  }
  std::string lower;
  for (char ch : s) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  for (const char* w : {"true", "false", "null", "yes", "no", "on", "off", "y", "n"})
    if (lower == w) return false;
  return true;
}

std::string text(const std::string& s) {
  return plain_ok(s) ? s : J(s).dump();
}

std::string scalar(const J& v) {
  if (v.is_string()) return text(v.get<std::string>());
  if (v.is_object()) return "{}";
  if (v.is_array()) return "[]";
  return v.dump();
}

void comment_lines(std::string& out, const J& comment, const std::string& pad) {
  const std::string t = comment.is_string() ? comment.get<std::string>() : comment.dump();
  size_t at = 0;
  while (true) {
    const size_t nl = t.find('\n', at);
    const std::string line = t.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
    out += pad + (line.empty() ? "#" : "# " + line) + "\n";
    if (nl == std::string::npos) break;
    at = nl + 1;
  }
}

void emit_array(std::string& out, const J& arr, size_t indent);

// `lead` starts the object's first key line: its indentation, or the
// indentation and "- " of the array item it is.
void emit_object(std::string& out, const J& obj, size_t indent, const std::string& lead, bool skip_leading_comments) {
  const std::string pad(indent, ' ');
  bool first = true;
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (is_comment_key(it.key())) {
      if (!(first && skip_leading_comments)) comment_lines(out, it.value(), pad);
      continue;
    }
    out += (first ? lead : pad) + text(it.key()) + ":";
    first = false;
    const J& v = it.value();
    if (is_inline(v)) {
      out += " " + scalar(v) + "\n";
    } else if (v.is_object()) {
      out += "\n";
      emit_object(out, v, indent + 2, std::string(indent + 2, ' '), false);
    } else {
      out += "\n";
      emit_array(out, v, indent + 2);
    }
  }
}

void emit_array(std::string& out, const J& arr, size_t indent) {
  const std::string pad(indent, ' ');
  for (const J& item : arr) {
    if (is_inline(item)) {
      out += pad + "- " + scalar(item) + "\n";
      continue;
    }
    if (item.is_array()) throw std::logic_error("to_yaml: an array directly inside an array");
    // Comments that open the item go above its dash.
    for (auto it = item.begin(); it != item.end() && is_comment_key(it.key()); ++it)
      comment_lines(out, it.value(), pad);
    emit_object(out, item, indent + 2, pad + "- ", true);
  }
}

}  // namespace

void add_comment(nlohmann::ordered_json& obj, const std::string& comment) {
  if (obj.is_null()) obj = J::object();
  obj["#" + std::to_string(obj.size())] = comment;
}

std::string to_yaml(const nlohmann::ordered_json& doc) {
  std::string out;
  if (is_inline(doc)) return scalar(doc) + "\n";
  if (doc.is_object()) emit_object(out, doc, 0, "", false);
  else emit_array(out, doc, 0);
  return out;
}

nlohmann::ordered_json strip_comments(const nlohmann::ordered_json& doc) {
  if (doc.is_array()) {
    J out = J::array();
    for (const J& v : doc) out.push_back(strip_comments(v));
    return out;
  }
  if (!doc.is_object()) return doc;
  J out = J::object();
  for (auto it = doc.begin(); it != doc.end(); ++it)
    if (!is_comment_key(it.key())) out[it.key()] = strip_comments(it.value());
  return out;
}

}  // namespace clovis::cli::render
