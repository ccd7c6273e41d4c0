#include "agent/agent.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "log/log.hpp"

namespace clovis::agent {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

core::Unexpected<ApplyError> host_error(const std::string& message, const std::string& hint) {
  core::Diagnostics d;
  d.error({}, "", message, hint);
  return {ApplyError{ApplyFailure::kHost, std::move(d)}};
}

}  // namespace

Agent::Agent(AgentOptions opts, Dataplane& dp, HostNetwork& net)
    : opts_(std::move(opts)),
      dp_(dp),
      net_(net),
      routes_(opts_.state_dir, opts_.rule_pref_base, net),
      budget_(opts_.state_dir),
      history_(opts_.state_dir),
      confirms_(opts_.state_dir) {
  history_.load();
  budget_.load();
}

namespace {

bool link_local6(const clv_link& l) {
  const auto* b = reinterpret_cast<const uint8_t*>(l.gw6);
  return b[0] == 0xfe && (b[1] & 0xc0) == 0x80;
}

// Why the link in slot `s` cannot carry traffic of either family over `ifs`
// (empty: it can), and which families it can carry. Read-only: what the host
// is, not what clovis made of it.
std::string assess_link(const core::LinkInfo& li, const clv_link& l, const InterfaceState& ifs, bool* v4, bool* v6) {
  const bool p2p = l.flags & CLV_LINK_P2P;
  const bool want4 = *v4, want6 = *v6;
  // A gateway is reachable only through an address of its family on the
  // interface (the kernel refuses the route otherwise: "Nexthop has invalid
  // gateway"); an IPv6 link-local gateway needs none. Masquerade needs one too.
  if (!p2p && (l.flags & CLV_LINK_GW4) && !ifs.addr4) *v4 = false;
  if (!p2p && (l.flags & CLV_LINK_GW6) && !ifs.addr6 && !link_local6(l)) *v6 = false;
  if (l.snat == CLV_SNAT_MASQUERADE) {
    if (!ifs.addr4) *v4 = false;
    if (!ifs.addr6) *v6 = false;
  }
  if (!ifs.up) return fmt::format("interface {} is down or has no carrier", li.interface);
  if (*v4 || *v6) return {};
  const char* fam = want4 && want6 ? "IP" : want4 ? "IPv4" : "IPv6";
  return fmt::format("interface {} has no {} address{}", li.interface, fam,
                     l.snat == CLV_SNAT_MASQUERADE ? " (snat masquerade)" : "");
}

}  // namespace

// What only the host knows, read from it (nothing is written): ifindexes,
// masquerade addresses, and which links can carry traffic now. A link that
// can't (its interface missing, down or without an address: normal after a
// boot, while DHCP, PPPoE or an LTE modem is still at work) is down with its
// reason; it never stops the other links from being applied.
core::Result<ResolvedRules> Agent::resolve(const core::CompiledRules& c, std::vector<std::string>* notes) {
  ResolvedRules r;
  r.rules = &c;
  r.links = c.links;
  const clv_link_state caps = c.all_up_state();
  for (int s = 0; s < CLV_MAX_LINKS; ++s) {
    const core::LinkInfo& li = c.link_info[s];
    if (li.name.empty()) continue;
    const uint64_t bit = 1ull << s;
    clv_link& l = r.links[s];
    auto ifs = net_.interface(li.interface);
    if (!ifs) {
      r.no_carrier |= bit;
      r.down_reason[s] = fmt::format("interface {} does not exist", li.interface);
      notes->push_back(fmt::format("link {}: {}; the link is down until it appears", li.name, r.down_reason[s]));
      continue;
    }
    l.ifindex = static_cast<uint32_t>(ifs->ifindex);
    if (l.snat == CLV_SNAT_MASQUERADE) {
      if (ifs->addr4) l.snat4 = ifs->addr4->words()[0];
      if (ifs->addr6) {
        auto w = ifs->addr6->words();
        std::copy(w.begin(), w.end(), l.snat6);
      }
    }
    bool v4 = caps.v4 & bit, v6 = caps.v6 & bit;
    r.down_reason[s] = assess_link(li, l, *ifs, &v4, &v6);
    if (!ifs->up) r.no_carrier |= bit;
    if (v4) r.state.v4 |= bit;
    if (v6) r.state.v6 |= bit;
    if (r.down_reason[s].empty()) r.state.up |= bit;
    else notes->push_back(fmt::format("link {}: {}; the link is down until that changes", li.name, r.down_reason[s]));
  }
  for (size_t i = 0; i < c.iifs.size(); ++i) {
    auto ifs = net_.interface(c.iifs[i]);
    if (!ifs) {
      notes->push_back(fmt::format("rules match interface {}, which does not exist", c.iifs[i]));
      continue;
    }
    r.iifs.emplace_back(static_cast<uint32_t>(ifs->ifindex), static_cast<uint32_t>(i + 1));
  }
  return r;
}

// Static neighbours for the gateways whose MAC the mapping gives, on links
// that are up. One the kernel refuses downs its link, not the apply.
void Agent::set_neighbors(ResolvedRules& r) {
  const core::CompiledRules& c = *r.rules;
  for (int s = 0; s < CLV_MAX_LINKS; ++s) {
    const clv_link& l = r.links[s];
    if (c.link_info[s].name.empty() || !(l.flags & CLV_LINK_GWMAC) || !r.down_reason[s].empty()) continue;
    std::array<uint8_t, 6> mac;
    std::copy(std::begin(l.gw_mac), std::end(l.gw_mac), mac.begin());
    for (bool v6 : {false, true}) {
      if (!(l.flags & (v6 ? CLV_LINK_GW6 : CLV_LINK_GW4))) continue;
      const uint32_t* w = v6 ? l.gw6 : &l.gw4;
      uint32_t words[4] = {w[0], v6 ? w[1] : 0, v6 ? w[2] : 0, v6 ? w[3] : 0};
      auto gw = core::IpAddr::from_words(v6 ? core::Family::kV6 : core::Family::kV4, words);
      if (auto st = net_.set_neighbor(gw, mac, static_cast<int>(l.ifindex)); !st) {
        routes_.mark_down(r, s, fmt::format("gateway-mac neighbour {}: {}", gw.str(), st.error().what()));
        break;
      }
    }
  }
}

struct Agent::Prepared {
  core::Mapping mapping;
  core::CompiledRules compiled;
  core::Diagnostics warnings;
  uint64_t handover = 0;  // slots another link held before this mapping
};

core::Result<Agent::Prepared, ApplyError> Agent::prepare(const std::string& text) {
  std::optional<core::CompiledRules> persisted;
  const core::CompiledRules* prev = running_.get();
  if (!prev && (persisted = load_previous_slots())) prev = &*persisted;
  core::CompileOptions opts;
  opts.previous = prev;
  // A restart runs the persisted mapping as the generation it was, so the
  // history's entry for it stays the running one.
  opts.generation = std::max<uint32_t>(1, (prev ? prev->generation : 0) + (restoring_ ? 0 : 1));
  core::Checked checked = core::check_mapping(text, opts);
  if (!checked.ok()) return core::Unexpected<ApplyError>{{ApplyFailure::kRejected, std::move(checked.diagnostics)}};
  Prepared p{std::move(*checked.mapping), std::move(*checked.compiled), std::move(checked.diagnostics)};
  for (int s = 0; prev && s < CLV_MAX_LINKS; ++s) {
    const std::string &was = prev->link_info[s].name, &now = p.compiled.link_info[s].name;
    if (!was.empty() && !now.empty() && was != now) p.handover |= 1ull << s;
  }
  return p;
}

ApplyResult Agent::commit(const std::string& text, const std::string& source, bool dry, size_t diff_detail) {
  const auto t0 = Clock::now();
  auto p = prepare(text);
  if (!p) return core::error_of(std::move(p));
  auto r = dry ? dry_run(std::move(*p), diff_detail) : program(std::move(*p), text, source, diff_detail);
  if (r) r->report.total_ms = ms_since(t0);
  return r;
}

ApplyResult Agent::dry_run(Prepared p, size_t diff_detail) {
  ApplyOutcome out;
  out.dry_run = true;
  out.previous_generation = generation_locked();
  out.report.generation = out.previous_generation;
  out.report.diagnostics = std::move(p.warnings);
  (void)resolve(p.compiled, &out.report.notes);  // read-only: what the links would be
  out.diff = core::diff_mappings(running_mapping_ ? &*running_mapping_ : nullptr, p.mapping, diff_detail);
  return out;
}

ApplyResult Agent::program(Prepared p, const std::string& text, const std::string& source, size_t diff_detail) {
  core::CompiledRules& c = p.compiled;
  ApplyOutcome out;
  out.previous_generation = generation_locked();
  out.report.generation = c.generation;
  out.report.diagnostics = std::move(p.warnings);
  auto resolved = resolve(c, &out.report.notes);
  if (!resolved) return host_error(resolved.error().what(), "nothing was applied");
  resolved->handover = p.handover;
  // The health checker's verdicts hold for the links the new mapping keeps;
  // new links start from their carrier until it has a say.
  uint64_t kept = 0;
  for (int s = 0; s < CLV_MAX_LINKS; ++s)
    if (running_ && !c.link_info[s].name.empty() && running_->link_info[s].name == c.link_info[s].name)
      kept |= 1ull << s;
  health_.apply(&resolved->state, kept);
  sla_.keep(kept);  // measurements are of the link that held a slot
  (void)sla_.set_over_budget(budget_.over_mask(c, now_unix_ms() / 1000), nullptr);
  // Saved before the kernel runs it: a crash at any point after this
  // restarts into this mapping, whole; one before it, into the last.
  if (auto st = persist(text, c); !st) {
    if (running_) (void)persist(running_text_, *running_);
    return host_error("cannot save the mapping in " + opts_.state_dir + ": " + st.error().what(),
                      "nothing was applied; free space in the state directory and apply again");
  }
  std::optional<core::CompiledRules> sla_copy;
  const core::CompiledRules& kc = sla_.with_sla(c, &sla_copy);
  if (auto st = write_kernel(kc, *resolved, &out.report.stats); !st) {
    if (running_ && !persist(running_text_, *running_))
      log_error(
          "the kernel refused the apply and the last mapping could not be saved back: a restart would "
          "run the refused one");
    return core::Unexpected<ApplyError>{st.error()};
  }
  sla_.programmed(kc);
  budget_.baseline(c, net_, now_unix_ms() / 1000);
  out.diff = core::diff_mappings(running_mapping_ ? &*running_mapping_ : nullptr, p.mapping, diff_detail);
  previous_ = running_ ? running_ : previous_;
  {
    std::lock_guard running_lock(running_mu_);
    running_ = std::make_shared<const core::CompiledRules>(std::move(c));
  }
  running_mapping_ = std::move(p.mapping);
  running_text_ = text;
  running_source_ = source;
  // The leave entries are of a rule set: the new one's replace them.
  if (auto st = program_moves(); !st) log_warning("live flows: " + st.error().what());
  applied_unix_ms_ = now_unix_ms();
  record_history(text, source, &out.report);
  host_reason_ = resolved->down_reason;
  host_no_carrier_ = resolved->no_carrier;
  observe(resolved->state);
  return out;
}

// The order keeps both rule sets whole: the policy routing of links that
// are new or stay goes in first (nothing uses a new mark until the flip),
// then the rule set (Dataplane::apply: the flip), then the routing of links
// that are gone, and last that of links taking over a removed link's slot,
// which stay down until their routing is in place. A link whose routing or
// neighbour the kernel refuses is down with the kernel's reason; the other
// links are applied (an edge host's links fail one at a time).
core::Result<core::Ok, ApplyError> Agent::write_kernel(const core::CompiledRules& c, ResolvedRules& resolved,
                                                       ApplyStats* stats) {
  resolved.rules = &c;
  set_neighbors(resolved);
  auto plan = routes_.place_before_flip(resolved);
  if (!plan)
    return host_error("cannot save the routing ledger: " + plan.error().what(),
                      "nothing was applied; free space in the state directory and apply again");
  const uint64_t handover = resolved.handover;
  const uint64_t up = resolved.state.up;
  resolved.state.up &= ~handover;
  auto written = dp_.apply(resolved);
  if (!written) {
    routes_.undo(*plan);
    return host_error("kernel: " + written.error().what(), "the running rule set is unchanged");
  }
  resolved.state.up = up;
  resolved_links_ = resolved.links;
  *stats = *written;
  routes_.place_after_flip(resolved, *plan);
  if (resolved.state.up & handover)
    if (auto st = dp_.set_link_state(resolved.state); !st)
      log_warning("link state after the apply: " + st.error().what());
  routes_.commit(*plan);
  return core::Ok{};
}

core::Result<std::optional<ApplyReport>, core::Diagnostics> Agent::restore() {
  std::lock_guard lock(mu_);
  const std::string path = opts_.state_dir + "/mapping.yaml";
  auto text = core::read_file(path);
  if (!text) return std::optional<ApplyReport>{};
  // The rule set that ran before the restart names the flows it classified.
  if (auto before = load_persisted(opts_.state_dir))
    previous_ = std::make_shared<const core::CompiledRules>(std::move(*before));
  restoring_ = true;
  auto r = commit(*text, path, false);
  restoring_ = false;
  if (!r && r.error().kind == ApplyFailure::kRejected) {
    // Not a mapping this clovisd accepts (a damaged file, or a check newer
    // than the clovisd that wrote it): without it, start from the config.
    set_aside(path, "rejected: " + r.error().message());
    return std::optional<ApplyReport>{};
  }
  if (!r) return core::Unexpected<core::Diagnostics>{std::move(r).error().diagnostics};
  return std::optional<ApplyReport>{std::move(r->report)};
}

// The host changed under the running mapping (netlink told the daemon, or
// its periodic look): an interface appeared, went away, was re-created with
// another index, came up, got or lost an address. The links follow within
// the same mapping and generation: nothing is recorded in the history.
core::Status Agent::refresh_link_state(bool host_event) {
  std::lock_guard lock(mu_);
  if (!running_) return core::Ok{};
  std::vector<std::string> notes;
  auto r = resolve(*running_, &notes);
  if (!r) return core::error_of(r);
  bool relink = false;
  for (int s = 0; s < CLV_MAX_LINKS; ++s) {
    const clv_link &now = r->links[s], &was = resolved_links_[s];
    if (now.ifindex != was.ifindex || now.snat4 != was.snat4 ||
        std::memcmp(now.snat6, was.snat6, sizeof now.snat6) != 0)
      relink = true;
  }
  if (relink) {
    // The same rule set, written again with the host's new facts.
    health_.apply(&r->state, ~0ull);
    ApplyOutcome out;
    out.previous_generation = out.report.generation = running_->generation;
    out.report.notes = std::move(notes);
    const auto t0 = Clock::now();
    std::optional<core::CompiledRules> sla_copy;
    const core::CompiledRules& kc = sla_.with_sla(*running_, &sla_copy);
    if (auto st = write_kernel(kc, *r, &out.report.stats); !st) {
      ApplyResult failed = core::Unexpected<ApplyError>{st.error()};
      (void)notify(ApplyCause::kReapply, "interface change", std::move(failed));
      return core::fail(core::ErrorCode::kIo, st.error().message(), "interface change");
    }
    sla_.programmed(kc);
    out.report.total_ms = ms_since(t0);
    note_host_changes(*r);
    observe(r->state);
    (void)notify(ApplyCause::kReapply, "interface change", ApplyResult{std::move(out)});
    return core::Ok{};
  }
  // Links that can no longer carry traffic lose their claim on routing, and
  // usable ones that lack it get it.
  routes_.sync(*r, host_event, host_reason_);
  auto cur = dp_.link_state();
  if (!cur) return core::error_of(cur);
  clv_link_state next = r->state;
  health_.apply(&next, ~0ull);
  note_host_changes(*r);
  observe(next);
  if (next.up == cur->up && next.v4 == cur->v4 && next.v6 == cur->v6 && next.degraded == cur->degraded)
    return core::Ok{};
  return dp_.set_link_state(next);
}

void Agent::run_locked(const std::function<void(const core::CompiledRules* running)>& fn) {
  std::lock_guard lock(mu_);
  fn(running_.get());
}

// A link that became usable or unusable for the host's reasons is an event,
// as a health verdict is; not for its interface's carrier or existence,
// which the health checker reports itself (one event per change).
void Agent::note_host_changes(const ResolvedRules& r) {
  for (int s = 0; s < CLV_MAX_LINKS; ++s) {
    const auto& li = running_->link_info[s];
    const std::string &was = host_reason_[s], &now = r.down_reason[s];
    const bool carrier = (r.no_carrier | host_no_carrier_) >> s & 1;
    if (li.name.empty() || was.empty() == now.empty() || carrier) {
      host_reason_[s] = now;
      continue;
    }
    LinkChange ev;
    ev.time_unix_ms = now_unix_ms();
    ev.slot = s;
    ev.link = li.name;
    ev.from = was.empty() ? LinkState::kUp : LinkState::kDown;
    ev.to = now.empty() ? LinkState::kUp : LinkState::kDown;
    ev.reason = now.empty() ? fmt::format("interface {} usable again ({} before)", li.interface, was) : now;
    ev.source = LinkChange::Source::kHost;
    (now.empty() ? log_info : log_warning)(
        fmt::format("link {}: {} -> {} ({})", ev.link, to_string(ev.from), to_string(ev.to), ev.reason));
    changes_.push(ev);
    host_reason_[s] = now;
  }
  host_no_carrier_ = r.no_carrier;
}

core::Status Agent::set_health(std::vector<LinkVerdict> verdicts, const LinkChange* change) {
  std::lock_guard lock(mu_);
  health_.judge(std::move(verdicts));
  if (change) changes_.push(*change);
  if (!running_) return core::Ok{};
  auto cur = dp_.link_state();
  if (!cur) return core::error_of(cur);
  clv_link_state next = *cur;
  // Bring the carrier/resolution view back first: a link the checker clears
  // again must also have an interface.
  std::vector<std::string> notes;
  if (auto r = resolve(*running_, &notes)) next.up = r->state.up & routes_.routed();  // usable, with its routing
  health_.apply(&next, ~0ull);
  observe(next);
  if (next.up == cur->up && next.degraded == cur->degraded) return core::Ok{};
  return dp_.set_link_state(next);
}

core::Status Agent::set_quality(const core::LinkQualities& q) {
  std::lock_guard lock(mu_);
  sla_.set_quality(q);
  if (!running_) return core::Ok{};
  // The live flows' decisions first: their hysteresis also orders the
  // policies for new flows (decide_sla's held_out).
  auto lst = dp_.link_state();
  if (!lst) return core::error_of(lst);
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
  std::vector<MoveNote> said;
  core::MoveDecision d = sla_.moves(*running_, lst->up, static_cast<uint64_t>(now_ms), &said);
  note_moves(said);
  if (sla_.stale(running_.get()))
    if (auto st = rewrite_policies("SLA update"); !st) return st;
  return write_moves(d);
}

core::Status Agent::rewrite_policies(const std::string& what) {
  std::vector<std::string> notes;
  auto r = resolve(*running_, &notes);
  if (!r) return core::error_of(r);
  health_.apply(&r->state, ~0ull);
  std::optional<core::CompiledRules> sla_copy;
  ApplyStats stats;
  const core::CompiledRules& kc = sla_.with_sla(*running_, &sla_copy);
  // On a refusal the programmed policies stay: the next quality update
  // tries again.
  if (auto st = write_kernel(kc, *r, &stats); !st) return core::fail(core::ErrorCode::kIo, st.error().message(), what);
  sla_.programmed(kc, true);
  return core::Ok{};
}

core::Status Agent::sample_budgets(int64_t now) {
  std::lock_guard lock(mu_);
  if (!running_) return core::Ok{};
  for (const BudgetChange& ch : budget_.sample(*running_, net_, now)) {
    const BudgetStatus& b = ch.status;
    LinkChange ev;
    ev.time_unix_ms = now * 1000;
    ev.slot = ch.slot;
    ev.link = ch.link;
    ev.what = b.over ? "over budget" : "within budget";
    ev.reason = fmt::format("{} of {} used, resets on {}", core::format_bytes(b.used_bytes),
                            core::format_bytes(b.limit_bytes), core::utc_date(b.resets_unix_s));
    ev.source = LinkChange::Source::kSteering;
    (b.over ? log_warning : log_info)(fmt::format("link {}: {} ({})", ev.link, ev.what, ev.reason));
    changes_.push(ev);
  }
  if (auto st = budget_.save(now); !st) log_warning("budget: " + st.error().what());
  // The over-budget set changed what the kernel's policies hold (and so
  // their budget leave masks) or nothing at all: most seconds, nothing.
  if (!sla_.set_over_budget(budget_.over_mask(*running_, now), running_.get())) return core::Ok{};
  if (auto st = rewrite_policies("budget update"); !st) return st;
  return program_moves();  // live flows leave an over-budget link too (CLV_MOVE_BUDGET)
}

uint64_t Agent::over_budget() const {
  std::lock_guard lock(mu_);
  return sla_.over_budget();
}

std::vector<uint64_t> Agent::budget_leave() const {
  std::lock_guard lock(mu_);
  return running_ ? sla_.budget_leave(*running_) : std::vector<uint64_t>{};
}

core::Status Agent::program_moves() {
  auto st = dp_.link_state();
  if (!st) return core::error_of(st);
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
  std::vector<MoveNote> said;
  core::MoveDecision d = sla_.moves(*running_, st->up, static_cast<uint64_t>(now_ms), &said);
  note_moves(said);
  return write_moves(d);
}

// Each decision to move live flows (or to stop) is a steering event of its
// link, with its reason ("... (out of SLA): latency 182 ms > voice 150 ms"),
// as a budget crossing is: the link's state is unchanged.
void Agent::note_moves(const std::vector<MoveNote>& said) {
  const int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  for (const MoveNote& m : said) {
    if (m.slot < 0 || m.slot >= CLV_MAX_LINKS) continue;
    LinkChange ev;
    ev.time_unix_ms = now_ms;
    ev.slot = m.slot;
    ev.link = running_->link_info[static_cast<size_t>(m.slot)].name;
    ev.what = m.leave ? "flows leave" : "flows stay";
    ev.reason = m.line;
    ev.source = LinkChange::Source::kSteering;
    changes_.push(ev);
  }
}

core::Status Agent::write_moves(const core::MoveDecision& d) {
  if (!d.changed) return core::Ok{};
  if (auto w = dp_.set_leave(d.leave); !w) return core::fail(core::ErrorCode::kIo, w.error().what(), "live flows");
  return core::Ok{};
}

std::vector<uint64_t> Agent::sla_held_out() const {
  std::lock_guard lock(mu_);
  return running_ ? sla_.move_state().held_out(running_->generation) : std::vector<uint64_t>{};
}

std::vector<std::array<uint64_t, CLV_MOVE_REASONS>> Agent::sla_decisions() const {
  std::lock_guard lock(mu_);
  std::vector<std::array<uint64_t, CLV_MOVE_REASONS>> out;
  if (!running_) return out;
  for (size_t i = 0; i < running_->policies.size(); ++i) out.push_back(sla_.move_state().decisions(i));
  return out;
}

core::LinkQualities Agent::quality() const {
  std::lock_guard lock(mu_);
  return sla_.quality();
}

void Agent::set_verdicts(std::vector<LinkVerdict> verdicts) {
  health_.measure(std::move(verdicts));
}

std::vector<core::Link> Agent::links_of_model() const {
  std::lock_guard lock(mu_);
  return running_mapping_ ? running_mapping_->links : std::vector<core::Link>{};
}

std::vector<LinkChange> Agent::events(uint64_t* seq) const {
  return changes_.list(seq);
}

void Agent::note_event(LinkChange c) {
  changes_.push(c);
}

bool Agent::wait_event(uint64_t seq, std::chrono::milliseconds timeout) const {
  return changes_.wait(seq, timeout);
}

}  // namespace clovis::agent
