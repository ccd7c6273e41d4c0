// The Prometheus collector over fake sources: names, types, labels and
// values of the families it builds, and that a scrape never reads the flow
// table.
#include <doctest/doctest.h>

#include <sstream>

#include <prometheus/text_serializer.h>

#include "fakes.hpp"
#include "metrics/collector.hpp"
#include "metrics/exporter.hpp"
#include "service/authz_service.hpp"
#include "telemetry/counter_names.hpp"

using namespace clovis;
using agent::metrics::Collector;
using agent::metrics::Events;
using prometheus::MetricFamily;
using prometheus::MetricType;

namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;

const MetricFamily* family(const std::vector<MetricFamily>& fams, const std::string& name) {
  for (const auto& f : fams)
    if (f.name == name) return &f;
  return nullptr;
}

// The series of `name` with exactly these labels; nullptr when absent.
const prometheus::ClientMetric* series(const std::vector<MetricFamily>& fams, const std::string& name,
                                       const Labels& labels) {
  const MetricFamily* f = family(fams, name);
  if (!f) return nullptr;
  for (const auto& m : f->metric) {
    if (m.label.size() != labels.size()) continue;
    bool same = true;
    for (const auto& [k, v] : labels)
      same = same &&
             std::any_of(m.label.begin(), m.label.end(), [&](const auto& l) { return l.name == k && l.value == v; });
    if (same) return &m;
  }
  return nullptr;
}

double value(const std::vector<MetricFamily>& fams, const std::string& name, const Labels& labels = {}) {
  const auto* m = series(fams, name, labels);
  REQUIRE_MESSAGE(m, "no series " << name);
  return family(fams, name)->type == MetricType::Counter ? m->counter.value : m->gauge.value;
}

struct Site {
  test::FakeDataplane dp;
  Events events;
  std::vector<agent::metrics::LinkView> links = {{0, "fiber", "eth1", "route", "up", 1'700'000'000'000, true},
                                                 {3, "lte", "wwan0", "redirect", "down", 1'700'000'123'500, false}};
  bool links_fail = false;
  std::vector<agent::metrics::HealthView> health = {{0, 12.5, 1.5, 2.0, true, 4}, {3, 0, 0, 100, false, 7}};

  agent::metrics::Sources sources() {
    agent::metrics::Sources s;
    s.dp = &dp;
    s.table_fill = [this] { return dp.table_fill(); };
    s.version = "9.8.7";
    s.links = [this]() -> core::Result<std::vector<agent::metrics::LinkView>> {
      if (links_fail) return core::fail(core::ErrorCode::kIo, "Input/output error", "read clv_lstate", EIO);
      return links;
    };
    s.health = [this] { return health; };
    s.policies = [] { return std::vector<agent::metrics::PolicyView>{{"internet", {0, 3}}}; };
    s.control = [] { return agent::metrics::ControlView{8, 1'700'000'500'000, 1'700'000'600'000}; };
    return s;
  }
  std::vector<MetricFamily> scrape() { return Collector(sources(), events).Collect(); }
};

}  // namespace

TEST_CASE("metrics: per-link counters are the dataplane's, by link name, and a scrape reads no flow") {
  Site site;
  agent::LinkCounters lc{};
  lc[0] = {.tx_packets = 10,
           .tx_bytes = 15000,
           .rx_packets = 20,
           .rx_bytes = 30000,
           .new_flows = 3,
           .migrated = 0,
           .drops = 0,
           .pad = 0};
  lc[3] = {.tx_packets = 1,
           .tx_bytes = 60,
           .rx_packets = 2,
           .rx_bytes = 120,
           .new_flows = 1,
           .migrated = 5,
           .drops = 0,
           .pad = 0};
  site.dp.set_link_counters(lc);
  site.dp.set_migrations(0, 3, 5);  // fiber -> lte
  site.dp.set_migrations(3, 0, 2);
  site.dp.set_migrations(0, 7, 9);             // a slot no link of the mapping holds: left out
  site.dp.set_move(CLV_MOVE_SLA, 0, 3, 4);     // fiber -> lte: out of the policy's SLA
  site.dp.set_move(CLV_MOVE_RETURN, 3, 0, 1);  // and back
  site.dp.set_link_drop(0, CLV_LINK_DROP_TOO_BIG, 4);
  site.dp.set_link_drop(0, CLV_LINK_DROP_NAT_REFUSED, 6);
  site.dp.set_link_drop(3, CLV_LINK_DROP_LINK_DOWN, 1);
  agent::FlowTableTotals totals{};
  totals.link_flows[0] = 1200;
  totals.link_nat_bindings[0] = 800;
  totals.link_flows[3] = 7;
  totals.links_counted_ns = 1;
  site.dp.set_flow_table_totals(totals);
  std::vector<agent::FlowEntry> flows(5000);  // a scrape must not read them
  site.dp.set_flows(flows);
  const auto fams = site.scrape();
  CHECK(site.dp.scans() == 0);

  CHECK(family(fams, "clovis_link_transmit_bytes_total")->type == MetricType::Counter);
  CHECK(value(fams, "clovis_link_transmit_bytes_total", {{"link", "fiber"}}) == 15000);
  CHECK(value(fams, "clovis_link_transmit_packets_total", {{"link", "fiber"}}) == 10);
  CHECK(value(fams, "clovis_link_receive_bytes_total", {{"link", "lte"}}) == 120);
  CHECK(value(fams, "clovis_link_receive_packets_total", {{"link", "lte"}}) == 2);
  CHECK(value(fams, "clovis_link_flows_assigned_total", {{"link", "fiber"}}) == 3);
  CHECK(value(fams, "clovis_link_flows_migrated_total", {{"from", "fiber"}, {"to", "lte"}, {"reason", "link_down"}}) ==
        5);
  CHECK(value(fams, "clovis_link_flows_migrated_total", {{"from", "lte"}, {"to", "fiber"}, {"reason", "link_down"}}) ==
        2);
  CHECK(value(fams, "clovis_link_flows_migrated_total", {{"from", "fiber"}, {"to", "lte"}, {"reason", "sla"}}) == 4);
  CHECK(value(fams, "clovis_link_flows_migrated_total", {{"from", "lte"}, {"to", "fiber"}, {"reason", "return"}}) == 1);
  CHECK(family(fams, "clovis_link_flows_migrated_total")->metric.size() == 4);
  // Drops by reason, every reason a series; NAT refusals also as the NAT
  // family, for the NAT link only.
  CHECK(value(fams, "clovis_link_drops_total", {{"link", "fiber"}, {"reason", "too_big"}}) == 4);
  CHECK(value(fams, "clovis_link_drops_total", {{"link", "fiber"}, {"reason", "nat_refused"}}) == 6);
  CHECK(value(fams, "clovis_link_drops_total", {{"link", "fiber"}, {"reason", "redirect_error"}}) == 0);
  CHECK(value(fams, "clovis_link_drops_total", {{"link", "lte"}, {"reason", "link_down"}}) == 1);
  CHECK(value(fams, "clovis_link_nat_port_claims_refused_total", {{"link", "fiber"}}) == 6);
  CHECK(series(fams, "clovis_link_nat_port_claims_refused_total", {{"link", "lte"}}) == nullptr);
  // The expiry sweep's counts, not a walk (scans() stays 0 below).
  CHECK(value(fams, "clovis_link_flows", {{"link", "fiber"}}) == 1200);
  CHECK(value(fams, "clovis_link_flows", {{"link", "lte"}}) == 7);
  CHECK(value(fams, "clovis_link_nat_ports_in_use", {{"link", "fiber"}}) == 800);
  CHECK(series(fams, "clovis_link_nat_ports_in_use", {{"link", "lte"}}) == nullptr);
  CHECK(value(fams, "clovis_link_info", {{"link", "lte"}, {"interface", "wwan0"}, {"mode", "redirect"}}) == 1);
  // One series per state, 1 for the state the link is in.
  CHECK(family(fams, "clovis_link_state")->type == MetricType::Gauge);
  CHECK(value(fams, "clovis_link_state", {{"link", "fiber"}, {"state", "up"}}) == 1);
  CHECK(value(fams, "clovis_link_state", {{"link", "fiber"}, {"state", "down"}}) == 0);
  CHECK(value(fams, "clovis_link_state", {{"link", "lte"}, {"state", "down"}}) == 1);
  CHECK(value(fams, "clovis_link_state", {{"link", "lte"}, {"state", "degraded"}}) == 0);
  CHECK(value(fams, "clovis_link_last_change_timestamp_seconds", {{"link", "lte"}}) ==
        doctest::Approx(1'700'000'123.5));
  // Base units: seconds and a 0..1 ratio.
  CHECK(value(fams, "clovis_link_latency_seconds", {{"link", "fiber"}}) == doctest::Approx(0.0125));
  CHECK(value(fams, "clovis_link_jitter_seconds", {{"link", "fiber"}}) == doctest::Approx(0.0015));
  CHECK(value(fams, "clovis_link_loss_ratio", {{"link", "fiber"}}) == doctest::Approx(0.02));
  CHECK(value(fams, "clovis_link_state_changes_total", {{"link", "lte"}}) == 7);
  CHECK(series(fams, "clovis_link_latency_seconds", {{"link", "lte"}}) == nullptr);  // never answered a probe
  CHECK(value(fams, "clovis_link_nat_ports_capacity", {{"link", "fiber"}}) == CLV_NAT_PORT_RANGE);
  CHECK(series(fams, "clovis_link_nat_ports_capacity", {{"link", "lte"}}) == nullptr);
  CHECK(value(fams, "clovis_policy_links", {{"policy", "internet"}, {"state", "up"}}) == 1);
  CHECK(value(fams, "clovis_policy_links", {{"policy", "internet"}, {"state", "down"}}) == 1);
  CHECK(value(fams, "clovis_policy_links", {{"policy", "internet"}, {"state", "degraded"}}) == 0);
  CHECK(value(fams, "clovis_build_info", {{"version", "9.8.7"}}) == 1);
}

TEST_CASE("metrics: kernel counters, map fill and evictions") {
  Site site;
  for (size_t i = 0; i < CLV_STAT_MAX; ++i) site.dp.set_counter(i, 100 + i);
  site.dp.set_counter(CLV_STAT_MALFORMED, 9);
  site.dp.set_counter(CLV_STAT_UNPARSED_DROP, 4);
  site.dp.set_map_fill({{"clv_flows", 1234, 1 << 20}, {"clv_nat", 600, 1 << 20}});
  agent::FlowTableTotals t;
  t.expired[0] = 5;
  t.expired[2] = 6;
  t.evicted_unreplied = 7;
  site.dp.set_flow_table_totals(t);
  const auto fams = site.scrape();
  for (size_t i = 0; i < CLV_STAT_MAX; ++i) {
    CAPTURE(agent::kStatNames[i]);
    CHECK(value(fams, "clovis_datapath_packets_total", {{"reason", agent::kStatNames[i]}}) ==
          (i == CLV_STAT_MALFORMED       ? 9
           : i == CLV_STAT_UNPARSED_DROP ? 4
                                         : 100 + static_cast<double>(i)));
  }
  CHECK(value(fams, "clovis_unparsed_packets_total", {{"result", "passed"}}) == 5);
  CHECK(value(fams, "clovis_unparsed_packets_total", {{"result", "dropped"}}) == 4);
  CHECK(value(fams, "clovis_icmp_errors_translated_total", {{"direction", "to_client"}}) == 100 + CLV_STAT_ICMP_ERR_IN);
  CHECK(value(fams, "clovis_icmp_errors_translated_total", {{"direction", "from_client"}}) ==
        100 + CLV_STAT_ICMP_ERR_OUT);
  CHECK(value(fams, "clovis_flow_evictions_total", {{"reason", "expired"}}) == 11);
  CHECK(value(fams, "clovis_flow_evictions_total", {{"reason", "unreplied_evicted"}}) == 7);
  CHECK(value(fams, "clovis_flow_evictions_total", {{"reason", "promote_full"}}) == 100 + CLV_STAT_PROMOTE_FULL);
  CHECK(value(fams, "clovis_flow_evictions_total", {{"reason", "ended"}}) == 100 + CLV_STAT_ENDED);
  CHECK(value(fams, "clovis_map_entries", {{"map", "clv_nat"}}) == 600);
  CHECK(value(fams, "clovis_map_capacity", {{"map", "clv_flows"}}) == 1 << 20);
}

TEST_CASE("metrics: applies, Checks and probes as the hooks counted them") {
  Site site;
  using agent::metrics::ApplyResultKind;
  for (auto k : {ApplyResultKind::kOk, ApplyResultKind::kOk, ApplyResultKind::kRejected, ApplyResultKind::kReverted})
    site.events.note_apply(k);
  site.events.note_check(agent::metrics::CheckResult::kAllowed, 30e-6);
  site.events.note_check(agent::metrics::CheckResult::kAllowed, 0.2);  // beyond the last bucket
  site.events.note_check(agent::metrics::CheckResult::kDenied, 80e-6);
  const std::vector<agent::metrics::ProbeOutcome> round = {{"icmp 192.0.2.1", true, true, 0.012},
                                                           {"tcp 192.0.2.2:443", true, false, 0},
                                                           {"icmp 192.0.2.9", false, false, 0}};
  site.events.note_probe_round("fiber", round);
  site.events.note_probe_round("fiber", round);
  using agent::metrics::FileApplyResult;
  for (auto r : {FileApplyResult::kApplied, FileApplyResult::kRejected, FileApplyResult::kRejected})
    site.events.note_file_apply(r);
  const auto fams = site.scrape();

  CHECK(value(fams, "clovis_config_file_applies_total", {{"result", "applied"}}) == 1);
  CHECK(value(fams, "clovis_config_file_applies_total", {{"result", "rejected"}}) == 2);
  CHECK(value(fams, "clovis_config_file_applies_total", {{"result", "failed"}}) == 0);
  CHECK(value(fams, "clovis_config_file_applies_total", {{"result", "unreadable"}}) == 0);
  CHECK(value(fams, "clovis_applies_total", {{"result", "ok"}}) == 2);
  CHECK(value(fams, "clovis_applies_total", {{"result", "rejected"}}) == 1);
  CHECK(value(fams, "clovis_applies_total", {{"result", "reverted"}}) == 1);
  CHECK(value(fams, "clovis_applies_total", {{"result", "rolled_back"}}) == 0);
  CHECK(value(fams, "clovis_mapping_generation") == 8);
  CHECK(value(fams, "clovis_last_apply_timestamp_seconds") == doctest::Approx(1'700'000'500));
  CHECK(value(fams, "clovis_apply_pending_confirm") == 1);
  CHECK(value(fams, "clovis_apply_confirm_deadline_timestamp_seconds") == doctest::Approx(1'700'000'600));
  CHECK(value(fams, "clovis_authz_checks_total", {{"result", "allowed"}}) == 2);
  CHECK(value(fams, "clovis_authz_checks_total", {{"result", "denied"}}) == 1);
  CHECK(value(fams, "clovis_authz_checks_total", {{"result", "error"}}) == 0);
  const auto* h = series(fams, "clovis_authz_check_duration_seconds", {});
  REQUIRE(h);
  CHECK(family(fams, "clovis_authz_check_duration_seconds")->type == MetricType::Histogram);
  CHECK(h->histogram.sample_count == 3);
  CHECK(h->histogram.sample_sum == doctest::Approx(0.20011));
  CHECK(h->histogram.bucket.front().upper_bound == doctest::Approx(25e-6));
  CHECK(h->histogram.bucket.front().cumulative_count == 0);
  CHECK(h->histogram.bucket[1].cumulative_count == 1);      // le 50us
  CHECK(h->histogram.bucket[2].cumulative_count == 2);      // le 100us: cumulative
  CHECK(h->histogram.bucket.back().cumulative_count == 3);  // +Inf
  CHECK(std::isinf(h->histogram.bucket.back().upper_bound));
  // A probe that could not be sent (a host fault) is neither sent nor lost.
  CHECK(value(fams, "clovis_link_probes_sent_total", {{"link", "fiber"}, {"target", "icmp 192.0.2.1"}}) == 2);
  CHECK(value(fams, "clovis_link_probes_lost_total", {{"link", "fiber"}, {"target", "icmp 192.0.2.1"}}) == 0);
  CHECK(value(fams, "clovis_link_probes_lost_total", {{"link", "fiber"}, {"target", "tcp 192.0.2.2:443"}}) == 2);
  CHECK(series(fams, "clovis_link_probes_sent_total", {{"link", "fiber"}, {"target", "icmp 192.0.2.9"}}) == nullptr);
  const auto* rtt = series(fams, "clovis_link_probe_rtt_seconds", {{"link", "fiber"}});
  REQUIRE(rtt);
  CHECK(rtt->histogram.sample_count == 2);
  CHECK(rtt->histogram.sample_sum == doctest::Approx(0.024));
}

TEST_CASE("metrics: the text format is what Prometheus parses, and a failing source leaves out only its families") {
  Site site;
  site.links_fail = true;
  const auto fams = site.scrape();
  CHECK(family(fams, "clovis_link_state") == nullptr);
  CHECK(family(fams, "clovis_map_entries") != nullptr);
  site.links_fail = false;
  std::ostringstream os;
  prometheus::TextSerializer().Serialize(os, site.scrape());
  const std::string text = os.str();
  CHECK(text.find("# TYPE clovis_link_transmit_bytes_total counter\n") != std::string::npos);
  CHECK(text.find("clovis_link_transmit_bytes_total{link=\"fiber\"} 0\n") != std::string::npos);
  CHECK(text.find("clovis_link_state{link=\"lte\",state=\"down\"} 1\n") != std::string::npos);
  CHECK(text.find("clovis_authz_check_duration_seconds_bucket{le=\"+Inf\"} 0\n") != std::string::npos);
  CHECK(text.find("_total_total") == std::string::npos);
}

TEST_CASE("metrics: --metrics-listen takes ADDRESS:PORT") {
  using agent::metrics::parse_listen;
  CHECK(parse_listen("127.0.0.1:9464"));
  CHECK(parse_listen("[::1]:9464"));
  CHECK(parse_listen("0.0.0.0:80"));
  CHECK(!parse_listen("127.0.0.1"));
  CHECK(!parse_listen("localhost:9464"));
  CHECK(!parse_listen("127.0.0.1:0"));
  CHECK(!parse_listen("127.0.0.1:70000"));
  CHECK(!parse_listen("::1:9464"));
  CHECK(parse_listen(":9464").error().message.find("ADDRESS:PORT") != std::string::npos);
}

TEST_CASE("metrics: an ext_authz answer's outcome") {
  using S = agent::service::AuthzService;
  envoy::service::auth::v3::CheckResponse r;
  r.mutable_ok_response();
  CHECK(S::outcome_of(r) == S::Outcome::kAllowed);
  auto* h = r.mutable_ok_response()->add_headers()->mutable_header();
  h->set_key("x-clovis-error");
  h->set_value("clovisd runs no mapping");
  CHECK(S::outcome_of(r) == S::Outcome::kError);
  r.mutable_denied_response();
  CHECK(S::outcome_of(r) == S::Outcome::kDenied);
}

TEST_CASE("metrics: a metered link's budget, used bytes, reset time and over-budget state") {
  Site site;
  site.links[1].metered = true;
  site.links[1].budget_bytes = 2 << 20;
  site.links[1].budget_used_bytes = 3 << 20;
  site.links[1].budget_resets_unix_s = 1'798'761'600;
  site.links[1].over_budget = true;
  const auto fams = site.scrape();
  CHECK(value(fams, "clovis_link_budget_bytes", {{"link", "lte"}}) == 2 << 20);
  CHECK(value(fams, "clovis_link_budget_used_bytes", {{"link", "lte"}}) == 3 << 20);
  CHECK(value(fams, "clovis_link_budget_reset_timestamp_seconds", {{"link", "lte"}}) == 1'798'761'600);
  CHECK(value(fams, "clovis_link_over_budget", {{"link", "lte"}}) == 1);
  // Unmetered links have no budget series.
  CHECK(series(fams, "clovis_link_budget_bytes", {{"link", "fiber"}}) == nullptr);
  CHECK(series(fams, "clovis_link_over_budget", {{"link", "fiber"}}) == nullptr);
}
