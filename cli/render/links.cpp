#include "links.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <map>

#include <fmt/format.h>

#include "core/abi.hpp"
#include "core/budget.hpp"
#include "core/conntrack.hpp"
#include "table.hpp"

namespace clovis::cli::render {

using nlohmann::json;

namespace {

// Scales by `base` through `units`; one decimal once scaled.
std::string scaled(double v, double base, const char* const* units, int n, const char* sep) {
  if (!(v > 0)) return fmt::format("0{}{}", sep, units[0]);
  int i = 0;
  while (v >= base && i + 1 < n) v /= base, ++i;
  if (i == 0) return fmt::format("{:.0f}{}{}", v, sep, units[0]);
  return fmt::format("{:.1f}{}{}", v, sep, units[i]);
}

std::string join(const google::protobuf::RepeatedPtrField<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
  return s.empty() ? "-" : s;
}

}  // namespace

std::string human_ms(double ms) {
  if (ms < 10) return fmt::format("{:.2f} ms", ms);
  if (ms < 1000) return fmt::format("{:.1f} ms", ms);
  return fmt::format("{:.2f} s", ms / 1000);
}

std::string human_pct(double pct) {
  return pct > 0 && pct < 10 ? fmt::format("{:.1f}%", pct) : fmt::format("{:.0f}%", pct);
}

std::string link_latency(const v1::Link& l) {
  return l.measured() ? human_ms(l.latency_ms()) : "-";
}
std::string link_jitter(const v1::Link& l) {
  return l.measured() ? human_ms(l.jitter_ms()) : "-";
}
// Loss means something before any probe answered (100%: none did).
std::string link_loss(const v1::Link& l) {
  return l.measured() || l.loss_pct() > 0 ? human_pct(l.loss_pct()) : "-";
}

std::string human_bytes(double bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  return scaled(bytes, 1024, kUnits, 6, " ");
}

std::string human_count(double n) {
  static const char* const kUnits[] = {"", "k", "M", "G", "T"};
  return scaled(n, 1000, kUnits, 5, "");
}

std::string human_byte_rate(double bytes_per_s) {
  return human_bytes(bytes_per_s) + "/s";
}

std::string human_pps(double pps) {
  return human_count(pps) + " pps";
}

std::string human_duration(double seconds) {
  auto s = static_cast<int64_t>(seconds < 0 ? 0 : seconds);
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return s % 60 ? fmt::format("{}m{}s", s / 60, s % 60) : fmt::format("{}m", s / 60);
  if (s < 86400) return s / 60 % 60 ? fmt::format("{}h{}m", s / 3600, s / 60 % 60) : fmt::format("{}h", s / 3600);
  return s / 3600 % 24 ? fmt::format("{}d{}h", s / 86400, s / 3600 % 24) : fmt::format("{}d", s / 86400);
}

std::string ago(int64_t then_unix_ms, int64_t now_unix_ms) {
  if (then_unix_ms <= 0) return "-";
  const int64_t s = (now_unix_ms > then_unix_ms ? now_unix_ms - then_unix_ms : 0) / 1000;
  if (s < 60) return fmt::format("{}s ago", s);
  if (s < 3600) return fmt::format("{}m ago", s / 60);
  if (s < 86400) return fmt::format("{}h ago", s / 3600);
  return fmt::format("{}d ago", s / 86400);
}

int64_t now_unix_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

json json_time(int64_t unix_ms) {
  if (unix_ms <= 0) return nullptr;
  const std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, unix_ms % 1000);
}

json link_json(const v1::Link& l) {
  return {{"name", l.name()},
          {"interface", l.interface()},
          {"slot", l.slot()},
          {"mode", l.mode()},
          {"state", l.state()},
          {"since", json_time(l.since_unix_ms())},
          {"labels", json(std::vector<std::string>(l.labels().begin(), l.labels().end()))},
          {"tx_packets", l.tx_packets()},
          {"tx_bytes", l.tx_bytes()},
          {"rx_packets", l.rx_packets()},
          {"rx_bytes", l.rx_bytes()},
          {"flows", l.flows()},
          {"new_flows", l.new_flows()},
          {"migrated", l.migrated()},
          {"tx_packets_per_s", l.tx_pps()},
          {"tx_bytes_per_s", l.tx_bps()},
          {"rx_packets_per_s", l.rx_pps()},
          {"rx_bytes_per_s", l.rx_bps()},
          {"reason", l.reason()},
          {"latency_ms", l.latency_ms()},
          {"jitter_ms", l.jitter_ms()},
          {"loss_pct", l.loss_pct()},
          {"measured", l.measured()},
          {"transitions", l.transitions()}};
}

json links_json(const Links& links) {
  json a = json::array();
  for (const auto& l : links) {
    json j = link_json(l);
    if (l.has_budget()) {
      const v1::LinkBudget& b = l.budget();
      j["budget"] = {{"limit_bytes", b.limit_bytes()},
                     {"used_bytes", b.used_bytes()},
                     {"resets", core::utc_date(b.resets_unix_s())},
                     {"over", b.over()},
                     {"error", b.error()}};
    }
    a.push_back(std::move(j));
  }
  return a;
}

std::string link_budget(const v1::Link& l) {
  if (!l.has_budget()) return "-";
  const v1::LinkBudget& b = l.budget();
  return fmt::format("{}{}/{}, resets on {}{}", b.over() ? "over budget (" : "", core::format_bytes(b.used_bytes()),
                     core::format_bytes(b.limit_bytes()), core::utc_date(b.resets_unix_s()), b.over() ? ")" : "");
}

void links_table(std::ostream& os, const Links& links, bool wide, int64_t now_unix_ms) {
  std::vector<std::string> head = {"NAME", "INTERFACE", "MODE", "STATE", "SINCE", "LATENCY", "JITTER", "LOSS"};
  if (wide) {
    head.emplace_back("REASON");
    for (const char* h : {"TX PKTS", "TX BYTES", "RX PKTS", "RX BYTES", "TX PPS", "TX RATE", "RX PPS", "RX RATE",
                          "FLOWS", "NEW", "MIGRATED", "TRANSITIONS", "SLOT", "LABELS"})
      head.emplace_back(h);
  } else {
    for (const char* h : {"TX BYTES", "RX BYTES", "TX RATE", "RX RATE", "FLOWS"}) head.emplace_back(h);
  }
  // Only mappings with metered links have the column.
  const bool budgets = std::any_of(links.begin(), links.end(), [](const v1::Link& l) { return l.has_budget(); });
  if (budgets) head.emplace_back("BUDGET");
  Table t(head);
  for (const auto& l : links) {
    std::vector<std::string> r = {
        l.name(),        l.interface(),  l.mode(),    l.state(), ago(l.since_unix_ms(), now_unix_ms),
        link_latency(l), link_jitter(l), link_loss(l)};
    auto d = [](uint64_t v) { return static_cast<double>(v); };
    if (wide) {
      r.push_back(l.reason().empty() ? "-" : l.reason());
      for (std::string c :
           {human_count(d(l.tx_packets())), human_bytes(d(l.tx_bytes())), human_count(d(l.rx_packets())),
            human_bytes(d(l.rx_bytes())), human_pps(l.tx_pps()), human_byte_rate(l.tx_bps()), human_pps(l.rx_pps()),
            human_byte_rate(l.rx_bps()), std::to_string(l.flows()), std::to_string(l.new_flows()),
            std::to_string(l.migrated()), std::to_string(l.transitions()), std::to_string(l.slot()), join(l.labels())})
        r.push_back(std::move(c));
    } else {
      for (std::string c : {human_bytes(d(l.tx_bytes())), human_bytes(d(l.rx_bytes())), human_byte_rate(l.tx_bps()),
                            human_byte_rate(l.rx_bps()), std::to_string(l.flows())})
        r.push_back(std::move(c));
    }
    if (budgets) r.push_back(link_budget(l));
    t.row(std::move(r));
  }
  t.print(os);
}

namespace {

// What removed or refused flows: expiry by state, LRU eviction (clovisd's
// counts), then the program's counters (kStatNames' names) for the rest.
void flow_table_text(std::ostream& os, const v1::StatusResponse& s) {
  const v1::FlowTableTotals& t = s.flow_table();
  Table ft({"FLOW TABLE", "COUNT"});
  auto counter = [&](const char* name) {
    auto it = s.counters().find(name);
    return it == s.counters().end() ? std::string("-") : std::to_string(it->second);
  };
  ft.row({"assured (moved to the assured table)", counter("promoted")});
  for (uint8_t st = 0; st < CLV_CT_STATES; ++st) {
    auto it = t.expired().find(std::string(core::ct_state_key(st)));
    ft.row({fmt::format("expired {}", core::ct_state_label(st)),
            it == t.expired().end() ? "-" : std::to_string(it->second)});
  }
  ft.row({"evicted unreplied (table full)", std::to_string(t.evicted_unreplied())});
  ft.row({"refused: NAT ports busy", counter("nat_port_busy")});
  ft.row({"refused: NAT exhausted", counter("nat_exhausted")});
  ft.row({"not assured: assured table full", counter("promote_full")});
  ft.row({"packets on the wrong LAN interface", counter("wrong_lan")});
  os << "\n";
  ft.print(os);
}

// The followed config file: what came of its last change, and whether the
// running mapping is still the file's.
std::string config_file_text(const v1::ConfigFile& f, uint32_t generation) {
  std::string out = fmt::format("{} ({})", f.path(), f.result().empty() ? "not read yet" : f.result());
  if (!f.hash().empty()) out += fmt::format(", content {}", f.hash());
  if (!f.error().empty()) out += ": " + f.error();
  if (f.in_effect()) return out + fmt::format("; runs as generation {}", generation);
  if (f.generation() == 0) return out + "; the running mapping is not the file's";
  return out + fmt::format(
                   "; generation {} runs, not the file's generation {} (until the file changes, or "
                   "SIGHUP)",
                   generation, f.generation());
}

}  // namespace

json status_json(const v1::StatusResponse& s, const std::string& socket) {
  json maps = json::array();
  for (const auto& m : s.maps())
    maps.push_back({{"name", m.name()}, {"entries", m.entries()}, {"capacity", m.capacity()}});
  json counters = json::object();
  for (const auto& [k, v] : s.counters()) counters[k] = v;
  json expired = json::object();
  for (const auto& [k, v] : s.flow_table().expired()) expired[k] = v;
  return {{"version", s.version()},
          {"uptime_s", s.uptime_s()},
          {"socket", socket},
          {"generation", s.generation()},
          {"confirm_deadline_s", s.confirm_deadline_s()},
          {"attachments", json(std::vector<std::string>(s.attachments().begin(), s.attachments().end()))},
          {"pin_dir", s.pin_dir()},
          {"metrics_url", s.metrics_url()},
          {"maps", maps},
          {"counters", counters},
          {"flow_table", {{"expired", expired}, {"evicted_unreplied", s.flow_table().evicted_unreplied()}}},
          {"links", links_json(s.links())},
          {"auto_rollback_after_s", s.auto_rollback_after_s()},
          {"config_file", s.has_config_file() ? json{{"path", s.config_file().path()},
                                                     {"hash", s.config_file().hash()},
                                                     {"result", s.config_file().result()},
                                                     {"error", s.config_file().error()},
                                                     {"generation", s.config_file().generation()},
                                                     {"time", json_time(s.config_file().time_unix_ms())},
                                                     {"in_effect", s.config_file().in_effect()}}
                                              : json(nullptr)}};
}

void status_text(std::ostream& os, const v1::StatusResponse& s, const std::string& socket, bool wide,
                 int64_t now_unix_ms) {
  Table head({"", ""});
  head.row({"clovisd", fmt::format("{}, up {}", s.version(), human_duration(s.uptime_s()))});
  head.row({"socket", socket});
  head.row({"generation", s.generation() ? std::to_string(s.generation()) : "none (no mapping applied yet)"});
  if (s.confirm_deadline_s() > 0)
    head.row({"confirm", fmt::format("pending: reverts in {}s unless 'clovisctl confirm'", s.confirm_deadline_s())});
  if (s.auto_rollback_after_s() > 0)
    head.row({"auto-rollback",
              fmt::format("armed: rolled back after {}s without a usable link", s.auto_rollback_after_s())});
  if (s.has_config_file()) head.row({"config", config_file_text(s.config_file(), s.generation())});
  std::string attached;
  for (const auto& a : s.attachments()) attached += (attached.empty() ? "" : ", ") + a;
  head.row({"attached", attached.empty() ? "-" : attached});
  head.row({"pin dir", s.pin_dir().empty() ? "-" : s.pin_dir()});
  head.row({"metrics", s.metrics_url().empty() ? "off (clovisd --metrics-listen)" : s.metrics_url()});
  head.print(os);
  if (!s.maps().empty()) {
    Table maps({"MAP", "ENTRIES", "CAPACITY", "FILL"});
    for (const auto& m : s.maps())
      maps.row({m.name(), std::to_string(m.entries()), std::to_string(m.capacity()),
                m.capacity() ? fmt::format("{:.1f}%",
                                           100.0 * static_cast<double>(m.entries()) / static_cast<double>(m.capacity()))
                             : "-"});
    os << "\n";
    maps.print(os);
  }
  if (s.has_flow_table()) flow_table_text(os, s);
  if (!s.links().empty()) {
    os << "\n";
    links_table(os, s.links(), wide, now_unix_ms);
  }
  if (wide && !s.counters().empty()) {
    // A protobuf map has no order; sorted names keep the output stable.
    std::map<std::string, uint64_t> sorted(s.counters().begin(), s.counters().end());
    Table c({"COUNTER", "VALUE"});
    for (const auto& [k, v] : sorted) c.row({k, std::to_string(v)});
    os << "\n";
    c.print(os);
  }
}

}  // namespace clovis::cli::render
