#include "events.hpp"

#include <ctime>

#include <fmt/format.h>

#include "links.hpp"
#include "table.hpp"

namespace clovis::cli::render {

using nlohmann::json;

namespace {

// A mapping's event (kind "config") and a link's steering event (kind
// "steering": over budget, flows leave) name what happened; a link's state
// change is from -> to.
std::string change(const v1::LinkEventMsg& e) {
  return e.kind() == "config" || e.kind() == "steering" ? e.to() : e.from() + " -> " + e.to();
}
std::string subject(const v1::LinkEventMsg& e) {
  return e.kind() == "config" ? "(mapping)" : e.link();
}
std::string reason(const v1::LinkEventMsg& e) {
  return e.reason().empty() ? "-" : e.reason();
}
// The quality when the link changed; no latency when every probe failed.
std::string latency(const v1::LinkEventMsg& e) {
  return e.latency_ms() > 0 && e.loss_pct() < 100 ? human_ms(e.latency_ms()) : "-";
}
// No probe figures for the mapping's and steering events.
std::string loss(const v1::LinkEventMsg& e) {
  return e.kind() == "config" || e.kind() == "steering" ? "-" : human_pct(e.loss_pct());
}
std::string jitter(const v1::LinkEventMsg& e) {
  return e.latency_ms() > 0 && e.loss_pct() < 100 ? human_ms(e.jitter_ms()) : "-";
}

}  // namespace

json event_json(const v1::LinkEventMsg& e) {
  return {{"time", json_time(e.time_unix_ms())},
          {"kind", e.kind().empty() ? "link" : e.kind()},
          {"link", e.link()},
          {"from", e.from()},
          {"to", e.to()},
          {"reason", e.reason()},
          {"latency_ms", e.latency_ms()},
          {"jitter_ms", e.jitter_ms()},
          {"loss_pct", e.loss_pct()}};
}

void events_table(std::ostream& os, const Events& events, bool wide, int64_t now_unix_ms) {
  std::vector<std::string> head = {"TIME", "LINK", "CHANGE", "LATENCY", "LOSS", "REASON"};
  if (wide) head = {"TIME", "AT", "LINK", "CHANGE", "LATENCY", "JITTER", "LOSS", "REASON"};
  Table t(head);
  for (const auto& e : events) {
    if (wide)
      t.row({ago(e.time_unix_ms(), now_unix_ms), json_time(e.time_unix_ms()).get<std::string>(), subject(e), change(e),
             latency(e), jitter(e), loss(e), reason(e)});
    else t.row({ago(e.time_unix_ms(), now_unix_ms), subject(e), change(e), latency(e), loss(e), reason(e)});
  }
  t.print(os);
}

std::string event_line(const v1::LinkEventMsg& e) {
  const std::time_t secs = static_cast<std::time_t>(e.time_unix_ms() / 1000);
  std::tm tm{};
  localtime_r(&secs, &tm);
  return fmt::format("{:02}:{:02}:{:02}.{:03}  {:<12} {:<20} {:>9} {:>5}  {}", tm.tm_hour, tm.tm_min, tm.tm_sec,
                     e.time_unix_ms() % 1000, subject(e), change(e), latency(e), loss(e), reason(e));
}

}  // namespace clovis::cli::render
