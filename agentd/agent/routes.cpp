#include "agent/routes.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "agent/agent_state.hpp"
#include "log/log.hpp"

namespace clovis::agent {

bool same_route(const RouteLink& a, const RouteLink& b) {
  return a.ifindex == b.ifindex && a.mark == b.mark && a.table == b.table && a.pref == b.pref && a.gw4 == b.gw4 &&
         a.gw6 == b.gw6 && a.point_to_point == b.point_to_point;
}

RouteKeeper::RouteKeeper(std::string state_dir, uint32_t rule_pref_base, HostNetwork& net)
    : state_dir_(std::move(state_dir)), rule_pref_base_(rule_pref_base), net_(net) {
  installed_ = ledger_ = load_route_ledger(state_dir_);
}

// Records routing before it is made: `more` joins what the ledger holds.
core::Status RouteKeeper::note(const std::vector<RouteLink>& more) {
  std::vector<RouteLink> next = ledger_;
  for (const auto& rl : more)
    if (!std::any_of(next.begin(), next.end(), [&](const RouteLink& o) { return same_route(o, rl); }))
      next.push_back(rl);
  if (next.size() == ledger_.size()) return core::Ok{};
  if (auto st = save_route_ledger(state_dir_, next); !st) return st;
  ledger_ = std::move(next);
  return core::Ok{};
}

// The ledger after routing was removed: exactly what is installed.
void RouteKeeper::settle() {
  if (ledger_.size() == installed_.size() && std::all_of(ledger_.begin(), ledger_.end(), [&](const RouteLink& l) {
        return std::any_of(installed_.begin(), installed_.end(), [&](const RouteLink& o) { return same_route(o, l); });
      }))
    return;
  if (auto st = save_route_ledger(state_dir_, installed_); !st)
    log_warning("routes.json: " + st.error().what() + " (it lists more than there is; harmless)");
  else ledger_ = installed_;
}

void RouteKeeper::mark_down(ResolvedRules& r, int slot, std::string reason) {
  r.state.up &= ~(1ull << slot);
  r.down_reason[static_cast<size_t>(slot)] = std::move(reason);
  refused_at_[static_cast<size_t>(slot)] = Clock::now();
}

// Installs `rl`; a refusal downs its link with the kernel's reason (and
// removes what went in before it).
bool RouteKeeper::install_or_down(ResolvedRules& r, const RouteLink& rl) {
  if (auto st = net_.install_route_link(rl); !st) {
    (void)net_.remove_route_link(rl);
    mark_down(r, rl.slot, "policy routing refused: " + st.error().what());
    return false;
  }
  return true;
}

void RouteKeeper::sync(ResolvedRules& r, bool host_event, const std::array<std::string, CLV_MAX_LINKS>& host_reason) {
  for (int s = 0; s < CLV_MAX_LINKS; ++s)
    if (!r.down_reason[s].empty()) routed_ &= ~(1ull << s);
  for (const auto& rl : links(*r.rules, r)) {
    const auto s = static_cast<size_t>(rl.slot);
    auto same = [&](const RouteLink& o) { return same_route(o, rl); };
    if ((routed_ >> s & 1) && std::any_of(installed_.begin(), installed_.end(), same)) continue;
    if (!host_event && host_reason[s].rfind("policy routing refused", 0) == 0 &&
        Clock::now() - refused_at_[s] < kRetry) {
      r.state.up &= ~(1ull << s);
      r.down_reason[s] = host_reason[s];
      continue;
    }
    if (auto st = note({rl}); !st) {
      mark_down(r, rl.slot, "cannot save the routing ledger: " + st.error().what());
      continue;
    }
    if (!install_or_down(r, rl)) continue;
    std::erase_if(installed_, [&](const RouteLink& o) { return o.slot == rl.slot; });
    installed_.push_back(rl);
    routed_ |= 1ull << s;
  }
}

std::vector<RouteLink> RouteKeeper::links(const core::CompiledRules& c, const ResolvedRules& r) const {
  std::vector<RouteLink> out;
  for (int s = 0; s < CLV_MAX_LINKS; ++s) {
    const clv_link& l = r.links[s];
    // Every link gets its table: route mode steers data by the mark, and for
    // every link marked local sockets (health probes, a proxy's per-link
    // upstreams) leave by it.
    if (c.link_info[s].name.empty() || !l.ifindex || !r.down_reason[s].empty()) continue;
    RouteLink rl;
    rl.slot = s;
    rl.interface = c.link_info[s].interface;
    rl.ifindex = static_cast<int>(l.ifindex);
    rl.mark = l.mark;
    rl.table = l.table;
    rl.pref = rule_pref_base_ + static_cast<uint32_t>(s);
    rl.point_to_point = l.flags & CLV_LINK_P2P;
    if ((l.flags & CLV_LINK_GW4) && (r.state.v4 >> s & 1))
      rl.gw4 = core::IpAddr::from_words(core::Family::kV4, std::array<uint32_t, 4>{l.gw4, 0, 0, 0}.data());
    if ((l.flags & CLV_LINK_GW6) && (r.state.v6 >> s & 1)) rl.gw6 = core::IpAddr::from_words(core::Family::kV6, l.gw6);
    out.push_back(rl);
  }
  return out;
}

core::Result<RouteKeeper::Plan> RouteKeeper::place_before_flip(ResolvedRules& r) {
  Plan p;
  p.handover = r.handover;
  p.routes = links(*r.rules, r);
  if (auto st = note(p.routes); !st) return core::error_of(st);
  for (const auto& rl : p.routes) {
    if (p.handover >> rl.slot & 1) continue;
    if (install_or_down(r, rl)) p.placed.push_back(rl);
  }
  return p;
}

void RouteKeeper::undo(const Plan& p) {
  for (const auto& rl : p.placed)
    if (!std::any_of(installed_.begin(), installed_.end(), [&](const RouteLink& o) { return o.table == rl.table; }))
      (void)net_.remove_route_link(rl);
  for (const auto& old : installed_) (void)net_.install_route_link(old);
}

void RouteKeeper::place_after_flip(ResolvedRules& r, Plan& p) {
  for (const auto& old : installed_) {
    if (std::any_of(p.placed.begin(), p.placed.end(), [&](const RouteLink& n) { return same_route(n, old); })) continue;
    (void)net_.remove_route_link(old);
    // A link that stays with other routing (its gateway changed): removing
    // the old took the new (the kernel knows them by mark, table and
    // preference alone), so it goes in again.
    for (const auto& n : p.placed)
      if (n.mark == old.mark && n.table == old.table && n.pref == old.pref) {
        if (auto st = net_.install_route_link(n); !st)
          log_warning(fmt::format("policy routing for {}: {} (re-apply to retry)", n.interface, st.error().what()));
      }
  }
  for (const auto& rl : p.routes) {
    if (!(p.handover >> rl.slot & 1)) continue;
    if (install_or_down(r, rl)) p.placed.push_back(rl);
  }
}

void RouteKeeper::commit(const Plan& p) {
  installed_ = p.placed;
  routed_ = 0;
  for (const auto& rl : p.placed) routed_ |= 1ull << rl.slot;
  settle();
}

core::Status RouteKeeper::remove_installed() {
  for (const auto& rl : installed_)
    if (auto st = net_.remove_route_link(rl); !st) return st;
  installed_.clear();
  settle();
  return core::Ok{};
}

}  // namespace clovis::agent
