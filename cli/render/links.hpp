// WAN links and the agent's status (clovisctl links, status) as tables and
// the documented JSON, and the human units every clovisctl table uses.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include <google/protobuf/repeated_ptr_field.h>
#include <nlohmann/json.hpp>

#include "clovis/v1/agent.pb.h"

namespace clovis::cli::render {

using Links = google::protobuf::RepeatedPtrField<v1::Link>;

// 1536 -> "1.5 KiB"; 999 -> "999 B".
std::string human_bytes(double bytes);
// 1234 -> "1.2k"; 999 -> "999".
std::string human_count(double n);
// Bytes per second -> "12.0 KiB/s"; packets per second -> "1.2k pps".
std::string human_byte_rate(double bytes_per_s);
std::string human_pps(double pps);
// 192 -> "3m12s"; 90061 -> "1d1h".
std::string human_duration(double seconds);
// Probe round-trip times: 0.42 -> "0.42 ms", 23.4 -> "23.4 ms", 1500 -> "1.50 s".
std::string human_ms(double ms);
// 2.5 -> "2.5%", 100 -> "100%".
std::string human_pct(double pct);
// A link's probe quality for tables: "-" until a probe answered.
std::string link_latency(const v1::Link& l);
std::string link_jitter(const v1::Link& l);
std::string link_loss(const v1::Link& l);
// "1.2 MiB/2 MiB, resets on 2027-01-01", or "over budget (...)"; "-" for an unmetered link.
std::string link_budget(const v1::Link& l);
// A past instant relative to now: "3m ago"; "-" for 0 (never).
std::string ago(int64_t then_unix_ms, int64_t now_unix_ms);
int64_t now_unix_ms();
// RFC 3339 in UTC with milliseconds, the form of every time in clovisctl's
// JSON; null for 0 (never).
nlohmann::json json_time(int64_t unix_ms);

nlohmann::json link_json(const v1::Link& l);
nlohmann::json links_json(const Links& links);

// One row per link: state, probe quality, traffic; `wide` adds the reason
// for the state, packet counts, per-direction rates, new and migrated flows,
// slot and labels.
void links_table(std::ostream& os, const Links& links, bool wide, int64_t now_unix_ms);

// clovisctl status: the agent, its kernel objects (maps: entries against
// capacity), what left the flow tables or was refused, and the links; `wide`
// adds the kernel's global counters and wide link rows.
nlohmann::json status_json(const v1::StatusResponse& s, const std::string& socket);
void status_text(std::ostream& os, const v1::StatusResponse& s, const std::string& socket, bool wide,
                 int64_t now_unix_ms);

}  // namespace clovis::cli::render
