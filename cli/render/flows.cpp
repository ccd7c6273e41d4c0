#include "flows.hpp"

#include <algorithm>
#include <sstream>

#include <fmt/format.h>

#include "core/net.hpp"
#include "flow_json.hpp"
#include "links.hpp"
#include "table.hpp"

namespace clovis::cli::render {

using nlohmann::json;

namespace {

bool has_ports(const std::string& proto) {
  auto p = core::parse_proto(proto);
  return p && (*p == 6 || *p == 17 || *p == 132 || *p == 136);
}

std::string or_dash(const std::string& s) {
  return s.empty() ? "-" : s;
}

std::string flags_text(const v1::Flow& f) {
  std::string s;
  for (const auto& x : f.flags()) s += (s.empty() ? "" : ",") + x;
  return or_dash(s);
}

// "-" from a clovisd that predates connection tracking.
std::string_view state_text(const v1::Flow& f) {
  return f.state().empty() ? std::string_view("-") : std::string_view(f.state());
}

double total_bytes(const v1::Flow& f) {
  return static_cast<double>(f.bytes_out() + f.bytes_in());
}

std::string flow_key(const v1::Flow& f) {
  return fmt::format("{}|{}|{}|{}|{}|{}", f.family(), f.proto(), f.src(), f.sport(), f.dst(), f.dport());
}

const char* kind_name(v1::FlowEvent::Kind k) {
  switch (k) {
    case v1::FlowEvent::ADDED: return "added";
    case v1::FlowEvent::UPDATED: return "updated";
    case v1::FlowEvent::EXPIRED: return "expired";
    case v1::FlowEvent::COUNTERS: return "counters";
    default: return "unspecified";
  }
}

// Text split into lines, each cut to `cols` characters.
void append_lines(std::vector<std::string>* out, const std::string& text, size_t cols) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out->push_back(line.substr(0, cols));
}

}  // namespace

std::string endpoint(const std::string& addr, uint32_t port, const std::string& proto) {
  if (!has_ports(proto)) return addr;
  return addr.find(':') != std::string::npos ? fmt::format("[{}]:{}", addr, port) : fmt::format("{}:{}", addr, port);
}

json l7_json(const v1::FlowL7& l) {
  return {{"rule", l.rule()},
          {"by_l7", l.by_l7()},
          {"host", l.host()},
          {"method", l.method()},
          {"path", l.path()},
          {"headers", json(std::map<std::string, std::string>(l.headers().begin(), l.headers().end()))},
          {"checks", l.checks()},
          {"seen_s", l.seen_s()}};
}

std::string l7_text(const v1::Flow& f) {
  if (!f.has_l7()) return "-";
  const v1::FlowL7& l = f.l7();
  std::string s =
      (l.rule().empty() ? "" : l.rule() + ": ") + l.method() + " " + (l.host().empty() ? "-" : l.host()) + l.path();
  for (const auto& [k, v] : std::map<std::string, std::string>(l.headers().begin(), l.headers().end()))
    s += fmt::format(" {}={}", k, v);
  return s;
}

json flow_event_json(const v1::FlowEvent& e) {
  json j = {{"kind", kind_name(e.kind())}, {"time", json_time(e.time_unix_ms())}};
  if (e.kind() == v1::FlowEvent::COUNTERS) j["links"] = links_json(e.links());
  else j["flow"] = flow_json(e.flow());
  return j;
}

FlowTable::FlowTable(bool wide) : wide_(wide) {
  header_ = {"SOURCE", "DESTINATION", "PROTO", "ACTION", "RULE", "LINK"};
  for (const char* h : wide ? std::vector<const char*>{"STATE", "PKTS OUT", "BYTES OUT", "PKTS IN", "BYTES IN", "AGE",
                                                       "IDLE", "GEN", "FLAGS", "NAT", "L7"}
                            : std::vector<const char*>{"BYTES OUT", "BYTES IN", "AGE"})
    header_.emplace_back(h);
  for (const auto& h : header_) widths_.push_back(h.size());
}

void FlowTable::cell(std::string_view text) {
  const size_t col = ends_.size() % header_.size();
  widths_[col] = std::max(widths_[col], text.size());
  text_.append(text);
  ends_.push_back(text_.size());
}

void FlowTable::add(const v1::Flow& f) {
  auto d = [](uint64_t v) { return static_cast<double>(v); };
  cell(endpoint(f.src(), f.sport(), f.proto()));
  cell(endpoint(f.dst(), f.dport(), f.proto()));
  cell(f.proto());
  cell(f.action());
  cell(f.rule().empty() ? std::string_view("-") : std::string_view(f.rule()));
  cell(f.link().empty() ? std::string_view("-") : std::string_view(f.link()));
  if (wide_) {
    cell(state_text(f));
    cell(human_count(d(f.packets_out())));
    cell(human_bytes(d(f.bytes_out())));
    cell(human_count(d(f.packets_in())));
    cell(human_bytes(d(f.bytes_in())));
    cell(human_duration(f.age_s()));
    cell(human_duration(f.idle_s()));
    cell(std::to_string(f.generation()));
    cell(flags_text(f));
    cell(f.nat().empty() ? std::string_view("-") : std::string_view(f.nat()));
    cell(l7_text(f));
  } else {
    cell(human_bytes(d(f.bytes_out())));
    cell(human_bytes(d(f.bytes_in())));
    cell(human_duration(f.age_s()));
  }
  ++rows_;
}

// As Table::print: columns two spaces apart, no trailing blanks.
void FlowTable::print(std::ostream& os) const {
  const size_t n = header_.size();
  std::string out, line;
  auto emit = [&](auto&& cell_at) {
    line.clear();
    for (size_t i = 0; i < n; ++i) {
      const std::string_view c = cell_at(i);
      line.append(c);
      if (i + 1 < n) line.append(widths_[i] - c.size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out.append(line);
    out.push_back('\n');
    if (out.size() >= (1 << 16)) {
      os.write(out.data(), static_cast<std::streamsize>(out.size()));
      out.clear();
    }
  };
  emit([&](size_t i) { return std::string_view(header_[i]); });
  for (size_t r = 0; r < rows_; ++r)
    emit([&](size_t i) {
      const size_t k = r * n + i;
      const size_t begin = k ? ends_[k - 1] : 0;
      return std::string_view(text_).substr(begin, ends_[k] - begin);
    });
  os.write(out.data(), static_cast<std::streamsize>(out.size()));
}

void flows_table(std::ostream& os, const Flows& flows, bool wide) {
  FlowTable t(wide);
  for (const auto& f : flows) t.add(f);
  t.print(os);
}

void FlowBoard::apply(const v1::FlowEvent& e) {
  switch (e.kind()) {
    case v1::FlowEvent::COUNTERS: links_ = e.links(); return;
    case v1::FlowEvent::EXPIRED: expired_ += flows_.erase(flow_key(e.flow())); return;
    case v1::FlowEvent::ADDED:
    case v1::FlowEvent::UPDATED: break;
    default: return;
  }
  auto [it, fresh] = flows_.try_emplace(flow_key(e.flow()));
  Entry& en = it->second;
  if (fresh) {
    ++added_;
    // Until a second sample, the flow's average over its life.
    en.bytes_per_s = e.flow().age_s() > 0 ? total_bytes(e.flow()) / e.flow().age_s() : 0;
  } else if (e.time_unix_ms() > en.seen_ms) {
    const double delta = total_bytes(e.flow()) - total_bytes(en.flow);
    en.bytes_per_s = delta > 0 ? delta * 1000.0 / static_cast<double>(e.time_unix_ms() - en.seen_ms) : 0;
  }
  en.flow = e.flow();
  en.seen_ms = e.time_unix_ms();
}

std::vector<std::string> FlowBoard::frame(int rows, int cols) const {
  const auto width = static_cast<size_t>(std::max(cols, 20));
  std::vector<std::string> out;
  out.push_back(fmt::format("clovisctl flows --watch: {} flow{} ({} added, {} expired); Ctrl-C quits", flows_.size(),
                            flows_.size() == 1 ? "" : "s", added_, expired_)
                    .substr(0, width));
  if (!links_.empty()) {
    Table lt({"LINK", "STATE", "TX RATE", "RX RATE", "TX PPS", "RX PPS", "FLOWS"});
    for (const auto& l : links_)
      lt.row({l.name(), l.state(), human_byte_rate(l.tx_bps()), human_byte_rate(l.rx_bps()), human_pps(l.tx_pps()),
              human_pps(l.rx_pps()), std::to_string(l.flows())});
    std::ostringstream s;
    lt.print(s);
    out.emplace_back();
    append_lines(&out, s.str(), width);
  }
  std::vector<const Entry*> busy;
  for (const auto& [k, e] : flows_) busy.push_back(&e);
  std::stable_sort(busy.begin(), busy.end(), [](const Entry* a, const Entry* b) {
    if (a->bytes_per_s != b->bytes_per_s) return a->bytes_per_s > b->bytes_per_s;
    return total_bytes(a->flow) > total_bytes(b->flow);
  });
  // Title, links and the flow header take their lines; the flows get the rest.
  const int room = std::max(rows - static_cast<int>(out.size()) - 2, 1);
  const size_t shown = busy.size() <= static_cast<size_t>(room) ? busy.size() : static_cast<size_t>(room - 1);
  Table ft({"SOURCE", "DESTINATION", "PROTO", "RULE", "LINK", "RATE", "BYTES OUT", "BYTES IN", "AGE"});
  for (size_t i = 0; i < shown; ++i) {
    const auto& f = busy[i]->flow;
    ft.row({endpoint(f.src(), f.sport(), f.proto()), endpoint(f.dst(), f.dport(), f.proto()), f.proto(),
            or_dash(f.rule()), f.link().empty() ? f.action() : f.link(), human_byte_rate(busy[i]->bytes_per_s),
            human_bytes(static_cast<double>(f.bytes_out())), human_bytes(static_cast<double>(f.bytes_in())),
            human_duration(f.age_s())});
  }
  std::ostringstream s;
  ft.print(s);
  out.emplace_back();
  append_lines(&out, s.str(), width);
  if (shown < busy.size()) out.push_back(fmt::format("... {} more", busy.size() - shown));
  return out;
}

}  // namespace clovis::cli::render
