// clovisctl's renderings of clovisd's answers, golden against hand-built
// responses (CLOVIS_UPDATE_GOLDEN=1 rewrites them), and the errors found before
// any connection: filters, a missing agent, status codes.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <tuple>

#include <doctest/doctest.h>
#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include "app.hpp"
#include "cli_fixtures.hpp"
#include "cli_run.hpp"
#include "client.hpp"
#include "core/json/json_text.hpp"
#include "exit_codes.hpp"
#include "helpers.hpp"
#include "render/counters.hpp"
#include "render/diff.hpp"
#include "render/events.hpp"
#include "render/flow_json.hpp"
#include "render/flows.hpp"
#include "render/links.hpp"
#include "render/table.hpp"

using namespace clovis;
using nlohmann::json;
using test::clovisctl;
using test::golden;
using test::Run;
using namespace test::cli_fixtures;

TEST_CASE("render: human units") {
  CHECK(cli::render::human_bytes(0) == "0 B");
  CHECK(cli::render::human_bytes(999) == "999 B");
  CHECK(cli::render::human_bytes(1536) == "1.5 KiB");
  CHECK(cli::render::human_byte_rate(12288) == "12.0 KiB/s");
  CHECK(cli::render::human_pps(1234) == "1.2k pps");
  CHECK(cli::render::human_count(999) == "999");
  CHECK(cli::render::human_duration(192) == "3m12s");
  CHECK(cli::render::human_duration(90061) == "1d1h");
  CHECK(cli::render::ago(kNow - 180000, kNow) == "3m ago");
  CHECK(cli::render::ago(0, kNow) == "-");
  CHECK(cli::render::json_time(kNow) == "2026-11-21T10:00:00.000Z");
  CHECK(cli::render::json_time(0).is_null());
}

TEST_CASE("golden: links") {
  auto links = make_links();
  std::ostringstream table, wide;
  cli::render::links_table(table, links, false, kNow);
  cli::render::links_table(wide, links, true, kNow);
  golden("links-table.txt", table.str());
  golden("links-wide.txt", wide.str());
  golden("links.json", json{{"links", cli::render::links_json(links)}}.dump(2) + "\n");
}

TEST_CASE("render: probe quality") {
  CHECK(cli::render::human_ms(0.425) == "0.42 ms");
  CHECK(cli::render::human_ms(23.45) == "23.4 ms");
  CHECK(cli::render::human_ms(1500) == "1.50 s");
  CHECK(cli::render::human_pct(2.5) == "2.5%");
  CHECK(cli::render::human_pct(100) == "100%");
  CHECK(cli::render::human_pct(0) == "0%");
  v1::Link l;
  CHECK(cli::render::link_latency(l) == "-");  // no probe answered (or none configured)
  CHECK(cli::render::link_loss(l) == "-");
  l.set_loss_pct(100);
  CHECK(cli::render::link_loss(l) == "100%");  // probes, none answered
}

TEST_CASE("golden: events") {
  auto events = make_events();
  std::ostringstream table, wide;
  cli::render::events_table(table, events, false, kNow);
  cli::render::events_table(wide, events, true, kNow);
  golden("events-table.txt", table.str());
  golden("events-wide.txt", wide.str());
  json a = json::array();
  for (const auto& e : events) a.push_back(cli::render::event_json(e));
  golden("events.json", json{{"events", a}}.dump(2) + "\n");
  const std::string line = cli::render::event_line(events[1]);
  CHECK(contains(line, "  broadband    up -> degraded        182.4 ms  2.5%  latency 182.4 ms over 150 ms"));
  CHECK(contains(cli::render::event_line(events[0]),
                 "  lte          up -> down                   -  100%  carrier down"));
  // A steering event: the link's state unchanged, what steering does with it.
  CHECK(contains(cli::render::event_line(events[3]),
                 "  broadband    flows leave                  -     -  policy voice: "));
}

TEST_CASE("golden: flows") {
  auto flows = make_flows();
  std::ostringstream table, wide;
  cli::render::flows_table(table, flows, false);
  cli::render::flows_table(wide, flows, true);
  golden("flows-table.txt", table.str());
  golden("flows-wide.txt", wide.str());
  json a = json::array();
  for (const auto& f : flows) a.push_back(cli::render::flow_json(f));
  golden("flows.json", json{{"total", 10}, {"flows", a}}.dump(2) + "\n");
  // The writer clovisctl uses prints the same bytes.
  std::ostringstream streamed;
  cli::render::FlowsJsonWriter w(streamed);
  for (const auto& f : flows) w.flow(f);
  w.finish(10);
  golden("flows.json", streamed.str());
}

namespace {

// What clovisctl printed before the writer: nlohmann's document.
std::string dom_json(const std::vector<v1::Flow>& flows, uint64_t total) {
  json a = json::array();
  for (const auto& f : flows) a.push_back(cli::render::flow_json(f));
  return json{{"total", total}, {"flows", a}}.dump(2) + "\n";
}

std::string written_json(const std::vector<v1::Flow>& flows, uint64_t total) {
  std::ostringstream os;
  cli::render::FlowsJsonWriter w(os);
  for (const auto& f : flows) w.flow(f);
  w.finish(total);
  return os.str();
}

}  // namespace

TEST_CASE("flows JSON writer: strings escaped as nlohmann escapes them") {
  auto esc = [](std::string_view s) {
    std::string out;
    core::append_json_string(&out, s);
    CHECK(out == json(std::string(s)).dump());
    return out;
  };
  CHECK(esc("") == R"("")");
  CHECK(esc("plain") == R"("plain")");
  CHECK(esc("a\"b\\c/d") == R"("a\"b\\c/d")");
  CHECK(esc("\b\f\n\r\t") == R"("\b\f\n\r\t")");
  CHECK(esc(std::string("\x00\x01\x1f", 3)) == R"("\u0000\u0001\u001f")");
  CHECK(esc("\x7f") == "\"\x7f\"");  // DEL is not escaped
  CHECK(esc("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x80") ==
        "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x80\"");  // UTF-8 as it is
  for (int c = 0; c < 0x80; ++c)
    esc(std::string(1, static_cast<char>(c)) + "x\"" + std::string(1, static_cast<char>(c)));
}

TEST_CASE("flows JSON writer: doubles as nlohmann prints them") {
  auto dbl = [](double v) {
    std::string out;
    core::append_json_double(&out, v);
    return out;
  };
  CHECK(dbl(0.0) == "0.0");
  CHECK(dbl(-0.0) == "-0.0");
  CHECK(dbl(125.5) == "125.5");
  CHECK(dbl(3.0) == "3.0");
  CHECK(dbl(0.1) == "0.1");
  CHECK(dbl(std::numeric_limits<double>::infinity()) == "null");
  CHECK(dbl(std::numeric_limits<double>::quiet_NaN()) == "null");
  std::mt19937_64 rng(0x636c7673);
  std::uniform_real_distribution<double> ages(0, 1e6);
  for (int i = 0; i < 20000; ++i) {
    double v;
    if (i % 2) {
      v = ages(rng);  // what ages look like
    } else {
      const uint64_t bits = rng();  // anything a double can be
      std::memcpy(&v, &bits, sizeof v);
    }
    CAPTURE(v);
    CHECK(dbl(v) == json(v).dump());
  }
}

TEST_CASE("flows JSON writer: byte for byte the document nlohmann printed, on varied flows") {
  CHECK(written_json({}, 0) == dom_json({}, 0));
  CHECK(written_json({}, 123456) == "{\n  \"flows\": [],\n  \"total\": 123456\n}\n");
  const auto fixtures = make_flows();
  std::vector<v1::Flow> flows(fixtures.begin(), fixtures.end());
  std::mt19937_64 rng(0x666c6f77);
  auto pick = [&](std::initializer_list<const char*> xs) { return std::string(xs.begin()[rng() % xs.size()]); };
  auto odd_text = [&] {
    std::string s;
    for (size_t n = rng() % 12; n; --n)
      s += pick({"a", "Z", "-", "\"", "\\", "\n", "\t", "\x01", "\x1f", "\xc3\xa9", "#7", " "});
    return s;
  };
  for (int i = 0; i < 300; ++i) {
    v1::Flow f;
    f.set_family(pick({"ipv4", "ipv6"}));
    f.set_src(pick({"10.1.0.7", "2001:db8::1", "255.255.255.255"}));
    f.set_dst(pick({"192.0.2.200", "::", "8.8.8.8"}));
    f.set_sport(static_cast<uint32_t>(rng() % 65536));
    f.set_dport(static_cast<uint32_t>(rng() % 65536));
    f.set_proto(pick({"tcp", "udp", "icmp", "132"}));
    f.set_action(pick({"steer", "bypass", "drop", "not-steered", "local"}));
    if (rng() % 3) f.set_rule(odd_text());
    if (rng() % 3) f.set_link(odd_text());
    f.set_generation(static_cast<uint32_t>(rng()));
    for (size_t n = rng() % 4; n; --n)
      f.add_flags(pick({"nat", "proxy", "migrated", "local", "last-resort", "\"odd\""}));
    f.set_packets_out(rng() >> (rng() % 64));
    f.set_bytes_out(rng());
    f.set_packets_in(i % 7 ? rng() % 1000 : std::numeric_limits<uint64_t>::max());
    f.set_bytes_in(rng() % 2 ? 0 : rng());
    f.set_age_s(static_cast<double>(rng() % 10000000) / 1e3);
    f.set_idle_s(i % 5 ? static_cast<double>(rng() % 1000) / 7.0 : 0.0);
    if (rng() % 2) f.set_nat(pick({"198.18.0.2:40000", "[2001:db8::2]:32768"}));
    flows.push_back(f);
  }
  CHECK(written_json(flows, 7) == dom_json(flows, 7));
  // Past one output block: the buffer goes out in pieces, the bytes do not change.
  std::vector<v1::Flow> many;
  for (int i = 0; i < 50; ++i) many.insert(many.end(), flows.begin(), flows.end());
  CHECK(written_json(many, many.size()) == dom_json(many, many.size()));
}

namespace {

// flows_table as it was, a Table of string rows (before FlowTable).
std::string table_reference(const cli::render::Flows& flows, bool wide) {
  using namespace cli::render;
  auto or_dash = [](const std::string& x) { return x.empty() ? std::string("-") : x; };
  std::vector<std::string> head = {"SOURCE", "DESTINATION", "PROTO", "ACTION", "RULE", "LINK"};
  for (const char* h : wide ? std::vector<const char*>{"STATE", "PKTS OUT", "BYTES OUT", "PKTS IN", "BYTES IN", "AGE",
                                                       "IDLE", "GEN", "FLAGS", "NAT", "L7"}
                            : std::vector<const char*>{"BYTES OUT", "BYTES IN", "AGE"})
    head.emplace_back(h);
  Table t(head);
  for (const auto& f : flows) {
    std::vector<std::string> r = {endpoint(f.src(), f.sport(), f.proto()),
                                  endpoint(f.dst(), f.dport(), f.proto()),
                                  f.proto(),
                                  f.action(),
                                  or_dash(f.rule()),
                                  or_dash(f.link())};
    auto d = [](uint64_t v) { return static_cast<double>(v); };
    std::string flags;
    for (const auto& x : f.flags()) flags += (flags.empty() ? "" : ",") + x;
    if (wide) {
      for (std::string c :
           {or_dash(f.state()), human_count(d(f.packets_out())), human_bytes(d(f.bytes_out())),
            human_count(d(f.packets_in())), human_bytes(d(f.bytes_in())), human_duration(f.age_s()),
            human_duration(f.idle_s()), std::to_string(f.generation()), or_dash(flags), or_dash(f.nat()), l7_text(f)})
        r.push_back(std::move(c));
    } else {
      for (std::string c : {human_bytes(d(f.bytes_out())), human_bytes(d(f.bytes_in())), human_duration(f.age_s())})
        r.push_back(std::move(c));
    }
    t.row(std::move(r));
  }
  std::ostringstream os;
  t.print(os);
  return os.str();
}

}  // namespace

TEST_CASE("flows table: rows kept as text print as the Table of strings did") {
  auto flows = make_flows();
  flows.Mutable(0)->set_rule("a-rule-name-longer-than-its-column-and-than-sso");
  flows.Mutable(2)->set_nat("[2001:db8::2]:32768");
  for (int i = 0; i < 3000; ++i) *flows.Add() = flows[i % 4];  // past one output block
  for (bool wide : {false, true}) {
    std::ostringstream got;
    cli::render::flows_table(got, flows, wide);
    CHECK(got.str() == table_reference(flows, wide));
    std::ostringstream empty;
    cli::render::FlowTable none(wide);
    none.print(empty);
    CHECK(empty.str() == table_reference({}, wide));
  }
}

TEST_CASE("golden: the live flow view") {
  cli::render::FlowBoard board;
  v1::FlowEvent ev;
  ev.set_kind(v1::FlowEvent::ADDED);
  ev.set_time_unix_ms(kNow);
  for (const auto& f : make_flows()) *ev.mutable_flow() = f, board.apply(ev);
  ev.set_kind(v1::FlowEvent::UPDATED);
  ev.set_time_unix_ms(kNow + 2000);
  ev.mutable_flow()->set_bytes_out(ev.flow().bytes_out() + 4 * 1048576);  // the last flow: 2 MiB/s out now
  board.apply(ev);
  ev.set_kind(v1::FlowEvent::EXPIRED);
  *ev.mutable_flow() = make_flows()[2];
  board.apply(ev);
  v1::FlowEvent counters;
  counters.set_kind(v1::FlowEvent::COUNTERS);
  *counters.mutable_links() = make_links();
  board.apply(counters);
  CHECK(board.size() == 4);
  std::string text;
  for (const auto& l : board.frame(24, 120)) text += l + "\n";
  golden("flows-watch-frame.txt", text);
  auto small = board.frame(9, 40);
  CHECK(small.size() == 9);
  CHECK(small.back() == "... 4 more");  // the links leave room for the header only
  for (const auto& l : small) CHECK(l.size() <= 40);
}

TEST_CASE("golden: apply diff") {
  auto r = make_apply_response();
  std::ostringstream out, err;
  cli::render::apply_text(out, err, r, "applied", "wan.yaml", false);
  golden("apply.txt", out.str());
  CHECK(err.str() ==
        "wan.yaml:40:5: warning: rule 'old' can never match: rule 'voice' (priority 30) matches everything it does "
        "[rules[2]]\n  hint: remove it or give it a lower priority number\n");
  golden("apply.json", cli::render::apply_json_text(r, "wan.yaml"));
  // From a clovisd that sends no counts, the client counts the items.
  auto old = r;
  old.clear_diff_counts();
  old.clear_diff_total();
  CHECK(cli::render::apply_json_text(old, "wan.yaml") == cli::render::apply_json_text(r, "wan.yaml"));
  CHECK(cli::render::diff_summary(old) == cli::render::diff_summary(r));
  std::ostringstream color;
  cli::render::diff_text(color, r.diff(), true);
  CHECK(color.str().rfind("\x1b[32m  +  link", 0) == 0);
  CHECK(contains(color.str(), "\x1b[31m  -  policy   bulk\x1b[0m\n"));
  r.set_dry_run(true);
  r.set_generation(7);
  std::ostringstream dry;
  cli::render::apply_text(dry, err, r, "applied", "wan.yaml", false);
  CHECK(contains(dry.str(), "dry run: 5 changes (running generation 7); nothing was applied\n"));
}

// What apply -o json printed before it was written by hand.
json apply_json_doc(const v1::ApplyResponse& r, const std::string& source) {
  json diff = json::array(), counts = json::array(), warnings = json::array();
  for (const auto& d : r.diff())
    diff.push_back({{"kind", d.kind()}, {"name", d.name()}, {"change", d.change()}, {"detail", d.detail()}});
  for (const auto& c : r.diff_counts())
    counts.push_back({{"kind", c.kind()}, {"added", c.added()}, {"removed", c.removed()}, {"changed", c.changed()}});
  for (const auto& x : r.warnings())
    warnings.push_back({{"severity", x.severity() == v1::SEVERITY_WARNING ? "warning" : "error"},
                        {"file", x.file().empty() ? source : x.file()},
                        {"line", x.line()},
                        {"col", x.col()},
                        {"path", x.path()},
                        {"message", x.message()},
                        {"hint", x.hint()}});
  return {{"generation", r.generation()}, {"previous_generation", r.previous_generation()},
          {"dry_run", r.dry_run()},       {"diff", diff},
          {"diff_counts", counts},        {"diff_total", r.diff_total()},
          {"warnings", warnings},         {"notes", json(std::vector<std::string>(r.notes().begin(), r.notes().end()))},
          {"apply_ms", r.apply_ms()},     {"confirm_deadline_s", r.confirm_deadline_s()}};
}

TEST_CASE("apply -o json is byte for byte nlohmann's dump(2) of the same document") {
  std::mt19937 rng(0x636c7673);
  const std::vector<std::string> alphabet = {"a",  "b",  " ",  "\"",   "\\",   "/",    "\b",       "\f",
                                             "\n", "\r", "\t", "\x01", "\x1f", "\x7f", "\xc3\xa9", "\xe2\x82\xac"};
  auto text = [&](size_t max) {
    std::string t;
    for (size_t n = rng() % (max + 1); n > 0; --n) t += alphabet[rng() % alphabet.size()];
    return t;
  };
  for (int i = 0; i < 500; ++i) {
    v1::ApplyResponse r;
    r.set_generation(rng());
    r.set_previous_generation(rng() % 3);
    r.set_dry_run(rng() % 2);
    r.set_apply_ms(std::ldexp(static_cast<double>(rng()), -static_cast<int>(rng() % 40)));
    r.set_confirm_deadline_s(rng() % 2 ? 0 : rng());
    for (int n = static_cast<int>(rng() % 4); n > 0; --n) {
      auto* d = r.add_diff();
      d->set_kind(text(6));
      d->set_name(text(8));
      d->set_change(text(7));
      d->set_detail(text(20));
    }
    for (int n = static_cast<int>(rng() % 3); n > 0; --n) {
      auto* c = r.add_diff_counts();
      c->set_kind(text(5));
      c->set_added(rng());
      c->set_removed(rng() % 5);
      c->set_changed(rng() % 100000);
    }
    // Counts sent: the total is clovisd's (never fewer than the items).
    if (r.diff_counts_size() > 0) r.set_diff_total(static_cast<uint32_t>(r.diff_size()) + rng() % 10000);
    for (int n = static_cast<int>(rng() % 3); n > 0; --n) {
      auto* w = r.add_warnings();
      w->set_severity(rng() % 2 ? v1::SEVERITY_WARNING : v1::SEVERITY_ERROR);
      if (rng() % 2) w->set_file(text(10));
      w->set_line(rng());
      w->set_col(rng() % 200);
      w->set_path(text(10));
      w->set_message(text(30));
      w->set_hint(text(30));
    }
    for (int n = static_cast<int>(rng() % 3); n > 0; --n) r.add_notes(text(30));
    if (r.diff_counts_size() == 0 && r.diff_size() > 0) continue;  // counted by the client: below
    const std::string source = text(12);
    INFO("case " << i);
    CHECK(cli::render::apply_json_text(r, source) == apply_json_doc(r, source).dump(2) + "\n");
  }
}

TEST_CASE("a long diff: the first changes, how many more, and every change counted") {
  v1::ApplyResponse r;
  r.set_generation(3);
  r.set_previous_generation(2);
  for (uint32_t i = 0; i < cli::render::kAutoDiffItems; ++i) {
    auto* d = r.add_diff();
    d->set_kind("rule");
    d->set_name("r" + std::to_string(i));
    d->set_change("changed");
    d->set_detail("priority 1 -> 2");
  }
  r.set_diff_total(9800);
  for (auto [kind, added, removed, changed] : {std::tuple{"link", 0u, 0u, 1u}, {"rule", 12u, 3u, 9784u}}) {
    auto* c = r.add_diff_counts();
    c->set_kind(kind);
    c->set_added(added);
    c->set_removed(removed);
    c->set_changed(changed);
  }
  std::ostringstream out, err;
  cli::render::apply_text(out, err, r, "applied", "wan.yaml", false);
  const std::string s = out.str();
  CHECK(contains(s, "  ... 9760 more changes (--diff full lists every one)\n"));
  CHECK(contains(s, "changes: link: 1 changed; rule: 12 added, 3 removed, 9784 changed\n"));
  CHECK(contains(s, "applied: generation 3 (was 2), 9800 changes in"));
  // --diff summary: no items, the counts.
  r.clear_diff();
  std::ostringstream summary;
  cli::render::apply_text(summary, err, r, "applied", "wan.yaml", false);
  CHECK_FALSE(contains(summary.str(), "more change"));
  CHECK(summary.str().rfind("changes: link: 1 changed; rule: 12 added, 3 removed, 9784 changed\n", 0) == 0);
  // Every change shown: no summary line, as before.
  auto all = make_apply_response();
  std::ostringstream full;
  cli::render::apply_text(full, err, all, "applied", "wan.yaml", false);
  CHECK_FALSE(contains(full.str(), "changes:"));

  using cli::render::DiffMode;
  CHECK(cli::render::diff_items_wanted(DiffMode::kAuto, false) == cli::render::kAutoDiffItems);
  CHECK_FALSE(cli::render::diff_items_wanted(DiffMode::kAuto, true));
  CHECK_FALSE(cli::render::diff_items_wanted(DiffMode::kFull, false));
  CHECK(cli::render::diff_items_wanted(DiffMode::kSummary, true) == 0u);
}

TEST_CASE("golden: status") {
  v1::StatusResponse s;
  s.set_version("0.1.0");
  s.set_uptime_s(11532.4);
  s.set_generation(8);
  s.set_confirm_deadline_s(42);
  s.add_attachments("eth1@3-lan_ingress");
  s.add_attachments("eth1@3-lan_egress");
  s.set_pin_dir("/sys/fs/bpf/clovis");
  s.set_metrics_url("http://127.0.0.1:9464/metrics");
  // Whatever maps clovisd reports, in its order.
  for (auto [name, entries, cap] : {std::tuple{"clv_rules", 7, 131072},
                                    {"clv_flows", 1234, 1048576},
                                    {"clv_flows_new", 65536, 65536},
                                    {"clv_nat", 600, 1048576},
                                    {"clv_nat_new", 20, 65536}}) {
    auto* m = s.add_maps();
    m->set_name(name);
    m->set_entries(static_cast<uint64_t>(entries));
    m->set_capacity(static_cast<uint64_t>(cap));
  }
  for (auto [name, v] : {std::pair{"new_flow", 123456},
                         {"bypass", 78},
                         {"promoted", 4321},
                         {"nat_port_busy", 3},
                         {"nat_exhausted", 2},
                         {"promote_full", 1},
                         {"wrong_lan", 17}})
    (*s.mutable_counters())[name] = static_cast<uint64_t>(v);
  // Distinct values, so that a row showing another's count is seen.
  uint64_t n = 10;
  for (const char* st : {"new", "syn-recv", "established", "fin-wait", "time-wait", "close"})
    (*s.mutable_flow_table()->mutable_expired())[st] = n++;
  s.mutable_flow_table()->set_evicted_unreplied(900);
  *s.mutable_links() = make_links();
  // The kernel's per-link counters (Status only): every reason, zeros too.
  for (auto& l : *s.mutable_links())
    for (const char* reason : {"too_big", "nat_refused", "redirect_error", "link_down"})
      (*l.mutable_drops())[reason] = 0;
  (*s.mutable_links(1)->mutable_drops())["too_big"] = 7;
  (*s.mutable_links(1)->mutable_drops())["nat_refused"] = 3;
  (*s.mutable_links(2)->mutable_drops())["link_down"] = 5;
  s.mutable_links(1)->set_active_flows(40);
  s.mutable_links(1)->set_nat_bindings(31);
  for (auto [from, to, flows] : {std::tuple{"lte", "broadband", 12}, {"lte", "mpls", 4}}) {
    auto* m = s.add_migrations();
    m->set_from(from);
    m->set_to(to);
    m->set_reason("link_down");
    m->set_flows(static_cast<uint64_t>(flows));
  }
  std::ostringstream table, wide;
  cli::render::status_text(table, s, "/run/clovis/clovisd.sock", false, kNow);
  cli::render::status_text(wide, s, "/run/clovis/clovisd.sock", true, kNow);
  golden("status-table.txt", table.str());
  golden("status-wide.txt", wide.str());
  golden("status.json", cli::render::status_json(s, "/run/clovis/clovisd.sock").dump(2) + "\n");
  // `clovisctl counters`: every counter of the same response, in one place.
  std::ostringstream counters;
  cli::render::counters_text(counters, s);
  golden("counters.txt", counters.str());
  const json cj = cli::render::counters_json(s), sj = cli::render::status_json(s, "");
  golden("counters.json", cj.dump(2) + "\n");
  CHECK(cj["counters"] == sj["counters"]);
  CHECK(cj["flow_table"] == sj["flow_table"]);
  for (const auto& [name, v] : s.counters())
    CHECK_MESSAGE(contains(counters.str(), "\n" + name + " "), name << " missing from counters");
  for (const char* per_link : {"tx_packets", "tx_bytes", "rx_packets", "rx_bytes", "flows", "new_flows", "migrated"})
    CHECK(cj["links"][1][per_link] == sj["links"][1][per_link]);
  CHECK(contains(counters.str(), "\nflow_table.evicted_unreplied    900\n"));
  CHECK(cj["links"][1]["drops"]["too_big"] == 7);
  CHECK(cj["links"][1]["nat_bindings"] == 31);
  CHECK(cj["links"][1]["active_flows"] == 40);
  CHECK(cj["migrations"][0] == json{{"from", "lte"}, {"to", "broadband"}, {"reason", "link_down"}, {"flows", 12}});
  CHECK(contains(counters.str(), "broadband  too_big      7\n"));
  CHECK(contains(counters.str(), "lte            mpls       link_down  4"));
  // An older clovisd sends no flow_table: no section rather than zeros.
  s.clear_flow_table();
  std::ostringstream old;
  cli::render::status_text(old, s, "/run/clovis/clovisd.sock", false, kNow);
  CHECK(contains(table.str(), "expired established/replied           12\n"));
  CHECK_FALSE(contains(old.str(), "FLOW TABLE"));
}

TEST_CASE("flows: filter errors are usage errors, found before any connection") {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--src", "10.0.0.300"}, "--src '10.0.0.300' is not an address or a CIDR (e.g. 10.1.0.0/16)"},
      {{"--ip", "10.1.0.5/16"}, "--ip 10.1.0.5/16 has host bits set; did you mean 10.1.0.0/16?"},
      {{"--dst", "2001:db8::/129"}, "--dst '2001:db8::/129' is not an address or a CIDR"},
      {{"--dport", "99999"}, "--dport '99999' is not a port (0-65535)"},
      {{"--port", "http"}, "--port 'http' is not a port (0-65535)"},
      {{"--sport", "80,-1"}, "--sport '-1' is not a port"},
      {{"--proto", "tcp,bogus"}, "--proto 'bogus' is not a protocol"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args = {"flows"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    auto r = clovisctl(args);
    INFO(r.err);
    CHECK(r.code == cli::kExitUsage);
    CHECK(contains(r.err, "clovisctl flows: " + c.message));
  }
  auto r = clovisctl({"flows", "--watch", "--last", "5"});
  CHECK(r.code == cli::kExitUsage);
  r = clovisctl({"flows", "--interval", "2s"});
  CHECK(r.code == cli::kExitUsage);
  r = clovisctl({"flows", "--watch", "--interval", "10ms"});
  CHECK(r.code == cli::kExitUsage);
  CHECK(contains(r.err, "--interval '10ms' is not a duration of at least 100ms"));
  r = clovisctl({"apply", "-f", "wan.yaml", "--confirm", "soon"});
  CHECK(r.code == cli::kExitUsage);
  CHECK(contains(r.err, "--confirm 'soon' is not a duration"));
  r = clovisctl({"simulate", "--src", "10.0.0.1", "--dst", "10.0.0.2", "--down", "mpls"});
  CHECK(r.code == cli::kExitUsage);
  CHECK(contains(r.err, "--down and --degraded need a mapping FILE"));
}

TEST_CASE("agent not running: one line naming the socket, exit 4") {
  for (const auto& cmd : std::vector<std::vector<std::string>>{
           {"status"}, {"links"}, {"flows"}, {"get", "mapping"}, {"history"}, {"confirm"}, {"rollback"}}) {
    auto r = clovisctl(cmd, "/nonexistent/clovisd.sock");
    CHECK(r.code == cli::kExitUnavailable);
    CHECK(r.err ==
          "clovisctl: clovisd is not running (no socket at /nonexistent/clovisd.sock); start it: systemctl start "
          "clovisd\n");
    CHECK(r.out.empty());
  }
  auto r = clovisctl({"apply", "-f", test::source_path("examples/edge-site.yaml")}, "/nonexistent/clovisd.sock");
  CHECK(r.code == cli::kExitUnavailable);
  // A socket file nobody listens on: the agent died without cleaning up.
  const std::string stale = "/tmp/clovis-unit-stale-" + std::to_string(getpid()) + ".sock";
  {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", stale.c_str());
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0);
    close(fd);
  }
  r = clovisctl({"status"}, stale);
  CHECK(r.code == cli::kExitUnavailable);
  CHECK(r.err == "clovisctl: clovisd is not running (stale socket " + stale +
                     ": nothing listens on it); start it: systemctl start clovisd\n");
  std::remove(stale.c_str());
  r = clovisctl({"status"}, "/etc/hostname");
  CHECK(r.code == cli::kExitUnavailable);
  CHECK(contains(r.err, "/etc/hostname is not a socket"));
  CHECK(cli::socket_problem("/nonexistent/x").has_value());
}

TEST_CASE("gRPC status codes map to documented exit codes") {
  CHECK(cli::exit_code_for(grpc::StatusCode::INVALID_ARGUMENT) == cli::kExitInvalid);
  CHECK(cli::exit_code_for(grpc::StatusCode::FAILED_PRECONDITION) == cli::kExitInvalid);
  CHECK(cli::exit_code_for(grpc::StatusCode::NOT_FOUND) == cli::kExitInvalid);
  CHECK(cli::exit_code_for(grpc::StatusCode::UNAVAILABLE) == cli::kExitUnavailable);
  CHECK(cli::exit_code_for(grpc::StatusCode::DEADLINE_EXCEEDED) == cli::kExitUnavailable);
  CHECK(cli::exit_code_for(grpc::StatusCode::UNIMPLEMENTED) == cli::kExitUnavailable);
  CHECK(cli::exit_code_for(grpc::StatusCode::INTERNAL) == cli::kExitInternal);
  // A core::Error becomes the status whose exit code says the same.
  CHECK(rpc::to_status(core::Error{core::ErrorCode::kInvalidArgument, 0, "src 'x' is not an IP address", "simulate"})
            .error_message() == "src 'x' is not an IP address");
  for (auto [code, exit] : {std::pair{core::ErrorCode::kInvalidArgument, cli::kExitInvalid},
                            std::pair{core::ErrorCode::kNotFound, cli::kExitInvalid},
                            std::pair{core::ErrorCode::kLimit, cli::kExitUnavailable},
                            std::pair{core::ErrorCode::kIo, cli::kExitUnavailable},
                            std::pair{core::ErrorCode::kPrecondition, cli::kExitInvalid},
                            std::pair{core::ErrorCode::kInternal, cli::kExitInternal}})
    CHECK(cli::exit_code_for(rpc::status_code(code)) == exit);
  // An apply refused for the agent's state (nothing to confirm) is what it was.
  CHECK(rpc::status_code(core::ErrorCode::kPrecondition) == grpc::StatusCode::FAILED_PRECONDITION);
}
