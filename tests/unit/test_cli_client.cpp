// clovisctl against clovisd's API: golden renderings of hand-built responses,
// filter and socket errors, and live round trips against an in-process fake
// Agent service on a Unix socket (CLOVIS_UPDATE_GOLDEN=1 rewrites goldens).
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

namespace {

// 2026-11-21T10:00:00Z: renderings with relative times are golden against it.
constexpr int64_t kNow = 1795255200000;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

v1::Link make_link(const char* name, const char* iface, const char* mode, const char* state, uint32_t slot) {
  v1::Link l;
  l.set_name(name);
  l.set_interface(iface);
  l.set_slot(slot);
  l.set_mode(mode);
  l.set_state(state);
  l.set_since_unix_ms(kNow - 192000 * (slot + 1));
  l.add_labels("wan");
  l.set_tx_packets(1234567 * (slot + 1));
  l.set_tx_bytes(1536000000ull * (slot + 1));
  l.set_rx_packets(345678);
  l.set_rx_bytes(524288000);
  l.set_flows(12 + slot);
  l.set_new_flows(120);
  l.set_migrated(slot);
  l.set_tx_pps(1234.5);
  l.set_tx_bps(12288.0 * (slot + 1));
  l.set_rx_pps(999);
  l.set_rx_bps(1048576);
  return l;
}

google::protobuf::RepeatedPtrField<v1::Link> make_links() {
  google::protobuf::RepeatedPtrField<v1::Link> links;
  v1::Link mpls = make_link("mpls", "wan0", "route", "up", 0);
  mpls.set_reason("3 probe rounds answered");
  mpls.set_latency_ms(4.25);
  mpls.set_jitter_ms(0.5);
  mpls.set_measured(true);
  mpls.set_transitions(2);
  *links.Add() = mpls;
  v1::Link bb = make_link("broadband", "wan1", "redirect", "degraded", 1);
  bb.set_reason("latency 182.4 ms over 150 ms");
  bb.set_latency_ms(182.4);
  bb.set_jitter_ms(23.75);
  bb.set_loss_pct(2.5);
  bb.set_measured(true);
  bb.set_transitions(1);
  *links.Add() = bb;
  v1::Link lte = make_link("lte", "wwan0", "redirect", "down", 2);
  lte.set_since_unix_ms(0);
  lte.clear_labels();
  lte.set_reason("carrier down");
  lte.set_loss_pct(100);
  *links.Add() = lte;
  return links;
}

v1::Flow make_flow(const char* src, uint32_t sport, const char* dst, uint32_t dport, const char* proto,
                   const char* link, uint64_t bytes) {
  v1::Flow f;
  f.set_family(std::string(src).find(':') == std::string::npos ? "ipv4" : "ipv6");
  f.set_src(src);
  f.set_dst(dst);
  f.set_sport(sport);
  f.set_dport(dport);
  f.set_proto(proto);
  f.set_action(*link ? "steer" : "bypass");
  f.set_rule(*link ? "voice" : "");
  f.set_link(link);
  f.set_generation(7);
  f.set_packets_out(bytes / 1000);
  f.set_bytes_out(bytes);
  f.set_packets_in(bytes / 2000);
  f.set_bytes_in(bytes / 2);
  f.set_age_s(125.5);
  f.set_idle_s(0.25);
  return f;
}

google::protobuf::RepeatedPtrField<v1::Flow> make_flows() {
  google::protobuf::RepeatedPtrField<v1::Flow> flows;
  *flows.Add() = make_flow("10.1.0.7", 5060, "192.0.2.200", 5061, "udp", "mpls", 2400000);
  v1::Flow nat = make_flow("10.1.0.5", 40000, "198.51.100.10", 8000, "tcp", "broadband", 73400320);
  nat.add_flags("nat");
  nat.set_nat("198.18.0.2:40000");
  *flows.Add() = nat;
  *flows.Add() = make_flow("2001:db8:5::1", 51000, "2001:db8:100::9", 443, "tcp", "", 900);
  *flows.Add() = make_flow("10.1.0.9", 0, "8.8.8.8", 0, "icmp", "mpls", 840);
  return flows;
}

google::protobuf::RepeatedPtrField<v1::LinkEventMsg> make_events() {
  google::protobuf::RepeatedPtrField<v1::LinkEventMsg> events;
  auto add = [&](int64_t ago_ms, const char* link, const char* from, const char* to, const char* why, double lat,
                 double jit, double loss) {
    auto* e = events.Add();
    e->set_time_unix_ms(kNow - ago_ms);
    e->set_link(link);
    e->set_from(from);
    e->set_to(to);
    e->set_reason(why);
    e->set_latency_ms(lat);
    e->set_jitter_ms(jit);
    e->set_loss_pct(loss);
  };
  add(3723000, "lte", "up", "down", "carrier down", 0, 0, 100);
  add(192500, "broadband", "up", "degraded", "latency 182.4 ms over 150 ms", 182.4, 23.75, 2.5);
  add(4000, "mpls", "down", "up", "3 probe rounds answered", 4.25, 0.5, 0);
  return events;
}

v1::ApplyResponse make_apply_response() {
  v1::ApplyResponse r;
  r.set_generation(8);
  r.set_previous_generation(7);
  r.set_apply_ms(3.25);
  auto item = [&](const char* kind, const char* name, const char* change, const char* detail) {
    auto* d = r.add_diff();
    d->set_kind(kind);
    d->set_name(name);
    d->set_change(change);
    d->set_detail(detail);
  };
  item("link", "lte", "added", "");
  item("link", "broadband", "changed", "gateway 198.18.0.1 -> 198.18.0.9");
  item("policy", "bulk", "removed", "");
  item("rule", "voice", "changed", "match.dport 5060 -> 5060-5061");
  item("default", "", "changed", "policy bulk -> policy low-latency");
  auto* w = r.add_warnings();
  w->set_severity(v1::SEVERITY_WARNING);
  w->set_file("wan.yaml");
  w->set_line(40);
  w->set_col(5);
  w->set_path("rules[2]");
  w->set_message("rule 'old' can never match: rule 'voice' (priority 30) matches everything it does");
  w->set_hint("remove it or give it a lower priority number");
  r.add_notes("interface wwan0 does not exist yet; link lte stays down until it appears");
  return r;
}

}  // namespace

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
  ev.mutable_flow()->set_bytes_out(ev.flow().bytes_out() + 4 * 1048576);  // icmp: 2 MiB/s out now
  board.apply(ev);
  ev.set_kind(v1::FlowEvent::EXPIRED);
  *ev.mutable_flow() = make_flows()[2];
  board.apply(ev);
  v1::FlowEvent counters;
  counters.set_kind(v1::FlowEvent::COUNTERS);
  *counters.mutable_links() = make_links();
  board.apply(counters);
  CHECK(board.size() == 3);
  std::string text;
  for (const auto& l : board.frame(24, 120)) text += l + "\n";
  golden("flows-watch-frame.txt", text);
  auto small = board.frame(9, 40);
  CHECK(small.size() == 9);
  CHECK(small.back() == "... 3 more");  // the links leave room for the header only
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

namespace {

// Canned answers, and the requests that reached it, for the round trips.
class FakeAgent final : public v1::Agent::Service {
 public:
  v1::ApplyRequest last_apply;
  v1::ListFlowsRequest last_list;
  v1::WatchFlowsRequest last_watch;
  v1::SimulateRequest last_simulate;
  v1::RollbackRequest last_rollback;
  std::string decision_json;  // what Simulate returns
  bool pending = true;        // something to confirm
  bool events = true;         // ListEvents has some

  grpc::Status Apply(grpc::ServerContext* c, const v1::ApplyRequest* req, v1::ApplyResponse* resp) override {
    last_apply = *req;
    if (req->mapping_yaml().find("kernel-refuses") != std::string::npos)
      return {grpc::StatusCode::UNAVAILABLE, "the kernel refused the rule table update (ENOMEM); nothing changed"};
    // Rejects as clovisd does: core's diagnostics in the trailer, text in the message.
    auto checked = core::check_mapping(req->mapping_yaml());
    if (!checked.ok()) {
      v1::Diagnostics d;
      for (const auto& x : checked.diagnostics.items()) {
        auto* p = d.add_items();
        p->set_severity(x.severity == core::Severity::kError ? v1::SEVERITY_ERROR : v1::SEVERITY_WARNING);
        p->set_file(req->source());
        p->set_line(static_cast<uint32_t>(x.loc.line));
        p->set_col(static_cast<uint32_t>(x.loc.col));
        p->set_path(x.path);
        p->set_message(x.message);
        p->set_hint(x.hint);
      }
      c->AddTrailingMetadata(cli::kDiagnosticsTrailer, d.SerializeAsString());
      return {grpc::StatusCode::INVALID_ARGUMENT, "mapping rejected"};
    }
    *resp = make_apply_response();
    resp->set_dry_run(req->dry_run());
    resp->set_confirm_deadline_s(req->confirm_timeout_s());
    return grpc::Status::OK;
  }
  grpc::Status GetMapping(grpc::ServerContext*, const v1::GetMappingRequest*, v1::GetMappingResponse* r) override {
    r->set_generation(8);
    r->set_mapping_yaml("version: 1\nlinks: []\n");
    r->set_applied_unix_ms(kNow);
    return grpc::Status::OK;
  }
  grpc::Status Status(grpc::ServerContext*, const v1::StatusRequest*, v1::StatusResponse* r) override {
    r->set_version("0.1.0");
    r->set_uptime_s(60);
    r->set_generation(8);
    *r->mutable_links() = make_links();
    return grpc::Status::OK;
  }
  grpc::Status ListLinks(grpc::ServerContext*, const v1::ListLinksRequest*, v1::ListLinksResponse* r) override {
    *r->mutable_links() = make_links();
    return grpc::Status::OK;
  }
  grpc::Status ListFlows(grpc::ServerContext*, const v1::ListFlowsRequest* req, v1::ListFlowsResponse* r) override {
    last_list = *req;
    *r->mutable_flows() = make_flows();
    r->set_total(10);
    return grpc::Status::OK;
  }
  grpc::Status WatchFlows(grpc::ServerContext*, const v1::WatchFlowsRequest* req,
                          grpc::ServerWriter<v1::FlowEvent>* w) override {
    last_watch = *req;
    v1::FlowEvent e;
    e.set_kind(v1::FlowEvent::ADDED);
    e.set_time_unix_ms(kNow);
    *e.mutable_flow() = make_flows()[0];
    w->Write(e);
    e.set_kind(v1::FlowEvent::EXPIRED);
    e.set_time_unix_ms(kNow + 1000);
    w->Write(e);
    v1::FlowEvent c;
    c.set_kind(v1::FlowEvent::COUNTERS);
    c.set_time_unix_ms(kNow + 1000);
    *c.mutable_links() = make_links();
    w->Write(c);
    return grpc::Status::OK;  // a finite stream: the watch ends with it
  }
  grpc::Status ListEvents(grpc::ServerContext*, const v1::ListEventsRequest*, v1::ListEventsResponse* r) override {
    if (events) *r->mutable_events() = make_events();
    return grpc::Status::OK;
  }
  grpc::Status WatchEvents(grpc::ServerContext*, const v1::WatchEventsRequest*,
                           grpc::ServerWriter<v1::LinkEventMsg>* w) override {
    for (const auto& e : make_events()) w->Write(e);
    return {grpc::StatusCode::UNAVAILABLE, "clovisd is stopping"};
  }
  grpc::Status Simulate(grpc::ServerContext*, const v1::SimulateRequest* req, v1::SimulateResponse* r) override {
    last_simulate = *req;
    r->set_decision_json(decision_json);
    r->set_generation(8);
    return grpc::Status::OK;
  }
  grpc::Status History(grpc::ServerContext*, const v1::HistoryRequest*, v1::HistoryResponse* r) override {
    for (uint32_t g : {8u, 7u}) {
      auto* e = r->add_entries();
      e->set_generation(g);
      e->set_applied_unix_ms(kNow - 3600000 * (9 - g));
      e->set_source("wan.yaml");
      e->set_running(g == 8);
      e->set_mapping_yaml("version: 1\n");
    }
    return grpc::Status::OK;
  }
  grpc::Status Rollback(grpc::ServerContext*, const v1::RollbackRequest* req, v1::ApplyResponse* r) override {
    last_rollback = *req;
    if (req->generation() == 99) return {grpc::StatusCode::NOT_FOUND, "no generation 99 in the history (kept: 7, 8)"};
    r->set_generation(9);
    r->set_previous_generation(8);
    r->set_dry_run(req->dry_run());
    auto* d = r->add_diff();
    d->set_kind("rule");
    d->set_name("voice");
    d->set_change("removed");
    return grpc::Status::OK;
  }
  grpc::Status Confirm(grpc::ServerContext*, const v1::ConfirmRequest*, v1::ConfirmResponse* r) override {
    if (!pending) return {grpc::StatusCode::FAILED_PRECONDITION, "nothing to confirm: no apply --confirm is pending"};
    pending = false;
    r->set_generation(8);
    return grpc::Status::OK;
  }
};

// The fake on a Unix socket of its own, as clovisd would serve it.
struct FakeServer {
  FakeAgent agent;
  std::string path;
  std::unique_ptr<grpc::Server> server;

  FakeServer() {
    static std::atomic<int> n{0};
    path = "/tmp/clovis-unit-" + std::to_string(getpid()) + "-" + std::to_string(n++) + ".sock";
    grpc::ServerBuilder b;
    b.AddListeningPort("unix:" + path, grpc::InsecureServerCredentials());
    b.RegisterService(&agent);
    server = b.BuildAndStart();
    REQUIRE(server);
  }
  ~FakeServer() {
    server->Shutdown();
    std::remove(path.c_str());
  }
  Run run(std::vector<std::string> args) { return clovisctl(std::move(args), path); }
};

std::string write_temp(const std::string& name, const std::string& text) {
  const std::string path = "/tmp/clovis-unit-" + std::to_string(getpid()) + "-" + name;
  std::ofstream(path) << text;
  return path;
}

}  // namespace

TEST_CASE("live: apply prints the diff and the new generation") {
  FakeServer fake;
  const std::string file = test::source_path("examples/edge-site.yaml");
  auto r = fake.run({"apply", "-f", file, "--confirm", "90s"});
  INFO(r.err);
  CHECK(r.code == cli::kExitOk);
  CHECK(fake.agent.last_apply.source() == file);
  CHECK(contains(fake.agent.last_apply.mapping_yaml(), "links:"));
  CHECK(fake.agent.last_apply.confirm_timeout_s() == 90);
  CHECK_FALSE(fake.agent.last_apply.dry_run());
  CHECK(contains(r.out, "  ~  link     broadband  gateway 198.18.0.1 -> 198.18.0.9\n"));
  CHECK(contains(r.out, "applied: generation 8 (was 7), 5 changes in 3.2 ms\n"));
  CHECK(contains(r.out, "confirm within 90s with 'clovisctl confirm', or clovisd goes back to generation 7\n"));
  CHECK(contains(r.err, "wan.yaml:40:5: warning: rule 'old' can never match"));
  CHECK(r.out.find('\x1b') == std::string::npos);  // not a terminal: no colors

  r = fake.run({"apply", "-f", file, "--dry-run", "-o", "json"});
  CHECK(r.code == cli::kExitOk);
  CHECK(fake.agent.last_apply.dry_run());
  auto doc = json::parse(r.out);
  CHECK(doc["dry_run"] == true);
  CHECK(doc["diff"].size() == 5);
  CHECK(doc["warnings"][0]["line"] == 40);
}

TEST_CASE("live: a rejected apply prints the located errors as validate does, exit 1") {
  FakeServer fake;
  const std::string path =
      write_temp("broken.yaml", "version: 1\nlinks:\n  - name: a\n    interface: wan0\n    gatway: 192.0.2.1\n");
  auto r = fake.run({"apply", "-f", path});
  CHECK(r.code == cli::kExitInvalid);
  CHECK(r.out.empty());
  auto v = clovisctl({"validate", "-f", path});
  // Every diagnostic line of validate, in the same words, then the verdict.
  const std::string diags = v.err.substr(0, v.err.find(path + ": rejected"));
  CHECK(contains(r.err,
                 path + ":5:5: error: unknown key 'gatway' [links[0].gatway]\n  hint: did you mean 'gateway'?\n"));
  CHECK(r.err.rfind(diags, 0) == 0);
  CHECK(contains(r.err, path + ": rejected by clovisd (1 error"));
  std::remove(path.c_str());

  const std::string refused = write_temp("refused.yaml", "# kernel-refuses\n");
  r = fake.run({"apply", "-f", refused});
  CHECK(r.code == cli::kExitUnavailable);
  CHECK(r.err == "clovisctl apply: clovisd unavailable: the kernel refused the rule table update (ENOMEM); "
                 "nothing changed\n");
  std::remove(refused.c_str());
  r = fake.run({"apply", "-f", "/nonexistent/wan.yaml"});
  CHECK(r.code == cli::kExitIo);
}

TEST_CASE("live: flows, with filters, as JSON and as a table") {
  FakeServer fake;
  auto r = fake.run({"flows", "--src", "10.1.0.0/16", "--proto", "UDP,6", "--dport", "5061", "--link", "mpls",
                     "--rule", "voice", "--ip", "2001:db8::/32", "--last", "5", "-o", "json"});
  INFO(r.err);
  CHECK(r.code == cli::kExitOk);
  const auto& f = fake.agent.last_list.filter();
  CHECK(f.src(0) == "10.1.0.0/16");
  CHECK(f.ip(0) == "2001:db8::/32");
  CHECK(f.proto_size() == 2);
  CHECK(f.proto(0) == "udp");
  CHECK(f.proto(1) == "tcp");
  CHECK(f.dport(0) == 5061);
  CHECK(f.link(0) == "mpls");
  CHECK(f.rule(0) == "voice");
  CHECK(fake.agent.last_list.last() == 5);
  auto doc = json::parse(r.out);
  CHECK(doc["total"] == 10);
  CHECK(doc["flows"].size() == 4);
  CHECK(doc["flows"][1]["nat"] == "198.18.0.2:40000");
  CHECK(doc["flows"][2]["link"].is_null());
  CHECK_FALSE(doc["flows"][0].contains("nat"));

  r = fake.run({"flows"});
  CHECK(r.code == cli::kExitOk);
  std::ostringstream want;
  cli::render::flows_table(want, make_flows(), false);
  CHECK(r.out == want.str());
}

TEST_CASE("live: flows --watch streams one JSON object per line until the stream ends") {
  FakeServer fake;
  for (const auto& args : std::vector<std::vector<std::string>>{{"flows", "--watch", "-o", "json", "--dport", "5061"},
                                                                {"flows", "-w", "--interval", "250ms"}}) {
    auto r = fake.run(args);  // not a terminal: JSON lines whatever -o says
    INFO(r.err);
    CHECK(r.code == cli::kExitOk);
    std::istringstream lines(r.out);
    std::vector<json> events;
    for (std::string line; std::getline(lines, line);) events.push_back(json::parse(line));
    REQUIRE(events.size() == 3);
    CHECK(events[0]["kind"] == "added");
    CHECK(events[0]["time"] == "2026-11-21T10:00:00.000Z");
    CHECK(events[0]["flow"]["dport"] == 5061);
    CHECK(events[1]["kind"] == "expired");
    CHECK(events[2]["kind"] == "counters");
    CHECK(events[2]["links"].size() == 3);
    CHECK_FALSE(events[2].contains("flow"));
  }
  CHECK(fake.agent.last_watch.interval_ms() == 250);
  CHECK(fake.agent.last_watch.filter().dport_size() == 0);
}

TEST_CASE("live: events, as a table, as JSON and watched") {
  FakeServer fake;
  auto r = fake.run({"events", "-o", "json"});
  INFO(r.err);
  CHECK(r.code == cli::kExitOk);
  auto doc = json::parse(r.out);
  REQUIRE(doc["events"].size() == 3);
  CHECK(doc["events"][0] == json{{"time", "2026-11-21T08:57:57.000Z"}, {"link", "lte"}, {"from", "up"},
                                 {"to", "down"}, {"reason", "carrier down"}, {"latency_ms", 0.0},
                                 {"jitter_ms", 0.0}, {"loss_pct", 100.0}});
  r = fake.run({"events"});
  CHECK(r.code == cli::kExitOk);
  CHECK(r.out.rfind("TIME", 0) == 0);
  CHECK(contains(r.out, "broadband  up -> degraded"));
  fake.agent.events = false;
  r = fake.run({"events"});
  CHECK(r.code == cli::kExitOk);
  CHECK(r.out.empty());
  CHECK(contains(r.err, "no link events yet"));

  // Not a terminal: JSON lines whatever -o says, until the stream ends (here
  // as when clovisd stops: UNAVAILABLE, exit 4).
  for (const auto& args : std::vector<std::vector<std::string>>{{"events", "--watch", "-o", "json"},
                                                                {"events", "-w"}}) {
    r = fake.run(args);
    CHECK(r.code == cli::kExitUnavailable);
    CHECK(contains(r.err, "clovisd is stopping"));
    std::istringstream lines(r.out);
    std::vector<json> events;
    for (std::string line; std::getline(lines, line);) events.push_back(json::parse(line));
    REQUIRE(events.size() == 3);
    CHECK(events[1]["to"] == "degraded");
    CHECK(events[2]["reason"] == "3 probe rounds answered");
  }
  r = fake.run({"events", "--last", "3"});
  CHECK(r.code == cli::kExitUsage);
}

TEST_CASE("live: links, status, history, get mapping") {
  FakeServer fake;
  auto r = fake.run({"links", "-o", "json"});
  CHECK(r.code == cli::kExitOk);
  CHECK(json::parse(r.out) == json{{"links", cli::render::links_json(make_links())}});
  r = fake.run({"links"});
  CHECK(r.code == cli::kExitOk);
  CHECK(r.out.rfind("NAME       INTERFACE  MODE      STATE     SINCE", 0) == 0);
  CHECK(contains(r.out, "broadband  wan1       redirect  degraded"));

  r = fake.run({"status"});
  CHECK(r.code == cli::kExitOk);
  CHECK(contains(r.out, "clovisd     0.1.0, up 1m\nsocket      " + fake.path + "\ngeneration  8\n"));
  r = fake.run({"status", "-o", "json"});
  CHECK(json::parse(r.out)["generation"] == 8);

  r = fake.run({"history"});
  CHECK(r.code == cli::kExitOk);
  CHECK(contains(r.out, "wan.yaml  running\n"));
  r = fake.run({"history", "-o", "json"});
  CHECK(json::parse(r.out)["entries"][1]["applied"] == "2026-11-21T08:00:00.000Z");

  r = fake.run({"get", "mapping"});
  CHECK(r.code == cli::kExitOk);
  CHECK(r.out == "version: 1\nlinks: []\n");
  r = fake.run({"get", "mapping", "-o", "json"});
  CHECK(json::parse(r.out) == json{{"generation", 8}, {"mapping_yaml", "version: 1\nlinks: []\n"},
                                   {"applied", "2026-11-21T10:00:00.000Z"}});
  r = fake.run({"get"});
  CHECK(r.code == cli::kExitUsage);
}

TEST_CASE("live: rollback and confirm") {
  FakeServer fake;
  auto r = fake.run({"rollback", "7"});
  CHECK(r.code == cli::kExitOk);
  CHECK(fake.agent.last_rollback.generation() == 7);
  CHECK(r.out == "  -  rule  voice\nrolled back: generation 9 (was 8), 1 change in 0.0 ms\n");
  r = fake.run({"rollback", "--dry-run"});
  CHECK(fake.agent.last_rollback.generation() == 0);
  CHECK(contains(r.out, "dry run: 1 change (running generation 9); nothing was rolled back"));
  r = fake.run({"rollback", "99"});
  CHECK(r.code == cli::kExitInvalid);
  CHECK(r.err == "clovisctl rollback: no generation 99 in the history (kept: 7, 8)\n");

  r = fake.run({"confirm"});
  CHECK(r.code == cli::kExitOk);
  CHECK(r.out == "confirmed: generation 8 stays\n");
  r = fake.run({"confirm", "-o", "json"});
  CHECK(r.code == cli::kExitInvalid);
  CHECK(r.err == "clovisctl confirm: nothing to confirm: no apply --confirm is pending\n");
}

TEST_CASE("live: simulate renders the agent's decision with the offline renderer") {
  FakeServer fake;
  const std::vector<std::string> flow = {"--src", "10.1.0.7", "--dst", "192.0.2.200", "--proto", "udp",
                                         "--dport", "5061", "--dscp", "ef"};
  auto with = [&](std::vector<std::string> head, const std::vector<std::string>& tail) {
    head.insert(head.end(), tail.begin(), tail.end());
    return head;
  };
  const std::string example = test::source_path("examples/edge-site.yaml");
  auto offline_json = clovisctl(with({"simulate", "-f", example, "-o", "json"}, flow));
  auto offline_text = clovisctl(with({"simulate", "-f", example, "-o", "wide"}, flow));
  REQUIRE(offline_json.code == cli::kExitOk);
  fake.agent.decision_json = json::parse(offline_json.out).dump();

  auto live = fake.run(with({"simulate", "-o", "json"}, flow));
  CHECK(live.code == cli::kExitOk);
  CHECK(live.out == offline_json.out);
  CHECK(fake.agent.last_simulate.src() == "10.1.0.7");
  CHECK(fake.agent.last_simulate.proto() == "udp");
  CHECK(fake.agent.last_simulate.dscp() == "46");
  CHECK(fake.agent.last_simulate.host().empty());

  live = fake.run(with({"simulate", "-o", "wide"}, flow));
  CHECK(live.code == cli::kExitOk);
  // The same text, but for what only the file knows: where the rule is, and
  // the policy's settings (not in the stable JSON).
  auto lines = [](const std::string& text) {
    std::vector<std::string> v;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);)
      if (l.rfind("rule ", 0) != 0 && l.rfind("policy ", 0) != 0 && l.rfind("mapping ", 0) != 0) v.push_back(l);
    return v;
  };
  CHECK(lines(live.out) == lines(offline_text.out));
  CHECK(live.out.rfind("mapping  running, generation 8\n", 0) == 0);
  CHECK(contains(live.out, "rule     voice (priority 30)  line "));
  CHECK(contains(live.out, "policy   low-latency (on-link-down migrate, sticky flow, last-resort default)\n"));

  fake.agent.decision_json = "not json";
  live = fake.run(with({"simulate"}, flow));
  CHECK(live.code == cli::kExitInternal);
}
