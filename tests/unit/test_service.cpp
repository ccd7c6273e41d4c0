// The agent API end to end without root: a real gRPC server on a temporary
// Unix socket, backed by the agent over fakes of the kernel and the host, and
// a real client stub. Flow listing and watching: test_service_flows.cpp.
#include <map>
#include <set>

#include "service_api.hpp"

using namespace clovis;
using namespace clovis::service_test;
using test::make_flow;

TEST_CASE("Apply returns the new generation and what changed") {
  Api api;
  auto first = api.apply_ok(kMapping);
  CHECK(first.generation() == 1);
  CHECK(first.previous_generation() == 0);
  CHECK_FALSE(first.dry_run());
  CHECK(first.diff_size() == 3 + 2 + 1);
  CHECK(find(first, "link", "mpls")->change() == "added");
  REQUIRE(first.notes_size() == 1);  // wwan0 does not exist
  CHECK(first.notes(0).find("interface wwan0 does not exist") != std::string::npos);
  CHECK(first.confirm_deadline_s() == 0);

  auto second = api.apply_ok(edit(kMapping, "priority: 20", "priority: 25"));
  CHECK(second.generation() == 2);
  CHECK(second.previous_generation() == 1);
  REQUIRE(second.diff_size() == 1);
  CHECK(second.diff(0).kind() == "rule");
  CHECK(second.diff(0).name() == "voice");
  CHECK(second.diff(0).change() == "changed");
  CHECK(second.diff(0).detail() == "priority 20 -> 25");
  CHECK(api.dp.applies() == 2);
}

TEST_CASE("Apply sends as many changes as asked and counts them all") {
  Api api;
  auto count = [](const v1::ApplyResponse& r, const std::string& kind) {
    for (const auto& c : r.diff_counts())
      if (c.kind() == kind) return std::tuple{c.added(), c.removed(), c.changed()};
    return std::tuple{0u, 0u, 0u};
  };
  v1::ApplyRequest req;
  req.set_mapping_yaml(kMapping);
  req.set_max_diff_items(2);
  v1::ApplyResponse first;
  REQUIRE(api.call(&v1::Agent::Stub::Apply, req, &first).ok());
  REQUIRE(first.diff_size() == 2);
  CHECK(first.diff(0).kind() == "link");
  CHECK(first.diff_total() == 6);
  CHECK(count(first, "link") == std::tuple{3u, 0u, 0u});
  CHECK(count(first, "rule") == std::tuple{2u, 0u, 0u});
  CHECK(count(first, "default") == std::tuple{1u, 0u, 0u});
  REQUIRE(first.diff_counts_size() == 3);
  CHECK(first.diff_counts(0).kind() == "link");  // kinds in diff order

  // 0: only the counts; unset: every change.
  req.set_mapping_yaml(edit(kMapping, "priority: 20", "priority: 25"));
  req.set_max_diff_items(0);
  req.set_dry_run(true);
  v1::ApplyResponse none;
  REQUIRE(api.call(&v1::Agent::Stub::Apply, req, &none).ok());
  CHECK(none.diff_size() == 0);
  CHECK(none.diff_total() == 1);
  CHECK(count(none, "rule") == std::tuple{0u, 0u, 1u});
  req.clear_max_diff_items();
  v1::ApplyResponse all;
  REQUIRE(api.call(&v1::Agent::Stub::Apply, req, &all).ok());
  CHECK(all.diff_size() == 1);
  CHECK(all.diff_total() == 1);

  v1::RollbackRequest rb;
  rb.set_dry_run(true);
  rb.set_max_diff_items(0);
  api.apply_ok(edit(kMapping, "priority: 20", "priority: 25"));
  v1::ApplyResponse back;
  REQUIRE(api.call(&v1::Agent::Stub::Rollback, rb, &back).ok());
  CHECK(back.diff_size() == 0);
  CHECK(back.diff_total() == 1);
}

TEST_CASE("a rejected mapping: INVALID_ARGUMENT with located diagnostics, nothing changes") {
  Api api;
  api.apply_ok(kMapping);
  v1::ApplyResponse r;
  grpc::ClientContext cc;
  auto st = api.apply(edit(kMapping, "gateway: 192.0.2.1", "gatway: 192.0.2.1"), &r, false, 0, &cc);
  REQUIRE(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(st.error_message().find("wan.yaml:3:") == 0);
  CHECK(st.error_message().find("unknown key 'gatway'") != std::string::npos);
  const auto& trailers = cc.GetServerTrailingMetadata();
  auto it = trailers.find(rpc::kDiagnosticsTrailer);
  REQUIRE(it != trailers.end());
  v1::Diagnostics diags;
  REQUIRE(diags.ParseFromArray(it->second.data(), static_cast<int>(it->second.size())));
  REQUIRE(diags.items_size() >= 1);
  const auto& d = diags.items(0);
  CHECK(d.severity() == v1::SEVERITY_ERROR);
  CHECK(d.file() == "wan.yaml");
  CHECK(d.line() == 3);
  CHECK(d.col() > 0);
  CHECK(d.message() == "unknown key 'gatway'");
  CHECK(api.dp.applies() == 1);
  CHECK(api.mapping().generation() == 1);
  CHECK(api.mapping().mapping_yaml() == kMapping);
}

TEST_CASE("hundreds of errors still fit gRPC's metadata limit") {
  Api api;
  // Rules, not links: a list of 400 links is refused by its length alone.
  std::string text = "version: 1\nlinks:\n  - {name: a, interface: wan0, gateway: 192.0.2.1}\nrules:\n";
  for (int i = 0; i < 400; ++i)
    text += "  - {name: r" + std::to_string(i) + ", priority: " + std::to_string(i) + ", link: a, bogus: 1}\n";
  v1::ApplyResponse r;
  grpc::ClientContext cc;
  auto st = api.apply(text, &r, false, 0, &cc);
  REQUIRE(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(st.error_message().size() < 2000);
  auto it = cc.GetServerTrailingMetadata().find(rpc::kDiagnosticsTrailer);
  REQUIRE(it != cc.GetServerTrailingMetadata().end());
  v1::Diagnostics diags;
  REQUIRE(diags.ParseFromArray(it->second.data(), static_cast<int>(it->second.size())));
  CHECK(diags.items_size() > 5);
  CHECK(diags.items(diags.items_size() - 1).message().find("more diagnostics not shown") != std::string::npos);
}

TEST_CASE("a dry run diffs and touches nothing") {
  Api api;
  api.apply_ok(kMapping);
  v1::ApplyResponse r;
  auto st = api.apply(edit(kMapping, "link: bb}", "link: mpls}"), &r, true);
  REQUIRE(st.ok());
  CHECK(r.dry_run());
  CHECK(r.generation() == 1);  // the running one
  REQUIRE(r.diff_size() == 1);
  CHECK(r.diff(0).detail() == "target link bb -> link mpls");
  CHECK(api.dp.applies() == 1);
  CHECK(api.mapping().mapping_yaml() == kMapping);
  v1::HistoryResponse h;
  REQUIRE(api.call(&v1::Agent::Stub::History, v1::HistoryRequest(), &h).ok());
  CHECK(h.entries_size() == 1);
  CHECK_FALSE(std::filesystem::exists(api.state_dir() + "/history/2.yaml"));
  // A dry run with a confirmation makes no sense: refused.
  CHECK(api.apply(kMapping, &r, true, 10).error_code() == grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_CASE("GetMapping, History and Rollback") {
  Api api;
  CHECK(api.mapping().generation() == 0);  // nothing yet
  const std::string t2 = edit(kMapping, "priority: 20", "priority: 21");
  const std::string t3 = edit(kMapping, "dport: 443", "dport: 8443");
  api.apply_ok(kMapping);
  api.apply_ok(t2);
  api.apply_ok(t3);
  auto m = api.mapping();
  CHECK(m.generation() == 3);
  CHECK(m.mapping_yaml() == t3);
  CHECK(m.applied_unix_ms() > 0);

  v1::HistoryResponse h;
  REQUIRE(api.call(&v1::Agent::Stub::History, v1::HistoryRequest(), &h).ok());
  REQUIRE(h.entries_size() == 3);
  CHECK(h.entries(0).generation() == 3);  // newest first
  CHECK(h.entries(0).running());
  CHECK_FALSE(h.entries(1).running());
  CHECK(h.entries(2).mapping_yaml() == kMapping);
  CHECK(h.entries(2).source() == "wan.yaml");

  v1::RollbackRequest rb;
  rb.set_generation(1);
  v1::ApplyResponse r;
  REQUIRE(api.call(&v1::Agent::Stub::Rollback, rb, &r).ok());
  CHECK(r.generation() == 4);  // a rollback is a new apply
  CHECK(r.previous_generation() == 3);
  CHECK(find(r, "rule", "web")->detail() == "match.dport 8443 -> 443");
  CHECK(api.mapping().mapping_yaml() == kMapping);

  rb.set_generation(0);  // the one before the running one: 3
  REQUIRE(api.call(&v1::Agent::Stub::Rollback, rb, &r).ok());
  CHECK(api.mapping().mapping_yaml() == t3);
  REQUIRE(api.call(&v1::Agent::Stub::History, v1::HistoryRequest(), &h).ok());
  CHECK(h.entries(0).source() == "rollback to generation 3 (wan.yaml)");

  rb.set_generation(99);
  auto st = api.call(&v1::Agent::Stub::Rollback, rb, &r);
  CHECK(st.error_code() == grpc::StatusCode::NOT_FOUND);
  CHECK(st.error_message().find("generation 99 is not in the history") == 0);

  // The history survives a restart, and keeps 10 entries.
  api.stop();
  api.start();
  REQUIRE(api.call(&v1::Agent::Stub::History, v1::HistoryRequest(), &h).ok());
  // The restart re-applied the mapping as the generation it was: no entry.
  REQUIRE(h.entries_size() == 5);
  CHECK(h.entries(0).generation() == 5);
  CHECK(h.entries(0).running());
  CHECK(h.entries(0).mapping_yaml() == t3);
  for (int i = 0; i < 8; ++i) api.apply_ok(edit(kMapping, "priority: 20", "priority: " + std::to_string(30 + i)));
  REQUIRE(api.call(&v1::Agent::Stub::History, v1::HistoryRequest(), &h).ok());
  CHECK(h.entries_size() == 10);
  CHECK(h.entries(9).generation() == 4);
  CHECK_FALSE(std::filesystem::exists(api.state_dir() + "/history/3.yaml"));
}

TEST_CASE("commit-confirm: unconfirmed applies revert, Confirm keeps them") {
  Api api;
  v1::ApplyResponse r;
  // Nothing runs yet, so there would be nothing to revert to.
  CHECK(api.apply(kMapping, &r, false, 5).error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  api.apply_ok(kMapping);
  const std::string t2 = edit(kMapping, "priority: 20", "priority: 22");
  REQUIRE(api.apply(t2, &r, false, 1).ok());
  CHECK(r.generation() == 2);
  CHECK(r.confirm_deadline_s() == 1);
  v1::StatusResponse s;
  REQUIRE(api.call(&v1::Agent::Stub::Status, v1::StatusRequest(), &s).ok());
  CHECK(s.confirm_deadline_s() == 1);
  // A second try replaces the first but keeps what runs before both.
  REQUIRE(api.apply(edit(kMapping, "priority: 20", "priority: 23"), &r, false, 1).ok());
  CHECK(r.generation() == 3);
  CHECK_FALSE(api.agent->check_confirm(agent::now_unix_ms()));  // not yet due
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  auto reverted = api.agent->check_confirm(agent::now_unix_ms());  // what the resident loop does
  REQUIRE(reverted);
  REQUIRE(*reverted);
  CHECK(api.mapping().mapping_yaml() == kMapping);
  CHECK(api.mapping().generation() == 4);
  v1::ConfirmResponse c;
  auto st = api.call(&v1::Agent::Stub::Confirm, v1::ConfirmRequest(), &c);
  CHECK(st.error_code() == grpc::StatusCode::FAILED_PRECONDITION);

  REQUIRE(api.apply(t2, &r, false, 1).ok());
  REQUIRE(api.call(&v1::Agent::Stub::Confirm, v1::ConfirmRequest(), &c).ok());
  CHECK(c.generation() == 5);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  CHECK_FALSE(api.agent->check_confirm(agent::now_unix_ms()));
  CHECK(api.mapping().mapping_yaml() == t2);

  // A pending confirmation survives a restart, deadline and fallback.
  REQUIRE(api.apply(kMapping, &r, false, 1).ok());
  api.stop();
  api.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  REQUIRE(api.agent->check_confirm(agent::now_unix_ms()));
  CHECK(api.mapping().mapping_yaml() == t2);
}

TEST_CASE("Simulate is the local classifier's decision with the live link state") {
  Api api;
  v1::SimulateRequest req;
  req.set_src("10.1.0.5");
  req.set_dst("203.0.113.10");
  req.set_proto("tcp");
  req.set_dport(443);
  v1::SimulateResponse resp;
  CHECK(api.call(&v1::Agent::Stub::Simulate, req, &resp).error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  api.apply_ok(kMapping);
  for (bool bb_down : {false, true}) {
    auto c = core::check_mapping(kMapping);
    REQUIRE(c.ok());
    clv_link_state st = api.dp.state();
    if (bb_down) {
      st.up &= ~(1ull << c.compiled->link_slot("bb"));
      REQUIRE(api.dp.set_link_state(st));
    }
    REQUIRE(api.call(&v1::Agent::Stub::Simulate, req, &resp).ok());
    core::FlowQuery q;
    q.tuple.family = CLV_AF_INET;
    q.tuple.src[0] = core::IpAddr::parse("10.1.0.5")->words()[0];
    q.tuple.dst[0] = core::IpAddr::parse("203.0.113.10")->words()[0];
    q.tuple.proto = 6;
    q.tuple.dport = 443;
    const core::Classifier cls(*c.compiled);
    auto d = cls.decide(q, st);
    auto expected = core::decision_json(core::DecisionView{*c.compiled, q, d, ""});
    CHECK(nlohmann::json::parse(resp.decision_json()) == expected);
    CHECK(resp.generation() == 1);
    if (!bb_down) CHECK(expected["link"]["name"] == "bb");
    else CHECK((expected["link"].is_null() || expected["link"]["name"] != "bb"));
  }
  req.set_src("10.1.0.500");
  auto st = api.call(&v1::Agent::Stub::Simulate, req, &resp);
  CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(st.error_message() == "src '10.1.0.500' is not an IP address");
}

TEST_CASE("Telemetry: a request's parse makes the heap's trim due once, a second later") {
  test::FakeDataplane dp;
  agent::Telemetry t(dp);
  CHECK_FALSE(t.trim_due());  // nothing parsed
  t.parsed();
  CHECK_FALSE(t.trim_due());  // not at once: the next apply would fault the pages in again
  std::this_thread::sleep_for(std::chrono::milliseconds(1050));
  CHECK(t.trim_due());
  CHECK_FALSE(t.trim_due());  // once
}

TEST_CASE("Status and ListLinks") {
  Api api;
  api.apply_ok(kMapping);
  const auto& c = *api.agent->running();
  api.dp.set_flows(seeded_flows(c));
  api.dp.set_counter(CLV_STAT_NEW_FLOW, 42);
  agent::LinkCounters lc{};
  lc[static_cast<size_t>(c.link_slot("bb"))].tx_bytes = 1000;
  api.dp.set_link_counters(lc);
  api.telemetry.sample_links();
  lc[static_cast<size_t>(c.link_slot("bb"))].tx_bytes = 5000;
  api.dp.set_link_counters(lc);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  api.telemetry.sample_links();

  v1::StatusResponse s;
  REQUIRE(api.call(&v1::Agent::Stub::Status, v1::StatusRequest(), &s).ok());
  CHECK(s.version() == CLOVIS_VERSION);
  CHECK(s.generation() == 1);
  CHECK(s.uptime_s() >= 0);
  CHECK(s.counters().at("new_flow") == 42);
  CHECK(s.counters().size() == CLV_STAT_MAX);
  REQUIRE(s.maps_size() == 1);
  CHECK(s.maps(0).entries() == 3);
  // Every state's count, zeros too, under core::ct_state_key's names.
  CHECK(s.flow_table().expired().size() == CLV_CT_STATES);
  CHECK(s.flow_table().expired().at("established") == 0);
  CHECK(s.counters().at("wrong_lan") == 0);
  CHECK(s.pin_dir() == "/pins");
  CHECK(s.links_size() == 3);

  // What the dataplane reports, passed through as it is.
  api.dp.set_map_fill({{"clv_flows", 5, 100}, {"clv_flows_new", 7, 50}, {"clv_nat", 1, 100}, {"clv_nat_new", 2, 50}});
  agent::FlowTableTotals totals;
  totals.expired[CLV_CT_NEW] = 11;
  totals.expired[CLV_CT_ESTABLISHED] = 22;
  totals.expired[CLV_CT_TIME_WAIT] = 33;
  totals.evicted_unreplied = 44;
  api.dp.set_flow_table_totals(totals);
  api.dp.set_counter(CLV_STAT_NAT_PORT_BUSY, 5);
  api.dp.set_counter(CLV_STAT_WRONG_LAN, 6);
  s.Clear();
  REQUIRE(api.call(&v1::Agent::Stub::Status, v1::StatusRequest(), &s).ok());
  REQUIRE(s.maps_size() == 4);
  CHECK(s.maps(1).name() == "clv_flows_new");
  CHECK(s.maps(1).entries() == 7);
  CHECK(s.maps(1).capacity() == 50);
  CHECK(s.flow_table().expired().at("new") == 11);
  CHECK(s.flow_table().expired().at("established") == 22);
  CHECK(s.flow_table().expired().at("time-wait") == 33);
  CHECK(s.flow_table().expired().at("close") == 0);
  CHECK(s.flow_table().evicted_unreplied() == 44);
  CHECK(s.counters().at("nat_port_busy") == 5);
  CHECK(s.counters().at("wrong_lan") == 6);

  v1::ListLinksResponse l;
  REQUIRE(api.call(&v1::Agent::Stub::ListLinks, v1::ListLinksRequest(), &l).ok());
  REQUIRE(l.links_size() == 3);
  std::map<std::string, v1::Link> by_name;
  for (const auto& x : l.links()) by_name[x.name()] = x;
  CHECK(by_name["bb"].state() == "up");
  CHECK(by_name["bb"].mode() == "redirect");
  CHECK(by_name["bb"].interface() == "wan1");
  CHECK(by_name["bb"].tx_bytes() == 5000);
  // 4000 B between two samples at least 0.2 s apart.
  CHECK(by_name["bb"].tx_bps() > 400);
  CHECK(by_name["bb"].tx_bps() <= 20000 * 1.01);
  CHECK(by_name["bb"].flows() == 1);
  CHECK(by_name["lte"].state() == "down");  // wwan0 does not exist
  const int64_t since = by_name["mpls"].since_unix_ms();
  CHECK(since > 0);
  // A state change moves `since`.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  api.host.set_interface("wan0", {4, false, core::IpAddr::parse("192.0.2.2"), std::nullopt});
  REQUIRE(api.agent->refresh_link_state());
  REQUIRE(api.call(&v1::Agent::Stub::ListLinks, v1::ListLinksRequest(), &l).ok());
  for (const auto& x : l.links())
    if (x.name() == "mpls") {
      CHECK(x.state() == "down");
      CHECK(x.since_unix_ms() > since);
    }
}

TEST_CASE("a kernel failure is UNAVAILABLE and changes nothing") {
  Api api;
  api.apply_ok(kMapping);
  api.dp.fail_next();
  v1::ApplyResponse r;
  auto st = api.apply(edit(kMapping, "priority: 20", "priority: 22"), &r);
  CHECK(st.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK(st.error_message() == "kernel: clv_rules: map update failed; the running rule set is unchanged");
  CHECK(api.mapping().generation() == 1);
}

TEST_CASE("one server per socket") {
  Api api;
  auto second = agent::service::ApiServer::start({api.socket(), ""}, *api.service);
  REQUIRE_FALSE(second);
  CHECK(second.error().what().find("another clovisd (pid ") != std::string::npos);
  v1::GetMappingResponse m;
  CHECK(api.call(&v1::Agent::Stub::GetMapping, v1::GetMappingRequest(), &m).ok());  // the first one still serves
  struct stat st {};
  REQUIRE(::stat(api.socket().c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0660);
}

TEST_CASE("links carry the checker's reason, quality and transitions") {
  Api api;
  api.apply_ok(kMapping);
  const int bb = api.agent->running()->link_slot("bb");
  // The checker's verdicts, as the daemon hands them to the agent after a
  // probe round; one for a slot the mapping does not use is ignored.
  agent::LinkVerdict v{bb, "bb", agent::LinkState::kDown, "3 probe rounds failed", {23.5, 1.25, 40, true}, 2, 0};
  api.agent->set_verdicts({v, {99, "gone", agent::LinkState::kUp, "no such slot", {}, 0, 0}});
  v1::ListLinksResponse l;
  REQUIRE(api.call(&v1::Agent::Stub::ListLinks, v1::ListLinksRequest(), &l).ok());
  REQUIRE(l.links_size() == 3);
  for (const auto& x : l.links()) {
    CAPTURE(x.name());
    if (x.name() == "bb") {
      CHECK(x.reason() == "3 probe rounds failed");
      CHECK(x.latency_ms() == 23.5);
      CHECK(x.jitter_ms() == 1.25);
      CHECK(x.loss_pct() == 40);
      CHECK(x.measured());
      CHECK(x.transitions() == 2);
    } else if (x.name() == "lte") {
      // The host's reason comes before the checker's: wwan0 does not exist.
      CHECK(x.reason() == "interface wwan0 does not exist");
      CHECK_FALSE(x.measured());
    } else {
      CHECK(x.reason().empty());  // no verdict from the checker: no quality
      CHECK_FALSE(x.measured());
    }
  }
  v1::StatusResponse s;
  REQUIRE(api.call(&v1::Agent::Stub::Status, v1::StatusRequest(), &s).ok());
  bool found = false;
  for (const auto& x : s.links())
    if (x.name() == "bb") found = x.reason() == "3 probe rounds failed" && x.transitions() == 2;
  CHECK(found);
}

namespace {

agent::LinkState state(const std::string& s) {
  return s == "up" ? agent::LinkState::kUp : s == "degraded" ? agent::LinkState::kDegraded : agent::LinkState::kDown;
}

agent::LinkChange link_event(int64_t t, const char* link, const char* from, const char* to, const char* why) {
  return {t,
          0,
          link,
          state(from),
          state(to),
          why,
          agent::LinkChange::Source::kHealth,
          agent::Quality{12.5, 0.5, t % 2 ? 100.0 : 0.0, true},
          {}};
}

}  // namespace

TEST_CASE("ListEvents: the agent's link events, oldest first") {
  Api api;
  api.apply_ok(kMapping);
  v1::ListEventsResponse r;
  REQUIRE(api.call(&v1::Agent::Stub::ListEvents, v1::ListEventsRequest(), &r).ok());
  CHECK(r.events_size() == 0);
  const uint64_t all = 7;
  auto down = link_event(1001, "bb", "up", "down", "3 probe rounds failed");
  auto up = link_event(2000, "bb", "down", "up", "3 probe rounds answered");
  REQUIRE(api.agent->set_health(test::verdicts(all & ~2ull, 0, all), &down));
  REQUIRE(api.agent->set_health(test::verdicts(all, 0, all), &up));
  REQUIRE(api.call(&v1::Agent::Stub::ListEvents, v1::ListEventsRequest(), &r).ok());
  REQUIRE(r.events_size() == 2);
  CHECK(r.events(0).time_unix_ms() == 1001);
  CHECK(r.events(0).link() == "bb");
  CHECK(r.events(0).from() == "up");
  CHECK(r.events(0).to() == "down");
  CHECK(r.events(0).reason() == "3 probe rounds failed");
  CHECK(r.events(0).latency_ms() == 12.5);
  CHECK(r.events(0).jitter_ms() == 0.5);
  CHECK(r.events(0).loss_pct() == 100);
  CHECK(r.events(1).to() == "up");
  CHECK(r.events(1).loss_pct() == 0);
}

TEST_CASE("WatchEvents streams the events after it started, until cancelled") {
  Api api;
  api.apply_ok(kMapping);
  const uint64_t all = 7;
  auto old = link_event(1000, "lte", "up", "down", "carrier lost");
  REQUIRE(api.agent->set_health(test::verdicts(all, 0, all), &old));
  grpc::ClientContext cc;
  auto reader = api.stub->WatchEvents(&cc, v1::WatchEventsRequest());
  reader->WaitForInitialMetadata();  // the watch is on
  auto a = link_event(2001, "bb", "up", "degraded", "loss 40% over 20%");
  auto b = link_event(2002, "bb", "degraded", "down", "3 probe rounds failed");
  REQUIRE(api.agent->set_health(test::verdicts(all, 2, all), &a));
  REQUIRE(api.agent->set_health(test::verdicts(all & ~2ull, 0, all), &b));  // a burst: both arrive
  v1::LinkEventMsg ev;
  REQUIRE(reader->Read(&ev));
  CHECK(ev.time_unix_ms() == 2001);  // not the one from before the watch
  CHECK(ev.to() == "degraded");
  REQUIRE(reader->Read(&ev));
  CHECK(ev.time_unix_ms() == 2002);
  CHECK(ev.reason() == "3 probe rounds failed");
  auto c = link_event(3000, "bb", "down", "up", "3 probe rounds answered");
  REQUIRE(api.agent->set_health(test::verdicts(all, 0, all), &c));
  REQUIRE(reader->Read(&ev));
  CHECK(ev.to() == "up");
  const auto t0 = std::chrono::steady_clock::now();
  cc.TryCancel();
  while (reader->Read(&ev)) {
  }
  CHECK(reader->Finish().error_code() == grpc::StatusCode::CANCELLED);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(1));
}

TEST_CASE("a stopping server ends WatchEvents") {
  Api api;
  grpc::ClientContext cc;
  auto reader = api.stub->WatchEvents(&cc, v1::WatchEventsRequest());
  reader->WaitForInitialMetadata();
  const auto t0 = std::chrono::steady_clock::now();
  api.server->shutdown();
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(1));
  v1::LinkEventMsg ev;
  while (reader->Read(&ev)) {
  }
  CHECK(reader->Finish().error_code() == grpc::StatusCode::UNAVAILABLE);
}

TEST_CASE(
    "Status: each link's drops by reason, its flows and NAT bindings as expiry counted them, migrations by name") {
  Api api;
  api.apply_ok(kMapping);
  const auto& c = *api.agent->running();
  const int bb = c.link_slot("bb"), lte = c.link_slot("lte"), mpls = c.link_slot("mpls");
  api.dp.set_link_drop(bb, CLV_LINK_DROP_NAT_REFUSED, 9);
  api.dp.set_link_drop(lte, CLV_LINK_DROP_TOO_BIG, 4);
  api.dp.set_migrations(lte, bb, 12);
  api.dp.set_migrations(lte, mpls, 3);
  api.dp.set_migrations(60, mpls, 2);  // from a slot no link holds now
  agent::FlowTableTotals totals;
  totals.link_flows[static_cast<size_t>(bb)] = 40;
  totals.link_nat_bindings[static_cast<size_t>(bb)] = 31;
  totals.links_counted_ns = 1;
  api.dp.set_flow_table_totals(totals);
  v1::StatusResponse s;
  REQUIRE(api.call(&v1::Agent::Stub::Status, v1::StatusRequest(), &s).ok());
  std::map<std::string, const v1::Link*> by_name;
  for (const auto& l : s.links()) by_name[l.name()] = &l;
  REQUIRE(by_name.size() == 3);
  const v1::Link& b = *by_name["bb"];
  CHECK(b.drops().size() == CLV_LINK_DROP_REASONS);  // every reason, zeros too
  CHECK(b.drops().at("nat_refused") == 9);
  CHECK(b.drops().at("too_big") == 0);
  CHECK(by_name["lte"]->drops().at("too_big") == 4);
  CHECK(by_name["mpls"]->drops().at("link_down") == 0);
  CHECK(b.active_flows() == 40);
  CHECK(b.nat_bindings() == 31);
  CHECK(by_name["lte"]->active_flows() == 0);
  std::set<std::string> moved;
  for (const auto& m : s.migrations()) {
    CHECK(m.reason() == "link_down");
    moved.insert(m.from() + ">" + m.to() + "=" + std::to_string(m.flows()));
  }
  CHECK(moved == std::set<std::string>{"lte>bb=12", "lte>mpls=3", "slot 60>mpls=2"});
}
