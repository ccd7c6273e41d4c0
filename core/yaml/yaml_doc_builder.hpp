// Internal to clovis_yaml: the one way into a YamlDoc's storage, for the two
// readers that build one (yaml-cpp's events in yaml_doc.cpp, the subset
// parser in yaml_subset.cpp), so neither needs to be YamlDoc's friend. All
// inline: the subset parser adds a node every 5-6 bytes of a 16 MiB mapping.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "core/yaml/yaml_doc.hpp"

namespace clovis::core {

class YamlDocBuilder {
 public:
  YamlDocBuilder() = default;

  // Where scalars are: `text` itself, which must then outlive the document
  // (YamlDoc::parse_borrowing), or a copy of it the document holds. Either
  // way text() is then what node offsets count from.
  void borrow_text(std::string_view text) { doc_.borrowed_ = text.data(); }
  void copy_text(std::string_view text) { doc_.text_.assign(text); }
  std::string_view text() const { return doc_.text_; }
  // The yaml-cpp reader's way: each scalar's value appended; its offset back.
  uint32_t append_text(std::string_view value) {
    auto at = static_cast<uint32_t>(doc_.text_.size());
    doc_.text_ += value;
    return at;
  }
  void reserve(size_t text, size_t nodes, size_t kids) {
    doc_.text_.reserve(text);
    doc_.nodes_.reserve(nodes);
    doc_.kids_.reserve(kids);
  }

  size_t nodes() const { return doc_.nodes_.size(); }
  // line, col 0-based as yaml-cpp's Mark; negative: unknown.
  uint32_t add(YamlKind kind, int32_t line, int32_t col) {
    auto i = static_cast<uint32_t>(doc_.nodes_.size());
    doc_.nodes_.push_back(YamlDoc::Node::make(kind, line, col));
    return i;
  }
  YamlKind kind(uint32_t node) const { return doc_.nodes_[node].kind(); }
  void set_scalar(uint32_t node, uint32_t offset, uint32_t length) {
    doc_.nodes_[node].first = offset;
    doc_.nodes_[node].count = length;
  }
  // A collection's children, in order (a map's as key, value, key, value...).
  void set_children(uint32_t node, std::span<const uint32_t> kids) {
    auto& n = doc_.nodes_[node];
    n.first = static_cast<uint32_t>(doc_.kids_.size());
    n.count = static_cast<uint32_t>(kids.size());
    doc_.kids_.insert(doc_.kids_.end(), kids.begin(), kids.end());
  }
  void set_root(uint32_t node) { doc_.root_ = node; }
  // No document: a lone null root, as YAML::Load gives.
  void null_document() {
    doc_.nodes_.assign(1, YamlDoc::Node{});
    doc_.kids_.clear();
    doc_.root_ = 0;
  }

  YamlDoc finish() && { return std::move(doc_); }

 private:
  YamlDoc doc_;
};

}  // namespace clovis::core
