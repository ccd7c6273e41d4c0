// Block-style YAML from an ordered JSON document, byte-stable (keys in
// insertion order), with comments: an object key that starts with '#' holds a
// comment (lines separated by '\n') printed before the entries that follow
// it. JSON renderings drop those keys (strip_comments).
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
