#include "flow_json.hpp"

#include "core/json/flow_json.hpp"
#include "core/json/json_text.hpp"
#include "flows.hpp"

namespace clovis::cli::render {

core::FlowRow flow_row(const v1::Flow& f) {
  core::FlowRow r;
  r.family = f.family();
  r.src = f.src();
  r.dst = f.dst();
  r.sport = static_cast<uint16_t>(f.sport());
  r.dport = static_cast<uint16_t>(f.dport());
  r.proto = f.proto();
  r.action = f.action();
  r.rule = f.rule();
  r.link = f.link();
  r.generation = f.generation();
  for (const auto& name : f.flags())
    if (auto bit = core::flow_flag_bit(name)) r.flags |= *bit;
  r.state = f.state();
  r.assured = f.assured();
  r.packets_out = f.packets_out();
  r.bytes_out = f.bytes_out();
  r.packets_in = f.packets_in();
  r.bytes_in = f.bytes_in();
  r.age_s = f.age_s();
  r.idle_s = f.idle_s();
  r.nat = f.nat();
  return r;
}

nlohmann::json flow_json(const v1::Flow& f) {
  if (!f.has_l7()) return core::flow_json(flow_row(f));
  const nlohmann::json l7 = l7_json(f.l7());
  return core::flow_json(flow_row(f), &l7);
}

void FlowsJsonWriter::flow(const v1::Flow& f) {
  buf_.append(first_ ? "{\n  \"flows\": [\n    " : ",\n    ");
  first_ = false;
  if (f.has_l7()) {
    const nlohmann::json l7 = l7_json(f.l7());  // rare: a proxy's sessions
    core::append_flow_json(&buf_, flow_row(f), 4, &l7);
  } else {
    core::append_flow_json(&buf_, flow_row(f), 4);
  }
  if (buf_.size() >= kBlock) flush();
}

void FlowsJsonWriter::finish(uint64_t total) {
  buf_.append(first_ ? "{\n  \"flows\": [],\n" : "\n  ],\n");
  buf_.append("  \"total\": ");
  core::append_json_uint(&buf_, total);
  buf_.append("\n}\n");
  flush();
}

void FlowsJsonWriter::flush() {
  os_.write(buf_.data(), static_cast<std::streamsize>(buf_.size()));
  buf_.clear();
}

}  // namespace clovis::cli::render
