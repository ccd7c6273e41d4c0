// A parsed YAML document as a compact, read-only tree: every node in one
// vector, scalars in one buffer, children as index ranges. Built from
// yaml-cpp's event parser, so it skips YAML::Node's per-node allocations and
// reference counting, which cost nearly as much as the parse itself on big
// mappings — or, for the strict subset big mappings are written in, by a
// parser of our own that builds the identical tree (yaml_subset.hpp).
//
// Node kinds and null-ness are exactly what yaml-cpp's node API reports for
// the same text: a plain empty, '~' or 'null' scalar is kNull, a quoted one is
// a scalar. An alias resolves to the anchored node itself (same position), not
// to a copy. A document whose aliases would expand to more than
// kMaxYamlAliasedNodes nodes, or with an alias inside its own anchored node
// (`&a [*a]`, a tree without end), is refused by parse().
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "core/diagnostics.hpp"
#include "core/result.hpp"

namespace clovis::core {

inline constexpr size_t kMaxYamlDepth = 256;  // nested sequences/mappings
// Nodes that expanding every alias may add to a document: bounds what a walk
// of the tree visits (YAML's "billion laughs": nested lists of aliases).
inline constexpr uint64_t kMaxYamlAliasedNodes = 1u << 20;
// Text outside the fast subset (yaml_subset.hpp) goes to yaml-cpp, which
// reads ~2.5 MiB a second here: above this size it is refused instead, so that
// every mapping up to kMaxMappingBytes is answered within ~2 s.
inline constexpr size_t kMaxFullYamlBytes = 2u << 20;
// Nodes (scalars, lists, maps, keys included) a document may have: bounds
// the tree to 20 bytes a node, ~40 MB. 16 MiB of `[1,1,1,...]` would be 8.4M
// nodes (+224 MB, 2 s); the 100,000-rule mappings of bench/ have 1.1-1.55M.
// Only the subset parser can meet it: yaml-cpp reads at most
// kMaxFullYamlBytes, one node per 2 bytes at most.
inline constexpr size_t kMaxYamlNodes = 2'000'000;

enum class YamlKind : uint8_t { kNull, kScalar, kSequence, kMap };

class YamlDoc;
struct YamlEntry;
class YamlEntries;

// A cheap handle on one node of a YamlDoc; valid while the document lives.
class YamlNode {
 public:
  YamlKind kind() const;
  bool is_null() const { return kind() == YamlKind::kNull; }
  bool is_scalar() const { return kind() == YamlKind::kScalar; }
  bool is_sequence() const { return kind() == YamlKind::kSequence; }
  bool is_map() const { return kind() == YamlKind::kMap; }

  std::string_view scalar() const;  // empty unless a scalar
  SourceLoc loc() const;            // 1-based; {0, 0} when unknown
  size_t size() const;              // sequence items or map entries; else 0

  YamlNode item(size_t i) const;    // i < size() of a sequence
  YamlEntry entry(size_t i) const;  // i < size() of a map, in document order

  // `for (YamlEntry e : node.entries())` over a map, duplicates included.
  YamlEntries entries() const;

 private:
  friend class YamlDoc;
  YamlNode(const YamlDoc* doc, uint32_t index) : doc_(doc), index_(index) {}

  const YamlDoc* doc_;
  uint32_t index_;
};

struct YamlEntry {
  YamlNode key;
  YamlNode value;
};

class YamlEntryIterator {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = YamlEntry;
  using difference_type = std::ptrdiff_t;
  using pointer = void;
  using reference = YamlEntry;

  YamlEntryIterator(YamlNode map, size_t i) : map_(map), i_(i) {}
  YamlEntry operator*() const { return map_.entry(i_); }
  YamlEntryIterator& operator++() { return ++i_, *this; }
  bool operator==(const YamlEntryIterator& o) const { return i_ == o.i_; }

 private:
  YamlNode map_;
  size_t i_;
};

class YamlEntries {
 public:
  explicit YamlEntries(YamlNode map) : map_(map) {}
  YamlEntryIterator begin() const { return {map_, 0}; }
  YamlEntryIterator end() const { return {map_, map_.size()}; }

 private:
  YamlNode map_;
};

inline YamlEntries YamlNode::entries() const {
  return YamlEntries(*this);
}

struct YamlError {
  SourceLoc loc;
  std::string message;
  std::string hint;
};

class YamlDoc {
 public:
  // The first document of `text` (later ones are not read, as YAML::Load).
  // No document at all gives a null root. Text in the subset of
  // yaml_subset.hpp is read by that parser, anything else by yaml-cpp (up to
  // kMaxFullYamlBytes); the tree is the same either way.
  static Result<YamlDoc, YamlError> parse(std::string_view text);
  // The same, but a document read by the subset parser keeps views into
  // `text` instead of a copy of it (16 MiB at the mapping limit), so `text`
  // must outlive the document. For callers that parse, load and drop.
  static Result<YamlDoc, YamlError> parse_borrowing(std::string_view text);
  // yaml-cpp alone: the reference the subset parser is held to.
  static Result<YamlDoc, YamlError> parse_with_yaml_cpp(std::string_view text);

  YamlDoc(YamlDoc&&) = default;
  YamlDoc& operator=(YamlDoc&&) = default;
  YamlDoc(const YamlDoc&) = delete;
  YamlDoc& operator=(const YamlDoc&) = delete;

  YamlNode root() const { return {this, root_}; }

 private:
  friend class YamlNode;
  friend class YamlDocBuilder;  // yaml_doc_builder.hpp: how both readers fill one

  // 16 bytes, the kind packed with the line: a 16 MiB mapping of small
  // flow-style rules has ~2.5M nodes, so each 4 bytes here is 10 MB.
  struct Node {
    static Node make(YamlKind kind, int32_t line, int32_t col) {
      Node n;
      n.kind_line = static_cast<uint32_t>(kind) << 30 | (line < 0 || col < 0 ? 0 : static_cast<uint32_t>(line + 1));
      n.col1 = line < 0 || col < 0 ? 0 : static_cast<uint32_t>(col + 1);
      return n;
    }
    YamlKind kind() const { return static_cast<YamlKind>(kind_line >> 30); }
    uint32_t line1() const { return kind_line & ((1u << 30) - 1); }  // 1-based; 0: unknown

    uint32_t kind_line = 0;  // kind in the top 2 bits, then line + 1 (0-based as yaml-cpp's Mark; 0: unknown)
    uint32_t col1 = 0;       // col + 1, 0-based as yaml-cpp's Mark
    uint32_t first = 0;      // scalar: offset in the text; else index in kids_
    uint32_t count = 0;      // scalar: length; sequence: items; map: 2 * entries
  };
  static_assert(sizeof(Node) == 16);

  YamlDoc() = default;
  const char* text_base() const { return borrowed_ ? borrowed_ : text_.data(); }

  std::vector<Node> nodes_;
  std::vector<uint32_t> kids_;      // children of each collection, contiguous; map: k, v, k, v...
  std::string text_;                // scalar values: back to back, or the subset parser's input
  const char* borrowed_ = nullptr;  // parse_borrowing: the caller's text, used instead of text_
  uint32_t root_ = 0;
};

inline YamlKind YamlNode::kind() const {
  return doc_->nodes_[index_].kind();
}

inline size_t YamlNode::size() const {
  const auto& n = doc_->nodes_[index_];
  switch (n.kind()) {
    case YamlKind::kSequence: return n.count;
    case YamlKind::kMap: return n.count / 2;
    default: return 0;
  }
}

inline std::string_view YamlNode::scalar() const {
  const auto& n = doc_->nodes_[index_];
  if (n.kind() != YamlKind::kScalar) return {};
  return std::string_view(doc_->text_base() + n.first, n.count);
}

inline SourceLoc YamlNode::loc() const {
  const auto& n = doc_->nodes_[index_];
  if (n.line1() == 0) return {};
  return {static_cast<int>(n.line1()), static_cast<int>(n.col1)};
}

inline YamlNode YamlNode::item(size_t i) const {
  return {doc_, doc_->kids_[doc_->nodes_[index_].first + i]};
}

inline YamlEntry YamlNode::entry(size_t i) const {
  const uint32_t* kv = &doc_->kids_[doc_->nodes_[index_].first + 2 * i];
  return {YamlNode(doc_, kv[0]), YamlNode(doc_, kv[1])};
}

}  // namespace clovis::core
