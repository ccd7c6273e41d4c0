#include "convert.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "core/conntrack.hpp"
#include "telemetry/counter_names.hpp"

namespace clovis::agent::service {

namespace {

core::ErrorCode code_of(ApplyFailure kind) {
  switch (kind) {
    case ApplyFailure::kRejected: return core::ErrorCode::kInvalidArgument;
    case ApplyFailure::kPrecondition: return core::ErrorCode::kPrecondition;
    case ApplyFailure::kNotFound: return core::ErrorCode::kNotFound;
    case ApplyFailure::kHost: return core::ErrorCode::kIo;
  }
  return core::ErrorCode::kInternal;
}

}  // namespace

grpc::Status error_status(const ApplyError& e, const std::string& source, grpc::ServerContext* ctx) {
  if (e.kind == ApplyFailure::kRejected) return rpc::rejected_status(e.diagnostics, source, ctx);
  return rpc::to_status(core::Error{code_of(e.kind), 0, e.message(), {}});
}

grpc::Status kernel_status(const core::Error& e) {
  return {grpc::StatusCode::UNAVAILABLE, "kernel: " + e.what()};
}

grpc::Status invalid(const std::string& message) {
  return {grpc::StatusCode::INVALID_ARGUMENT, message};
}

uint32_t seconds_left(int64_t deadline, int64_t now) {
  if (deadline <= 0) return 0;
  if (deadline <= now) return 1;  // overdue: the revert is imminent, not done
  return static_cast<uint32_t>((deadline - now + 999) / 1000);
}

void to_proto(const ApplyOutcome& o, const std::string& source, int64_t now, std::optional<uint32_t> max_diff_items,
              v1::ApplyResponse* out) {
  out->set_generation(o.report.generation);
  out->set_dry_run(o.dry_run);
  const size_t shown = max_diff_items ? std::min<size_t>(o.diff.size(), *max_diff_items) : o.diff.size();
  out->mutable_diff()->Reserve(static_cast<int>(shown));
  for (size_t i = 0; i < shown; ++i) {
    const auto& d = o.diff[i];
    auto* x = out->add_diff();
    x->set_kind(d.kind);
    x->set_name(d.name);
    x->set_change(d.change);
    x->set_detail(d.detail);
  }
  out->set_diff_total(static_cast<uint32_t>(o.diff.size()));
  // Kinds come in runs (links, policies, rules, default): count run by run.
  v1::DiffCount* c = nullptr;
  for (const auto& d : o.diff) {
    if (c == nullptr || c->kind() != d.kind) {
      c = nullptr;
      for (auto& have : *out->mutable_diff_counts())
        if (have.kind() == d.kind) c = &have;
      if (c == nullptr) {
        c = out->add_diff_counts();
        c->set_kind(d.kind);
      }
    }
    if (d.change == "added") c->set_added(c->added() + 1);
    else if (d.change == "removed") c->set_removed(c->removed() + 1);
    else c->set_changed(c->changed() + 1);
  }
  for (const auto& d : o.report.diagnostics.items()) rpc::to_proto(d, source, out->add_warnings());
  for (const auto& n : o.report.notes) out->add_notes(n);
  out->set_apply_ms(o.report.total_ms);
  out->set_confirm_deadline_s(seconds_left(o.confirm_deadline_unix_ms, now));
  out->set_previous_generation(o.previous_generation);
}

core::FlowFilterSpec from_proto(const v1::FlowFilter& f) {
  core::FlowFilterSpec s;
  s.src.assign(f.src().begin(), f.src().end());
  s.dst.assign(f.dst().begin(), f.dst().end());
  s.ip.assign(f.ip().begin(), f.ip().end());
  s.port.assign(f.port().begin(), f.port().end());
  s.sport.assign(f.sport().begin(), f.sport().end());
  s.dport.assign(f.dport().begin(), f.dport().end());
  s.proto.assign(f.proto().begin(), f.proto().end());
  s.link.assign(f.link().begin(), f.link().end());
  s.rule.assign(f.rule().begin(), f.rule().end());
  s.state.assign(f.state().begin(), f.state().end());
  return s;
}

void to_proto(const core::FlowRow& r, v1::Flow* out) {
  out->set_family(r.family.data(), r.family.size());
  out->set_src(r.src.data(), r.src.size());
  out->set_dst(r.dst.data(), r.dst.size());
  out->set_sport(r.sport);
  out->set_dport(r.dport);
  out->set_proto(r.proto.data(), r.proto.size());
  out->set_action(r.action.data(), r.action.size());
  out->set_rule(r.rule.data(), r.rule.size());
  out->set_link(r.link.data(), r.link.size());
  out->set_generation(r.generation);
  out->clear_flags();
  for (const auto& fl : core::kFlowFlags)
    if (r.flags & fl.bit) out->add_flags(fl.name.data(), fl.name.size());
  out->set_state(r.state.data(), r.state.size());
  out->set_assured(r.assured);
  out->set_packets_out(r.packets_out);
  out->set_bytes_out(r.bytes_out);
  out->set_packets_in(r.packets_in);
  out->set_bytes_in(r.bytes_in);
  out->set_age_s(r.age_s);
  out->set_idle_s(r.idle_s);
  out->set_nat(r.nat.data(), r.nat.size());
}

void to_proto(const FlowNamer& names, const clv_flow_key& k, const clv_flow& f, uint64_t now_ns, v1::Flow* out) {
  core::FlowRowText text;
  to_proto(names.row(k, f, now_ns, text), out);
  if (auto s = names.session(k)) {
    v1::FlowL7* l7 = out->mutable_l7();
    l7->set_rule(s->rule);
    l7->set_by_l7(s->by_l7);
    l7->set_host(s->host);
    l7->set_method(s->method);
    l7->set_path(s->path);
    l7->clear_headers();
    for (const auto& [name, value] : s->headers) (*l7->mutable_headers())[name] = value;
    l7->set_checks(s->checks);
    l7->set_seen_s(core::seconds_since(s->seen_ns, now_ns));
  } else {
    out->clear_l7();
  }
}

void to_proto(const FlowTableTotals& t, v1::FlowTableTotals* out) {
  for (uint8_t st = 0; st < CLV_CT_STATES; ++st) {
    const std::string_view key = core::ct_state_key(st);
    (*out->mutable_expired())[std::string(key)] = t.expired[st];
  }
  out->set_evicted_unreplied(t.evicted_unreplied);
}

void add_link_counters(const LinkDrops& drops, const LinkMigrations& moved, const std::vector<LinkMigrations>& left,
                       const FlowTableTotals& t, v1::StatusResponse* out) {
  std::array<std::string, CLV_MAX_LINKS> names;
  for (auto& l : *out->mutable_links()) {
    const uint32_t s = l.slot();
    if (s >= CLV_MAX_LINKS) continue;
    names[s] = l.name();
    for (size_t r = 0; r < kLinkDropNames.size(); ++r) (*l.mutable_drops())[kLinkDropNames[r]] = drops[s][r];
    l.set_active_flows(t.link_flows[s]);
    l.set_nat_bindings(t.link_nat_bindings[s]);
  }
  // A slot no link holds now (removed since its flows moved) is named by number.
  auto name = [&names](size_t s) { return names[s].empty() ? fmt::format("slot {}", s) : names[s]; };
  auto add = [&](const LinkMigrations& by_pair, const char* reason) {
    for (size_t from = 0; from < CLV_MAX_LINKS; ++from)
      for (size_t to = 0; to < CLV_MAX_LINKS; ++to) {
        if (!by_pair[from][to]) continue;
        auto* m = out->add_migrations();
        m->set_from(name(from));
        m->set_to(name(to));
        m->set_reason(reason);
        m->set_flows(by_pair[from][to]);
      }
  };
  add(moved, kMigrationReason);
  // Moves off links that were up: their policy left them (reason sla, return).
  for (size_t r = 0; r < left.size() && r < kMoveReasons.size(); ++r) add(left[r], kMoveReasons[r]);
}

void to_proto(const LinkFacts& l, v1::Link* out) {
  out->set_name(l.view.name);
  out->set_interface(l.view.interface);
  out->set_slot(static_cast<uint32_t>(l.view.slot));
  out->set_mode(core::to_string(l.view.mode));
  out->set_state(to_string(l.view.state));
  out->set_since_unix_ms(l.view.since_unix_ms);
  for (const auto& label : l.view.labels) out->add_labels(label);
  out->set_tx_packets(l.counters.tx_packets);
  out->set_tx_bytes(l.counters.tx_bytes);
  out->set_rx_packets(l.counters.rx_packets);
  out->set_rx_bytes(l.counters.rx_bytes);
  out->set_flows(l.flows);
  out->set_new_flows(l.counters.new_flows);
  out->set_migrated(l.counters.migrated);
  out->set_tx_pps(l.rates.tx_pps);
  out->set_tx_bps(l.rates.tx_bps);
  out->set_rx_pps(l.rates.rx_pps);
  out->set_rx_bps(l.rates.rx_bps);
  if (const auto& v = l.view.verdict) {
    out->set_reason(v->reason);
    out->set_latency_ms(v->quality.latency_ms);
    out->set_jitter_ms(v->quality.jitter_ms);
    out->set_loss_pct(v->quality.loss_pct);
    out->set_measured(v->quality.measured);
    out->set_transitions(v->transitions);
  }
  if (const auto& b = l.view.budget) {
    auto* pb = out->mutable_budget();
    pb->set_limit_bytes(b->limit_bytes);
    pb->set_used_bytes(b->used_bytes);
    pb->set_resets_unix_s(b->resets_unix_s);
    pb->set_over(b->over);
    pb->set_error(b->error);
  }
  // The host's reason comes first: probes can't tell "no address yet".
  if (!l.view.host_reason.empty()) out->set_reason(l.view.host_reason);
}

void to_proto(const LinkChange& e, v1::LinkEventMsg* out) {
  const Quality q = e.quality.value_or(Quality{});  // a host change: zeros, as ever
  out->set_time_unix_ms(e.time_unix_ms);
  if (e.source == LinkChange::Source::kConfig) {
    out->set_kind("config");
    out->set_to(e.what);
    out->set_reason(e.reason);
    return;
  }
  if (e.source == LinkChange::Source::kSteering) {
    out->set_kind("steering");
    out->set_link(e.link);
    out->set_to(e.what);
    out->set_reason(e.reason);
    return;
  }
  out->set_link(e.link);
  out->set_from(to_string(e.from));
  out->set_to(to_string(e.to));
  out->set_reason(e.reason);
  out->set_latency_ms(q.latency_ms);
  out->set_jitter_ms(q.jitter_ms);
  out->set_loss_pct(q.loss_pct);
}

core::Result<core::FlowQuery> from_proto(const v1::SimulateRequest& r) {
  core::FlowQuerySpec s;
  s.src = r.src();
  s.dst = r.dst();
  if (!r.proto().empty()) s.proto = r.proto();
  s.sport = r.sport();
  s.dport = r.dport();
  s.dscp = r.dscp();
  s.mark = r.mark();
  s.iif = r.iif();
  s.host = r.host();
  s.path = r.path();
  s.method = r.method();
  s.headers.assign(r.headers().begin(), r.headers().end());
  // Map order is unspecified; the decision's JSON lists headers, so sort.
  std::sort(s.headers.begin(), s.headers.end());
  return core::build_flow_query(s);
}

}  // namespace clovis::agent::service
