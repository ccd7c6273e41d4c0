// clovisctl's renderings of clovisd's answers, golden against hand-built
// responses (CLOVIS_UPDATE_GOLDEN=1 rewrites them), and the errors found before
// any connection: filters, a missing agent, status codes.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <doctest/doctest.h>
#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include "app.hpp"
#include "client.hpp"
#include "exit_codes.hpp"
#include "cli_fixtures.hpp"
#include "cli_run.hpp"
#include "helpers.hpp"
#include "render/diff.hpp"
#include "render/events.hpp"
#include "render/flows.hpp"
#include "render/links.hpp"

using namespace clovis;
using test::clovisctl;
using test::golden;
using test::Run;
using nlohmann::json;
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
  golden("apply.json", cli::render::apply_json(r, "wan.yaml").dump(2) + "\n");
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

TEST_CASE("golden: status") {
  v1::StatusResponse s;
  s.set_version("0.1.0");
  s.set_uptime_s(11532.4);
  s.set_generation(8);
  s.set_confirm_deadline_s(42);
  s.add_attachments("eth1@3-lan_ingress");
  s.add_attachments("eth1@3-lan_egress");
  s.set_pin_dir("/sys/fs/bpf/clovis");
  for (auto [name, entries, cap] : {std::tuple{"clv_flows", 1234, 1048576}, {"clv_rules", 7, 131072}}) {
    auto* m = s.add_maps();
    m->set_name(name);
    m->set_entries(static_cast<uint64_t>(entries));
    m->set_capacity(static_cast<uint64_t>(cap));
  }
  (*s.mutable_counters())["steered"] = 123456;
  (*s.mutable_counters())["bypassed"] = 78;
  *s.mutable_links() = make_links();
  std::ostringstream table, wide;
  cli::render::status_text(table, s, "/run/clovis/clovisd.sock", false, kNow);
  cli::render::status_text(wide, s, "/run/clovis/clovisd.sock", true, kNow);
  golden("status-table.txt", table.str());
  golden("status-wide.txt", wide.str());
  golden("status.json", cli::render::status_json(s, "/run/clovis/clovisd.sock").dump(2) + "\n");
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
  CHECK(contains(r.err, "--down and --degraded need -f"));
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
}
