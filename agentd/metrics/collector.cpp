#include "metrics/collector.hpp"

#include <array>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "log/log.hpp"
#include "telemetry/counter_names.hpp"

namespace clovis::agent::metrics {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

// The families of one scrape, in the order they are first named.
class Collector::Out {
 public:
  MetricFamily& family(const std::string& name, const std::string& help, MetricType type) {
    auto [it, fresh] = index_.try_emplace(name, families_.size());
    if (fresh) families_.push_back({name, help, type, {}});
    return families_[it->second];
  }
  void gauge(const std::string& name, const std::string& help, Labels labels, double v) {
    ClientMetric m;
    m.label = std::move(labels);
    m.gauge.value = v;
    family(name, help, MetricType::Gauge).metric.push_back(std::move(m));
  }
  void counter(const std::string& name, const std::string& help, Labels labels, double v) {
    ClientMetric m;
    m.label = std::move(labels);
    m.counter.value = v;
    family(name, help, MetricType::Counter).metric.push_back(std::move(m));
  }
  void histogram(const std::string& name, const std::string& help, Labels labels, const AtomicHistogram::Snapshot& h) {
    ClientMetric m;
    m.label = std::move(labels);
    m.histogram.sample_count = h.count;
    m.histogram.sample_sum = h.sum;
    for (const auto& [le, n] : h.buckets) m.histogram.bucket.push_back({n, le});
    family(name, help, MetricType::Histogram).metric.push_back(std::move(m));
  }
  std::vector<MetricFamily> take() { return std::move(families_); }

 private:
  std::vector<MetricFamily> families_;
  std::map<std::string, size_t> index_;
};

namespace {

Labels link_label(const std::string& link) {
  return {{"link", link}};
}
double seconds_of_ms(int64_t ms) {
  return static_cast<double>(ms) / 1000.0;
}
constexpr std::array<const char*, 3> kStates = {"up", "degraded", "down"};

}  // namespace

void Collector::failed(const std::string& what, const core::Error& e) const {
  if (!warned_.exchange(true)) log_warning(fmt::format("metrics: {} left out of the scrape: {}", what, e.what()));
}

std::vector<MetricFamily> Collector::Collect() const {
  Out out;
  out.gauge("clovis_build_info", "clovisd's version", {{"version", src_.version}}, 1);
  collect_control(out);
  // One read of the table fill per scrape (the expiry sweep's counts: no
  // flow-table walk), for the per-link gauges and the map gauges.
  std::optional<TableFill> fill;
  if (src_.table_fill) {
    if (auto f = src_.table_fill()) fill = std::move(*f);
    else failed("map fill", f.error());
  }
  collect_links(out, fill ? &*fill : nullptr);
  collect_probes(out);
  collect_datapath(out, fill ? &*fill : nullptr);
  return out.take();
}

void Collector::collect_control(Out& out) const {
  const ControlView c = src_.control ? src_.control() : ControlView{};
  out.gauge("clovis_mapping_generation", "Generation of the running mapping (0: none)", {}, c.generation);
  for (size_t i = 0; i < kApplyResults.size(); ++i)
    out.counter("clovis_applies_total", "Applies of a mapping by result", {{"result", kApplyResults[i]}},
                static_cast<double>(events_.applies(static_cast<ApplyResultKind>(i))));
  for (size_t i = 0; i < kFileApplyResults.size(); ++i)
    out.counter("clovis_config_file_applies_total",
                "Changes of the followed config file (clovisd --follow-config) by what came of them",
                {{"result", kFileApplyResults[i]}},
                static_cast<double>(events_.file_applies(static_cast<FileApplyResult>(i))));
  out.gauge("clovis_last_apply_timestamp_seconds", "When the running mapping was applied (unix time; 0: none)", {},
            seconds_of_ms(c.applied_unix_ms));
  out.gauge("clovis_apply_pending_confirm", "1 while an apply waits for clovisctl confirm", {},
            c.confirm_deadline_unix_ms ? 1 : 0);
  out.gauge("clovis_apply_confirm_deadline_timestamp_seconds",
            "When an unconfirmed apply is reverted (unix time; 0: none pending)", {},
            seconds_of_ms(c.confirm_deadline_unix_ms));
  for (size_t i = 0; i < kCheckResults.size(); ++i)
    out.counter("clovis_authz_checks_total", "ext_authz Checks answered, by result", {{"result", kCheckResults[i]}},
                static_cast<double>(events_.checks(static_cast<CheckResult>(i))));
  out.histogram("clovis_authz_check_duration_seconds", "Time clovisd took to answer an ext_authz Check", {},
                events_.check_latency());
}

void Collector::collect_links(Out& out, const TableFill* fill) const {
  if (!src_.links) return;
  auto links = src_.links();
  if (!links) return failed("links", links.error());
  LinkCounters counters{};
  bool have_counters = false;
  if (src_.dp) {
    auto lc = src_.dp->link_counters();
    have_counters = lc.ok();
    if (have_counters) counters = *lc;
    else failed("link counters", lc.error());
  }
  std::map<int, HealthView> health;
  if (src_.health)
    for (const auto& h : src_.health()) health[h.slot] = h;
  for (const auto& l : *links) {
    const Labels ll = link_label(l.name);
    out.gauge("clovis_link_info", "A link of the running mapping (value 1)",
              {{"link", l.name}, {"interface", l.interface}, {"mode", l.mode}}, 1);
    for (const char* s : kStates) {
      Labels sl = ll;
      sl.push_back({"state", s});
      out.gauge("clovis_link_state", "1 for the state the link is in (up, degraded, down)", sl, l.state == s);
    }
    out.gauge("clovis_link_last_change_timestamp_seconds", "When the link entered its state (unix time)", ll,
              seconds_of_ms(l.since_unix_ms));
    if (l.nat)
      out.gauge("clovis_link_nat_ports_capacity", "Ports of the link's NAT port range", ll, CLV_NAT_PORT_RANGE);
    if (l.metered) {
      out.gauge("clovis_link_budget_bytes", "A metered link's data budget per period (both directions)", ll,
                static_cast<double>(l.budget_bytes));
      out.gauge("clovis_link_budget_used_bytes", "Bytes the metered link's interface moved in the current period", ll,
                static_cast<double>(l.budget_used_bytes));
      out.gauge("clovis_link_budget_reset_timestamp_seconds", "When the metered link's period ends (unix time)", ll,
                static_cast<double>(l.budget_resets_unix_s));
      out.gauge("clovis_link_over_budget", "1 while the metered link is over budget (out of its policies)", ll,
                l.over_budget ? 1 : 0);
    }
    if (auto h = health.find(l.slot); h != health.end()) {
      out.counter("clovis_link_state_changes_total", "Health state changes of the link", ll,
                  static_cast<double>(h->second.transitions));
      if (h->second.measured) {
        out.gauge("clovis_link_latency_seconds", "Smoothed probe round-trip time", ll, h->second.latency_ms / 1000);
        out.gauge("clovis_link_jitter_seconds", "Smoothed probe round-trip variation", ll, h->second.jitter_ms / 1000);
        out.gauge("clovis_link_loss_ratio", "Smoothed share of unanswered probes (0..1)", ll, h->second.loss_pct / 100);
      }
    }
    if (!have_counters || l.slot < 0 || l.slot >= CLV_MAX_LINKS) continue;
    const clv_link_stats& c = counters[static_cast<size_t>(l.slot)];
    out.counter("clovis_link_transmit_bytes_total", "Bytes steered LAN -> WAN over the link", ll,
                static_cast<double>(c.tx_bytes));
    out.counter("clovis_link_transmit_packets_total", "Packets steered LAN -> WAN over the link", ll,
                static_cast<double>(c.tx_packets));
    out.counter("clovis_link_receive_bytes_total", "Bytes of the link's flows WAN -> LAN", ll,
                static_cast<double>(c.rx_bytes));
    out.counter("clovis_link_receive_packets_total", "Packets of the link's flows WAN -> LAN", ll,
                static_cast<double>(c.rx_packets));
    out.counter("clovis_link_flows_assigned_total", "New flows assigned to the link", ll,
                static_cast<double>(c.new_flows));
  }
  collect_link_kernel(out, *links, fill);
  collect_policies(out, *links);
}

void Collector::collect_link_kernel(Out& out, const std::vector<LinkView>& links, const TableFill* fill) const {
  auto in_range = [](int slot) { return slot >= 0 && slot < CLV_MAX_LINKS; };
  if (fill && fill->totals.links_counted_ns)  // after the first complete sweep
    for (const auto& l : links) {
      if (!in_range(l.slot)) continue;
      const auto s = static_cast<size_t>(l.slot);
      out.gauge("clovis_link_flows", "Flows pinned to the link (at the last expiry sweep)", link_label(l.name),
                static_cast<double>(fill->totals.link_flows[s]));
      if (l.nat)
        out.gauge("clovis_link_nat_ports_in_use", "NAT bindings of the link's flows (at the last expiry sweep)",
                  link_label(l.name), static_cast<double>(fill->totals.link_nat_bindings[s]));
    }
  if (!src_.dp) return;
  if (auto drops = src_.dp->link_drops()) {
    for (const auto& l : links) {
      if (!in_range(l.slot)) continue;
      const auto& d = (*drops)[static_cast<size_t>(l.slot)];
      for (size_t r = 0; r < kLinkDropNames.size(); ++r)
        out.counter("clovis_link_drops_total", "Packets of the link's flows dropped, by reason",
                    {{"link", l.name}, {"reason", kLinkDropNames[r]}}, static_cast<double>(d[r]));
      if (l.nat)
        out.counter("clovis_link_nat_port_claims_refused_total",
                    "Packets dropped because no NAT port of the link was free", link_label(l.name),
                    static_cast<double>(d[CLV_LINK_DROP_NAT_REFUSED]));
    }
  } else {
    failed("link drops", drops.error());
  }
  auto moved = src_.dp->link_migrations();
  if (!moved) return failed("link migrations", moved.error());
  auto left = src_.dp->link_moves();
  if (!left) return failed("link moves", left.error());
  // Pairs of the running mapping's links that saw a move: labels stay
  // bounded by links squared (times the reasons), and a pair appears once
  // it has counted.
  auto add = [&](const LinkMigrations& by_pair, const char* reason) {
    for (const auto& from : links)
      for (const auto& to : links) {
        if (!in_range(from.slot) || !in_range(to.slot)) continue;
        const uint64_t n = by_pair[static_cast<size_t>(from.slot)][static_cast<size_t>(to.slot)];
        if (n)
          out.counter("clovis_link_flows_migrated_total",
                      "Flows moved from one link to another: failover, SLA violations, failback",
                      {{"from", from.name}, {"to", to.name}, {"reason", reason}}, static_cast<double>(n));
      }
  };
  add(*moved, kMigrationReason);
  for (size_t r = 0; r < left->size() && r < kMoveReasons.size(); ++r) add((*left)[r], kMoveReasons[r]);
}

void Collector::collect_probes(Out& out) const {
  for (const auto& [link, p] : events_.probes()) {
    for (const auto& [target, n] : p.targets) {
      out.counter("clovis_link_probes_sent_total", "Health probes sent over the link",
                  {{"link", link}, {"target", target}}, static_cast<double>(n.sent));
      out.counter("clovis_link_probes_lost_total", "Health probes unanswered in time",
                  {{"link", link}, {"target", target}}, static_cast<double>(n.lost));
    }
    out.histogram("clovis_link_probe_rtt_seconds", "Round-trip times of answered health probes", link_label(link),
                  p.rtt);
  }
}

void Collector::collect_policies(Out& out, const std::vector<LinkView>& links) const {
  if (!src_.policies) return;
  std::map<int, const LinkView*> by_slot;
  for (const auto& l : links) by_slot[l.slot] = &l;
  for (const auto& p : src_.policies()) {
    std::map<std::string, int> n;
    for (int s : p.slots)
      if (auto it = by_slot.find(s); it != by_slot.end()) ++n[it->second->state];
    for (const char* s : kStates)
      out.gauge("clovis_policy_links", "Member links of the policy in each state", {{"policy", p.name}, {"state", s}},
                n[s]);
    for (size_t r = 0; r < CLV_MOVE_REASONS && r <= CLV_MOVE_BUDGET; ++r)
      if (p.leave_decisions[r])
        out.counter("clovis_policy_flow_moves_decided_total",
                    "Times the policy's live flows were told to leave a link, by reason",
                    {{"policy", p.name}, {"reason", kMoveReasons[r]}}, static_cast<double>(p.leave_decisions[r]));
  }
}

void Collector::collect_datapath(Out& out, const TableFill* fill) const {
  if (!src_.dp) return;
  if (auto c = src_.dp->counters()) {
    const GlobalCounters& g = *c;
    for (size_t i = 0; i < kStatNames.size(); ++i)
      out.counter("clovis_datapath_packets_total", "The kernel program's global counters, by name",
                  {{"reason", kStatNames[i]}}, static_cast<double>(g[i]));
    const uint64_t dropped = g[CLV_STAT_UNPARSED_DROP];
    const uint64_t unparsed = g[CLV_STAT_MALFORMED];
    out.counter("clovis_unparsed_packets_total", "Packets the program could not parse, by what it did",
                {{"result", "passed"}}, static_cast<double>(unparsed > dropped ? unparsed - dropped : 0));
    out.counter("clovis_unparsed_packets_total", "", {{"result", "dropped"}}, static_cast<double>(dropped));
    out.counter("clovis_icmp_errors_translated_total", "ICMP errors about translated flows, translated",
                {{"direction", "to_client"}}, static_cast<double>(g[CLV_STAT_ICMP_ERR_IN]));
    out.counter("clovis_icmp_errors_translated_total", "", {{"direction", "from_client"}},
                static_cast<double>(g[CLV_STAT_ICMP_ERR_OUT]));
    out.counter("clovis_flow_evictions_total", "Flows removed from the flow tables, by why",
                {{"reason", "promote_full"}}, static_cast<double>(g[CLV_STAT_PROMOTE_FULL]));
    out.counter("clovis_flow_evictions_total", "", {{"reason", "ended"}}, static_cast<double>(g[CLV_STAT_ENDED]));
  } else {
    failed("kernel counters", c.error());
  }
  if (!fill) return;
  uint64_t expired = 0;
  for (uint64_t e : fill->totals.expired) expired += e;
  out.counter("clovis_flow_evictions_total", "Flows removed from the flow tables, by why", {{"reason", "expired"}},
              static_cast<double>(expired));
  out.counter("clovis_flow_evictions_total", "", {{"reason", "unreplied_evicted"}},
              static_cast<double>(fill->totals.evicted_unreplied));
  for (const auto& m : fill->maps) {
    out.gauge("clovis_map_entries", "Entries of a kernel map (flow tables: at the last expiry sweep)",
              {{"map", m.name}}, static_cast<double>(m.entries));
    out.gauge("clovis_map_capacity", "Capacity of a kernel map", {{"map", m.name}}, static_cast<double>(m.capacity));
  }
}

std::vector<PolicyView> policy_views(const core::CompiledRules& rules,
                                     const std::vector<std::array<uint64_t, CLV_MOVE_REASONS>>& decisions) {
  std::vector<PolicyView> out;
  for (size_t i = 0; i < rules.policy_info.size() && i < rules.policies.size(); ++i) {
    const auto& info = rules.policy_info[i];
    if (info.name.empty() || info.implicit) continue;
    PolicyView v{info.name, {}};
    const clv_policy& p = rules.policies[i];
    for (size_t m = 0; m < p.n_members && m < CLV_POLICY_MAX_MEMBERS; ++m) v.slots.push_back(p.members[m].link);
    if (i < decisions.size()) v.leave_decisions = decisions[i];
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace clovis::agent::metrics
