#include "core/yaml/yaml_subset.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "core/yaml/yaml_doc_builder.hpp"

namespace clovis::core {

namespace {

// Deeper documents go to yaml-cpp, which reports kMaxYamlDepth itself.
constexpr size_t kMaxDepth = 64;
// yaml-cpp drops a simple key longer than 1024 characters; stay well short.
constexpr ptrdiff_t kMaxKeyLength = 256;

// What a plain scalar of the subset is made of: letters, digits and
// ._-/+%*=@ (':' too, but only in front of one of these). Every character
// YAML gives a meaning to inside or around a plain scalar (',', '[', '#',
// '?', ' ', ...) is left out, so a scalar ends exactly where yaml-cpp ends it
// or the parser meets a character it does not expect and gives up.
constexpr auto kPlain = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = t[c - 'a' + 'A'] = true;
  for (unsigned char c : std::string_view("._-/+%*=@")) t[c] = true;
  return t;
}();

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
bool is_plain(char c) {
  return kPlain[static_cast<unsigned char>(c)];
}

// Recursive descent over lines. After every complete value the parser stands
// on the first character of the next line that has content (blank and comment
// lines skipped), and indent_ is that character's column (-1 at the end).
// Every method returns false as soon as the text leaves the subset.
class YamlSubsetParser {
 public:
  YamlSubsetParser(std::string_view text, YamlDocBuilder& doc)
      : begin_(text.data()), p_(text.data()), end_(text.data() + text.size()), line_start_(text.data()), doc_(doc) {}

  SourceLoc position() const { return {line_ + 1, col() + 1}; }
  bool too_many_nodes() const { return too_many_nodes_; }

  bool document() {
    for (unsigned char c : std::string_view(begin_, static_cast<size_t>(end_ - begin_)))
      if ((c < 0x20 && c != '\n') || c >= 0x7f) return false;  // tabs, CR, control bytes, non-ASCII
    if (!(content_here() ? !marker() : next_line())) return false;
    if (indent_ != 0 || !block_map(0) || indent_ != -1 || pending_.size() != 1) return false;
    doc_.set_root(pending_[0]);
    return true;
  }

 private:
  char at(const char* q) const { return q < end_ ? *q : '\0'; }
  char peek(ptrdiff_t k = 0) const { return at(p_ + k); }
  int32_t col() const { return static_cast<int32_t>(p_ - line_start_); }
  bool at_break(const char* q) const { return q >= end_ || *q == '\n'; }
  void skip_spaces() {
    while (p_ < end_ && *p_ == ' ') ++p_;
  }
  void skip_comment() {
    while (p_ < end_ && *p_ != '\n') ++p_;
  }
  bool seq_entry() const { return peek() == '-' && (peek(1) == ' ' || at_break(p_ + 1)); }

  // From the start of a line: true when it has content (then indent_ is its
  // column); false for a blank or comment line, with p_ left at its end.
  bool content_here() {
    skip_spaces();
    if (peek() == '#') skip_comment();
    if (at_break(p_)) return false;
    indent_ = col();
    return true;
  }

  // A document marker ("---", "...") or a directive: yaml-cpp's business.
  bool marker() const {
    const char c = peek();
    return indent_ == 0 && (c == '%' || ((c == '-' || c == '.') && peek(1) == c && peek(2) == c));
  }

  // From the end of a line to the next line with content; indent_ is -1 when
  // the text ends first.
  bool next_line() {
    for (;;) {
      if (p_ >= end_) return indent_ = -1, true;
      ++p_, ++line_, line_start_ = p_;  // over the line break
      if (content_here()) return !marker();
    }
  }

  // After a value: spaces, an optional comment, the line break.
  bool end_line() {
    const char* s = p_;
    skip_spaces();
    if (peek() == '#' && p_ > s) skip_comment();
    if (!at_break(p_)) return false;
    return next_line();
  }

  uint32_t add(YamlKind kind, int32_t line, int32_t col) { return doc_.add(kind, line, col); }

  // A node past kMaxYamlNodes: the text is refused, not read on (position()
  // stays on that node).
  bool full() {
    if (doc_.nodes() < kMaxYamlNodes) return false;
    too_many_nodes_ = true;
    return true;
  }

  uint32_t open(YamlKind kind) {
    if (++depth_ > kMaxDepth || full()) return UINT32_MAX;
    return add(kind, line_, col());
  }

  void close(uint32_t node, size_t first_pending) {
    doc_.set_children(node, std::span<const uint32_t>(pending_).subspan(first_pending));
    pending_.resize(first_pending);
    pending_.push_back(node);
    --depth_;
  }

  // The end of the plain scalar starting at q, or q when none starts there.
  // ':' belongs to it only when a scalar character follows (2001:db8::1);
  // '-' and ':' may start one only in front of such a character.
  const char* plain_end(const char* q) const {
    const char c = at(q);
    if (!(is_alnum(c) || c == '.' || c == '_' || c == '/' || c == '+' || c == '=' ||
          ((c == '-' || c == ':') && (is_alnum(at(q + 1)) || at(q + 1) == '.' || at(q + 1) == ':'))))
      return q;
    while (q < end_ && (is_plain(*q) || (*q == ':' && (is_plain(at(q + 1)) || at(q + 1) == ':')))) ++q;
    return q;
  }

  // The end of the quoted scalar starting at q (past its closing quote), or
  // nullptr when it is not a one-line quoted scalar without escapes.
  const char* quoted_end(const char* q) const {
    const char quote = *q;
    for (++q; q < end_ && *q != quote; ++q)
      if (*q == '\n' || (quote == '"' && *q == '\\')) return nullptr;
    if (q >= end_ || (quote == '\'' && at(q + 1) == '\'')) return nullptr;
    return q + 1;
  }

  // A plain or quoted scalar: a node (null for a plain null/Null/NULL, as
  // yaml-cpp's parser reports it).
  bool scalar() {
    const int32_t c = col();
    const char* s = p_;
    const char *e, *value = s, *value_end;
    if (peek() == '"' || peek() == '\'') {
      if (!(e = quoted_end(s))) return false;
      ++value, value_end = e - 1;
    } else {
      if ((e = plain_end(s)) == s) return false;
      value_end = e;
    }
    const std::string_view v(value, static_cast<size_t>(value_end - value));
    const bool null = value == s && (v == "null" || v == "Null" || v == "NULL");
    if (full()) return p_ = s, false;
    const uint32_t i = add(null ? YamlKind::kNull : YamlKind::kScalar, line_, c);
    if (!null) {
      doc_.set_scalar(i, static_cast<uint32_t>(value - begin_), static_cast<uint32_t>(v.size()));
    }
    pending_.push_back(i);
    p_ = e;
    return true;
  }

  // A mapping key: a scalar, then ':' and a space or the line's end. `flow`:
  // the value must follow on the same line.
  bool key(bool flow) {
    const char* s = p_;
    if (!scalar() || p_ - s > kMaxKeyLength || peek() != ':') return false;
    ++p_;
    return peek() == ' ' || (!flow && at_break(p_));
  }

  // True when a mapping key starts here ("name: ..." as a sequence item).
  bool at_key() const {
    const char* e = (*p_ == '"' || *p_ == '\'') ? quoted_end(p_) : plain_end(p_);
    return e && e != p_ && at(e) == ':' && (at(e + 1) == ' ' || at_break(e + 1));
  }

  // A value on the current line: a flow collection or a scalar.
  bool inline_value() {
    if (peek() == '[') return flow_seq();
    if (peek() == '{') return flow_map();
    return scalar();
  }

  bool flow_seq() {
    const uint32_t node = open(YamlKind::kSequence);
    if (node == UINT32_MAX) return false;
    const size_t first = pending_.size();
    ++p_;
    skip_spaces();
    if (peek() != ']') {
      for (;;) {
        if (!inline_value()) return false;
        skip_spaces();
        if (peek() == ']') break;
        if (peek() != ',') return false;
        ++p_;
        skip_spaces();
        if (peek() == ']') return false;  // a trailing comma
      }
    }
    ++p_;
    close(node, first);
    return true;
  }

  bool flow_map() {
    const uint32_t node = open(YamlKind::kMap);
    if (node == UINT32_MAX) return false;
    const size_t first = pending_.size();
    ++p_;
    skip_spaces();
    if (peek() != '}') {
      for (;;) {
        if (!key(true)) return false;
        skip_spaces();
        if (!inline_value()) return false;
        skip_spaces();
        if (peek() == '}') break;
        if (peek() != ',') return false;
        ++p_;
        skip_spaces();
        if (peek() == '}') return false;
      }
    }
    ++p_;
    close(node, first);
    return true;
  }

  // A block mapping whose first key is at p_, in column `indent`.
  bool block_map(int32_t indent) {
    const uint32_t node = open(YamlKind::kMap);
    if (node == UINT32_MAX) return false;
    const size_t first = pending_.size();
    for (;;) {
      if (!key(false)) return false;
      const char* after_colon = p_;
      skip_spaces();
      if (at_break(p_) || (peek() == '#' && p_ > after_colon)) {
        // The value is on the next lines: a nested block collection.
        skip_comment();
        if (!next_line()) return false;
        if (indent_ > indent) {
          if (!(seq_entry() ? block_seq(indent_, false) : block_map(indent_))) return false;
        } else if (indent_ == indent && seq_entry()) {
          if (!block_seq(indent, true)) return false;  // "key:\n- item": the indentless form
        } else {
          return false;  // an empty value
        }
      } else if (!inline_value() || !end_line()) {
        return false;
      }
      if (indent_ < indent) break;
      if (indent_ > indent || seq_entry()) return false;
    }
    close(node, first);
    return true;
  }

  // A block sequence whose first '-' is at p_, in column `indent`.
  // `indentless`: the value of a mapping key in the same column.
  bool block_seq(int32_t indent, bool indentless) {
    const uint32_t node = open(YamlKind::kSequence);
    if (node == UINT32_MAX) return false;
    const size_t first = pending_.size();
    for (;;) {
      ++p_;                             // '-'
      if (peek() != ' ') return false;  // an item on the next lines, or none
      skip_spaces();
      if (at_break(p_) || peek() == '#') return false;
      if (at_key()) {
        if (!block_map(col())) return false;
      } else if (!inline_value() || !end_line()) {
        return false;
      }
      if (indent_ < indent || (indent_ == indent && indentless && !seq_entry())) break;
      if (indent_ > indent || !seq_entry()) return false;
    }
    close(node, first);
    return true;
  }

  const char* begin_;
  const char* p_;
  const char* end_;
  const char* line_start_;
  int32_t line_ = 0;
  int32_t indent_ = -1;
  size_t depth_ = 0;
  bool too_many_nodes_ = false;
  YamlDocBuilder& doc_;
  std::vector<uint32_t> pending_;  // finished nodes not yet given to their collection
};

}  // namespace

std::optional<YamlDoc> parse_yaml_subset(std::string_view text, SourceLoc* stopped_at, bool borrow,
                                         bool* too_many_nodes) {
  YamlDocBuilder doc;
  if (borrow) doc.borrow_text(text);
  else doc.copy_text(text);
  // Flow-style rules make a node every 5-6 bytes; only touched pages cost.
  doc.reserve(0, std::min(text.size() / 4, kMaxYamlNodes), std::min(text.size() / 4, kMaxYamlNodes));
  YamlSubsetParser parser(borrow ? text : doc.text(), doc);
  if (!parser.document()) {
    if (stopped_at) *stopped_at = parser.position();
    if (too_many_nodes) *too_many_nodes = parser.too_many_nodes();
    return std::nullopt;
  }
  return std::move(doc).finish();
}

}  // namespace clovis::core
