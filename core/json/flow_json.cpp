#include "flow_json.hpp"

#include "json_text.hpp"

namespace clovis::core {

namespace {

void append_flags(std::string* out, uint8_t flags, int in) {
  if (!flags) {
    out->append("[]");
    return;
  }
  out->append("[\n");
  bool first = true;
  for (const auto& f : kFlowFlags) {
    if (!(flags & f.bit)) continue;
    if (!first) out->append(",\n");
    first = false;
    out->append(static_cast<size_t>(in + 2), ' ');
    append_json_string(out, f.name);
  }
  out->push_back('\n');
  out->append(static_cast<size_t>(in), ' ');
  out->push_back(']');
}

}  // namespace

void append_flow_json(std::string* out, const FlowRow& r, int indent, const nlohmann::json* l7) {
  const int in = indent + 2;
  out->append("{\n");
  // In nlohmann's order: its objects are std::maps, so keys sorted.
  JsonMembers m(out, in);
  m.str("action", r.action);
  m.dbl("age_s", r.age_s);
  m.boolean("assured", r.assured);
  m.num("bytes_in", r.bytes_in);
  m.num("bytes_out", r.bytes_out);
  m.num("dport", r.dport);
  m.str("dst", r.dst);
  m.str("family", r.family);
  append_flags(&m.key("flags"), r.flags, in);
  m.num("generation", r.generation);
  m.dbl("idle_s", r.idle_s);
  if (l7) {
    // Rare (a proxy's sessions): nlohmann prints it, re-indented to sit here.
    const std::string text = l7->dump(2);
    std::string& o = m.key("l7");
    for (char c : text) {
      o.push_back(c);
      if (c == '\n') o.append(static_cast<size_t>(in), ' ');
    }
  }
  m.str_or_null("link", r.link);
  if (!r.nat.empty()) m.str("nat", r.nat);
  m.num("packets_in", r.packets_in);
  m.num("packets_out", r.packets_out);
  m.str("proto", r.proto);
  m.str_or_null("rule", r.rule);
  m.num("sport", r.sport);
  m.str("src", r.src);
  m.str("state", r.state);
  out->push_back('\n');
  out->append(static_cast<size_t>(indent), ' ');
  out->push_back('}');
}

nlohmann::json flow_json(const FlowRow& r, const nlohmann::json* l7) {
  std::string text;
  append_flow_json(&text, r, 0, l7);
  return nlohmann::json::parse(text);
}

}  // namespace clovis::core
