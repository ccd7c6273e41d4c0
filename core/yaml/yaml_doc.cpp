#include "core/yaml/yaml_doc.hpp"

#include <cstdint>
#include <span>
#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include "core/yaml/yaml_doc_builder.hpp"
#include "core/yaml/yaml_subset.hpp"

namespace clovis::core {

namespace {

SourceLoc to_loc(const YAML::Mark& m) {
  if (m.is_null()) return {};
  return {m.line + 1, m.column + 1};
}

// Thrown out of the event handler to stop the parser; caught in parse().
struct TooDeep {
  YAML::Mark mark;
};
struct TooManyAliased {
  YAML::Mark mark;
};
struct AliasInsideItself {
  YAML::Mark mark;
};

// The expanded size of a node still being read: its alias can only be a cycle.
constexpr uint64_t kOpen = UINT64_MAX;

// Receives the parser's events and appends nodes; collections are closed
// iteratively (an explicit stack), so the depth limit is the only bound.
// It also counts each node's size with aliases expanded, which is what a walk
// of the tree (the loader's) visits: an alias adds its anchored node's whole
// expanded size, and the sum over all aliases is held to
// kMaxYamlAliasedNodes, so ten nested lists of ten aliases (10^10 nodes in 200
// bytes) are refused here rather than walked.
class YamlTreeBuilder final : public YAML::EventHandler {
 public:
  explicit YamlTreeBuilder(YamlDocBuilder& doc, size_t text_size) : doc_(doc) {
    doc_.reserve(text_size, text_size / 16, text_size / 16);
  }

  // True once a whole document was seen (and its root set).
  bool done() const { return done_; }

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override { done_ = true; }

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    attach(add(YamlKind::kNull, mark, anchor), done_size(anchor, 1));
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    // The parser only hands out ids it registered, and registers before the
    // anchored node's own event, so the lookup cannot miss.
    if (anchor >= anchors_.size()) {
      attach(add(YamlKind::kNull, YAML::Mark::null_mark(), YAML::NullAnchor), 1);
      return;
    }
    const uint64_t size = anchor_sizes_[anchor];
    if (size == kOpen) throw AliasInsideItself{mark};
    aliased_ += size;
    if (aliased_ > kMaxYamlAliasedNodes) throw TooManyAliased{mark};
    attach(anchors_[anchor], size);
  }

  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor, const std::string& value) override {
    uint32_t i = add(YamlKind::kScalar, mark, anchor);
    doc_.set_scalar(i, doc_.append_text(value), static_cast<uint32_t>(value.size()));
    attach(i, done_size(anchor, 1));
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(YamlKind::kSequence, mark, anchor);
  }
  void OnSequenceEnd() override { close(); }

  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(YamlKind::kMap, mark, anchor);
  }
  void OnMapEnd() override { close(); }

 private:
  struct Open {
    uint32_t node;
    size_t first_pending;  // its children so far: pending_[first_pending..]
    YAML::anchor_t anchor;
    uint64_t size = 1;  // expanded: itself and its children so far
  };

  uint32_t add(YamlKind kind, const YAML::Mark& mark, YAML::anchor_t anchor) {
    const uint32_t i = doc_.add(kind, mark.line, mark.column);
    if (anchor != YAML::NullAnchor) {
      if (anchor >= anchors_.size()) {
        anchors_.resize(anchor + 1, 0);
        anchor_sizes_.resize(anchor + 1, kOpen);
      }
      anchors_[anchor] = i;
      anchor_sizes_[anchor] = kOpen;
    }
    return i;
  }

  // Records the expanded size of a finished anchored node; returns `size`.
  uint64_t done_size(YAML::anchor_t anchor, uint64_t size) {
    if (anchor != YAML::NullAnchor && anchor < anchor_sizes_.size()) anchor_sizes_[anchor] = size;
    return size;
  }

  void attach(uint32_t i, uint64_t size) {
    if (open_.empty()) {
      doc_.set_root(i);
    } else {
      pending_.push_back(i);
      open_.back().size += size;
    }
  }

  void open(YamlKind kind, const YAML::Mark& mark, YAML::anchor_t anchor) {
    if (open_.size() >= kMaxYamlDepth) throw TooDeep{mark};
    open_.push_back({add(kind, mark, anchor), pending_.size(), anchor});
  }

  void close() {
    Open o = open_.back();
    open_.pop_back();
    // The parser always emits a key and a value (null when absent); keep the
    // pairing intact even if it ever did not.
    if (doc_.kind(o.node) == YamlKind::kMap && (pending_.size() - o.first_pending) % 2) {
      pending_.push_back(add(YamlKind::kNull, YAML::Mark::null_mark(), YAML::NullAnchor));
      ++o.size;
    }
    doc_.set_children(o.node, std::span<const uint32_t>(pending_).subspan(o.first_pending));
    pending_.resize(o.first_pending);
    attach(o.node, done_size(o.anchor, o.size));
  }

  YamlDocBuilder& doc_;
  std::vector<Open> open_;
  std::vector<uint32_t> pending_;
  std::vector<uint32_t> anchors_;       // anchor id -> node
  std::vector<uint64_t> anchor_sizes_;  // anchor id -> its node's expanded size, kOpen while open
  uint64_t aliased_ = 0;                // nodes added by expanding every alias so far
  bool done_ = false;
};

Result<YamlDoc, YamlError> parse_text(std::string_view text, bool borrow) {
  SourceLoc stopped{};
  bool too_many = false;
  if (text.size() <= UINT32_MAX / 4)
    if (auto doc = parse_yaml_subset(text, &stopped, borrow, &too_many)) return std::move(*doc);
  if (too_many)
    return Unexpected<YamlError>{
        {stopped, fmt::format("the mapping has more than {} YAML nodes (keys, values, list items)", kMaxYamlNodes),
         "a one-line rule is 7-20 nodes and each list item one; clovisd reads a mapping in bounded "
         "memory: split it, or use fewer, wider prefixes and port ranges; see clovis-wan.yaml(5), LIMITS"}};
  if (text.size() > kMaxFullYamlBytes)
    return Unexpected<YamlError>{
        {stopped,
         fmt::format("a mapping over {} MiB must be plain YAML, and this one is not from about here on",
                     kMaxFullYamlBytes >> 20),
         "big mappings are read by a fast parser that knows block and single-line flow mappings and "
         "lists, plain and quoted one-line scalars without escapes, and comments: no anchors or "
         "aliases, tags, tabs, multi-line or escaped strings; see clovis-wan.yaml(5), LIMITS"}};
  return YamlDoc::parse_with_yaml_cpp(text);
}

}  // namespace

Result<YamlDoc, YamlError> YamlDoc::parse(std::string_view text) {
  return parse_text(text, false);
}

Result<YamlDoc, YamlError> YamlDoc::parse_borrowing(std::string_view text) {
  return parse_text(text, true);
}

Result<YamlDoc, YamlError> YamlDoc::parse_with_yaml_cpp(std::string_view text) {
  if (text.size() > UINT32_MAX / 4)  // offsets and counts are 32-bit
    return Unexpected<YamlError>{{{}, fmt::format("YAML text of {} bytes is too large", text.size()), {}}};
  YamlDocBuilder doc;
  try {
    std::istringstream in{std::string(text)};
    YAML::Parser parser(in);
    YamlTreeBuilder builder(doc, text.size());
    parser.HandleNextDocument(builder);
    if (!builder.done()) {  // no document: a null root, as YAML::Load gives
      doc.null_document();
    }
  } catch (const YAML::Exception& e) {
    return Unexpected<YamlError>{
        {to_loc(e.mark), fmt::format("YAML syntax: {}", e.msg), "check indentation and quoting near this position"}};
  } catch (const TooManyAliased& e) {
    return Unexpected<YamlError>{{to_loc(e.mark),
                                  fmt::format("YAML aliases expand to more than {} nodes", kMaxYamlAliasedNodes),
                                  "aliases (*name) repeat what their anchor (&name) holds; write the lists out, or use "
                                  "fewer aliases of big anchors"}};
  } catch (const AliasInsideItself& e) {
    return Unexpected<YamlError>{{to_loc(e.mark), "YAML alias inside the node it refers to (a tree without end)",
                                  "an alias (*name) may only refer to an anchor (&name) that is complete before it"}};
  } catch (const TooDeep& e) {
    return Unexpected<YamlError>{{to_loc(e.mark), fmt::format("YAML nested more than {} levels deep", kMaxYamlDepth),
                                  "a WAN mapping is only a few levels deep; look for unclosed brackets or runaway "
                                  "indentation before this position"}};
  }
  return std::move(doc).finish();
}

}  // namespace clovis::core
