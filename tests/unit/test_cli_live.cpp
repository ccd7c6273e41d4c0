// clovisctl against a live API: round trips through an in-process fake Agent
// service on a Unix socket, with the real client, channel and renderers.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include <doctest/doctest.h>
#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include "app.hpp"
#include "cli_fixtures.hpp"
#include "cli_run.hpp"
#include "client.hpp"
#include "clovis/rpc/wire.hpp"
#include "exit_codes.hpp"
#include "helpers.hpp"
#include "render/diff.hpp"
#include "render/events.hpp"
#include "render/flow_json.hpp"
#include "render/flows.hpp"
#include "render/links.hpp"

using namespace clovis;
using nlohmann::json;
using test::clovisctl;
using test::golden;
using test::Run;
using namespace test::cli_fixtures;

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
  int list_fail_after = -1;   // ListFlows fails after this many flows

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
      c->AddTrailingMetadata(rpc::kDiagnosticsTrailer, d.SerializeAsString());
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
  // The flows one per message, as a long listing comes in chunks; with
  // list_fail_after set, fails after that many.
  grpc::Status ListFlows(grpc::ServerContext*, const v1::ListFlowsRequest* req,
                         grpc::ServerWriter<v1::ListFlowsResponse>* w) override {
    last_list = *req;
    const auto flows = make_flows();
    for (int i = 0; i < flows.size(); ++i) {
      if (i == list_fail_after) return {grpc::StatusCode::UNAVAILABLE, "kernel: read clv_flows: Input/output error"};
      v1::ListFlowsResponse r;
      *r.add_flows() = flows[i];
      if (i + 1 == flows.size()) r.set_total(10);
      w->Write(r);
    }
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

  // `clovisctl apply wan.yaml`, the usage line, sends the same request.
  r = fake.run({"apply", file, "--confirm", "90s"});
  CHECK(r.code == cli::kExitOk);
  CHECK(fake.agent.last_apply.source() == file);
  CHECK(contains(fake.agent.last_apply.mapping_yaml(), "links:"));
  CHECK(contains(r.out, "applied: generation 8 (was 7), 5 changes in 3.2 ms\n"));

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
  CHECK(
      contains(r.err, path + ":5:5: error: unknown key 'gatway' [links[0].gatway]\n  hint: did you mean 'gateway'?\n"));
  CHECK(r.err.rfind(diags, 0) == 0);
  CHECK(contains(r.err, path + ": rejected by clovisd (1 error"));
  std::remove(path.c_str());

  const std::string refused = write_temp("refused.yaml", "# kernel-refuses\n");
  r = fake.run({"apply", "-f", refused});
  CHECK(r.code == cli::kExitUnavailable);
  CHECK(r.err ==
        "clovisctl apply: clovisd unavailable: the kernel refused the rule table update (ENOMEM); "
        "nothing changed\n");
  std::remove(refused.c_str());
  r = fake.run({"apply", "-f", "/nonexistent/wan.yaml"});
  CHECK(r.code == cli::kExitIo);
}

TEST_CASE("live: flows, with filters, as JSON and as a table") {
  FakeServer fake;
  auto r = fake.run({"flows", "--src", "10.1.0.0/16", "--proto", "UDP,6", "--dport", "5061", "--link", "mpls", "--rule",
                     "voice", "--ip", "2001:db8::/32", "--last", "5", "-o", "json"});
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
  CHECK(doc["flows"].size() == 5);
  CHECK(doc["flows"][4]["l7"]["headers"]["end-user"] == "minions");
  CHECK_FALSE(doc["flows"][0].contains("l7"));
  CHECK(doc["flows"][1]["nat"] == "198.18.0.2:40000");
  CHECK(doc["flows"][2]["link"].is_null());
  CHECK_FALSE(doc["flows"][0].contains("nat"));

  r = fake.run({"flows"});
  CHECK(r.code == cli::kExitOk);
  std::ostringstream want;
  cli::render::flows_table(want, make_flows(), false);
  CHECK(r.out == want.str());
}

TEST_CASE("live: flows in chunks make one listing, and a stream that fails midway is an error") {
  FakeServer fake;  // one flow per message, the total in the last
  auto r = fake.run({"flows", "-o", "json"});
  CHECK(r.code == cli::kExitOk);
  std::ostringstream want;
  cli::render::FlowsJsonWriter w(want);
  for (const auto& f : make_flows()) w.flow(f);
  w.finish(10);
  CHECK(r.out == want.str());
  r = fake.run({"flows", "-o", "wide"});
  CHECK(r.code == cli::kExitOk);
  std::ostringstream table;
  cli::render::flows_table(table, make_flows(), true);
  CHECK(r.out == table.str());

  fake.agent.list_fail_after = 2;
  for (const char* o : {"json", "table"}) {
    CAPTURE(o);
    r = fake.run({"flows", "-o", o});
    CHECK(r.code == cli::kExitUnavailable);
    CHECK(r.err == "clovisctl flows: clovisd unavailable: kernel: read clv_flows: Input/output error\n");
    CHECK(r.out.empty());  // nothing of an unfinished listing this small reached the output
  }
}

TEST_CASE("live: a stream reader gives up on a clovisd that stops sending") {
  grpc::ClientContext cc;
  const auto t0 = std::chrono::steady_clock::now();
  {
    cli::ReadWatchdog dog(cc, std::chrono::milliseconds(50));
    dog.waiting(true);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    CHECK(dog.fired());
  }
  {
    grpc::ClientContext quiet;
    cli::ReadWatchdog dog(quiet, std::chrono::milliseconds(50));
    for (int i = 0; i < 5; ++i) {  // each wait shorter than the limit
      dog.waiting(true);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      dog.waiting(false);
      std::this_thread::sleep_for(std::chrono::milliseconds(60));  // not waiting: not counted
    }
    CHECK_FALSE(dog.fired());
  }
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
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
  REQUIRE(doc["events"].size() == 4);
  CHECK(doc["events"][0] == json{{"time", "2026-11-21T08:57:57.000Z"},
                                 {"kind", "link"},
                                 {"link", "lte"},
                                 {"from", "up"},
                                 {"to", "down"},
                                 {"reason", "carrier down"},
                                 {"latency_ms", 0.0},
                                 {"jitter_ms", 0.0},
                                 {"loss_pct", 100.0}});
  r = fake.run({"events"});
  CHECK(r.code == cli::kExitOk);
  CHECK(r.out.rfind("TIME", 0) == 0);
  CHECK(contains(r.out, "broadband  up -> degraded"));
  CHECK(contains(r.out, "broadband  flows leave"));  // a steering event
  fake.agent.events = false;
  r = fake.run({"events"});
  CHECK(r.code == cli::kExitOk);
  CHECK(r.out.empty());
  CHECK(contains(r.err, "no link events yet"));

  // Not a terminal: JSON lines whatever -o says, until the stream ends (here
  // as when clovisd stops: UNAVAILABLE, exit 4).
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"events", "--watch", "-o", "json"}, {"events", "-w"}}) {
    r = fake.run(args);
    CHECK(r.code == cli::kExitUnavailable);
    CHECK(contains(r.err, "clovisd is stopping"));
    std::istringstream lines(r.out);
    std::vector<json> events;
    for (std::string line; std::getline(lines, line);) events.push_back(json::parse(line));
    REQUIRE(events.size() == 4);
    CHECK(events[1]["to"] == "degraded");
    CHECK(events[2]["reason"] == "3 probe rounds answered");
    CHECK(events[3]["kind"] == "steering");
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

  r = fake.run({"counters"});
  CHECK(r.code == cli::kExitOk);
  CHECK(r.out.rfind("LINK       INTERFACE  TX PKTS  TX BYTES", 0) == 0);
  r = fake.run({"counters", "-o", "json"});
  CHECK(r.code == cli::kExitOk);
  CHECK(json::parse(r.out)["links"][0]["tx_bytes"] == 1536000000ull);
  CHECK(fake.run({"counters", "-o", "wide"}).code == cli::kExitUsage);

  r = fake.run({"history"});
  CHECK(r.code == cli::kExitOk);
  CHECK(contains(r.out, "wan.yaml  running\n"));
  r = fake.run({"history", "-o", "json"});
  CHECK(json::parse(r.out)["entries"][1]["applied"] == "2026-11-21T08:00:00.000Z");

  r = fake.run({"get", "mapping"});
  CHECK(r.code == cli::kExitOk);
  CHECK(r.out == "version: 1\nlinks: []\n");
  r = fake.run({"get", "mapping", "-o", "json"});
  CHECK(json::parse(r.out) ==
        json{{"generation", 8}, {"mapping_yaml", "version: 1\nlinks: []\n"}, {"applied", "2026-11-21T10:00:00.000Z"}});
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
  const std::vector<std::string> flow = {"--src", "10.1.0.7", "--dst", "192.0.2.200", "--proto",
                                         "udp",   "--dport",  "5061",  "--dscp",      "ef"};
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
