// Block-style YAML from an ordered JSON document, byte-stable (keys in
// insertion order), with comments: an object key that starts with '#' holds a
// comment (lines separated by '\n') printed before the entries that follow
// it. JSON renderings drop those keys (strip_comments).
//
// Why not yaml-cpp's YAML::Emitter (linked already): measured on the Envoy
// bootstrap for examples/edge-site.yaml (tests/unit/golden/envoy-edge-site.yaml,
// 373 lines) with the same plain-or-double-quoted choice per string, yaml-cpp
// 0.7 writes every key, scalar and indentation byte for byte as this file
// does, but not the comments: YAML::Comment goes at the end of the previous
// line, or with YAML::Newline first at column 0, and a comment opening a
// sequence item splits "- name:" into "-" and "name:" around it (88 lines
// differ, all of them comments). The comments are what a reader of the
// generated config is meant to read, so the ~100 lines here stay.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace clovis::cli::render {

// Adds a comment to `obj` before whatever is added to it next.
void add_comment(nlohmann::ordered_json& obj, const std::string& text);

// The document as YAML. Arrays directly inside arrays are not supported (no
// caller needs them; a logic_error says so).
std::string to_yaml(const nlohmann::ordered_json& doc);

// The document without its comment keys.
nlohmann::ordered_json strip_comments(const nlohmann::ordered_json& doc);

}  // namespace clovis::cli::render
