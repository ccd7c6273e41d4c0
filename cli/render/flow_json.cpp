#include "flow_json.hpp"

#include "flows.hpp"
#include "json_text.hpp"

namespace clovis::cli::render {

void append_flow_json(std::string* out, const v1::Flow& f, int indent) {
  const int in = indent + 2;
  out->append("{\n");
  JsonMembers m(out, in);
  m.str("action", f.action());
  m.dbl("age_s", f.age_s());
  m.boolean("assured", f.assured());
  m.num("bytes_in", f.bytes_in());
  m.num("bytes_out", f.bytes_out());
  m.num("dport", f.dport());
  m.str("dst", f.dst());
  m.str("family", f.family());
  std::string& flags = m.key("flags");
  if (f.flags().empty()) {
    flags.append("[]");
  } else {
    flags.append("[\n");
    for (int i = 0; i < f.flags_size(); ++i) {
      if (i) flags.append(",\n");
      flags.append(static_cast<size_t>(in + 2), ' ');
      append_json_string(&flags, f.flags(i));
    }
    flags.push_back('\n');
    flags.append(static_cast<size_t>(in), ' ');
    flags.push_back(']');
  }
  m.num("generation", f.generation());
  m.dbl("idle_s", f.idle_s());
  if (f.has_l7()) {
    // Rare (a proxy's sessions): nlohmann prints it, re-indented to sit here.
    const std::string l7 = l7_json(f.l7()).dump(2);
    std::string& o = m.key("l7");
    for (char c : l7) {
      o.push_back(c);
      if (c == '\n') o.append(static_cast<size_t>(in), ' ');
    }
  }
  m.str_or_null("link", f.link());
  if (!f.nat().empty()) m.str("nat", f.nat());
  m.num("packets_in", f.packets_in());
  m.num("packets_out", f.packets_out());
  m.str("proto", f.proto());
  m.str_or_null("rule", f.rule());
  m.num("sport", f.sport());
  m.str("src", f.src());
  m.str("state", f.state());
  out->push_back('\n');
  out->append(static_cast<size_t>(indent), ' ');
  out->push_back('}');
}

void FlowsJsonWriter::flow(const v1::Flow& f) {
  buf_.append(first_ ? "{\n  \"flows\": [\n    " : ",\n    ");
  first_ = false;
  append_flow_json(&buf_, f, 4);
  if (buf_.size() >= kBlock) flush();
}

void FlowsJsonWriter::finish(uint64_t total) {
  buf_.append(first_ ? "{\n  \"flows\": [],\n" : "\n  ],\n");
  buf_.append("  \"total\": ");
  append_json_uint(&buf_, total);
  buf_.append("\n}\n");
  flush();
}

void FlowsJsonWriter::flush() {
  os_.write(buf_.data(), static_cast<std::streamsize>(buf_.size()));
  buf_.clear();
}

}  // namespace clovis::cli::render
