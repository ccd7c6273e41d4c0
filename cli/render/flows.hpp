// Flows (clovisctl flows) as tables, the documented JSON, and the live
// top-like view of `flows --watch` in a terminal.
#pragma once

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "clovis/v1/agent.pb.h"

namespace clovis::cli::render {

using Flows = google::protobuf::RepeatedPtrField<v1::Flow>;

// The same object as core::flow_json (clovisd --dump): rule and link are
// null when empty, nat is present only for a translated flow. (flow_json.cpp)
nlohmann::json flow_json(const v1::Flow& f);
// Its "l7" member: what a proxy reported about the flow's connection.
nlohmann::json l7_json(const v1::FlowL7& l);

// What a proxy reported about the flow and the rule it chose:
// "minions-video: GET host/path end-user=minions", or "-".
std::string l7_text(const v1::Flow& f);

// One line of `flows --watch -o json`: kind, time and flow or links.
nlohmann::json flow_event_json(const v1::FlowEvent& e);

// "10.1.0.5:40000", "[2001:db8::1]:443", or the bare address for protocols
// without ports.
std::string endpoint(const std::string& addr, uint32_t port, const std::string& proto);

// `wide` adds the connection state, packet counts, idle time, generation,
// flags, NAT and what a proxy reported.
void flows_table(std::ostream& os, const Flows& flows, bool wide);

// The same table, a flow at a time as a listing streams in. Rows are kept as
// their cells' text back to back (the columns' widths are known only at the
// end): ~100 bytes a flow, where Table keeps a vector of strings each.
class FlowTable {
 public:
  explicit FlowTable(bool wide);
  void add(const v1::Flow& f);
  size_t size() const { return rows_; }
  void print(std::ostream& os) const;

 private:
  void cell(std::string_view text);

  bool wide_;
  std::vector<std::string> header_;
  std::vector<size_t> widths_;
  std::string text_;          // every cell of every row
  std::vector<size_t> ends_;  // where each cell ends in text_, row after row
  size_t rows_ = 0;
};

// What `flows --watch` shows in a terminal: the flows the event stream has
// announced and not expired, with a byte rate from successive updates, and
// the last per-link counters.
class FlowBoard {
 public:
  void apply(const v1::FlowEvent& e);
  // The screen, at most `rows` lines of at most `cols` characters: a title,
  // the links, and the flows busiest first.
  std::vector<std::string> frame(int rows, int cols) const;
  size_t size() const { return flows_.size(); }

 private:
  struct Entry {
    v1::Flow flow;
    int64_t seen_ms = 0;  // event time of the last update
    double bytes_per_s = 0;
  };
  std::map<std::string, Entry> flows_;
  google::protobuf::RepeatedPtrField<v1::Link> links_;
  uint64_t added_ = 0, expired_ = 0;
};

}  // namespace clovis::cli::render
