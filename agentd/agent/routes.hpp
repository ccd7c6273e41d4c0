// The policy routing the agent makes for its links, and routes.json (the
// ledger of what it made or is about to make): what is installed, which
// slots have their routing in place, when the kernel last refused a slot's,
// and the order routing goes in and out around an apply's flip (Agent's
// write_kernel). Under the agent's lock: it has none of its own.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "core/compiled.hpp"
#include "core/result.hpp"
#include "ports/dataplane.hpp"
#include "ports/host_network.hpp"

namespace clovis::agent {

// Equal routing: the same interface, mark, table, preference and gateways.
bool same_route(const RouteLink& a, const RouteLink& b);

class RouteKeeper {
 public:
  using Clock = std::chrono::steady_clock;
  // Routing refused by the kernel is tried again after this long when the
  // host did not say it changed.
  static constexpr auto kRetry = std::chrono::seconds(5);

  // Reads the ledger: what an earlier run made (or was about to, when it
  // died) counts as installed, so the first apply removes what its mapping
  // does not want.
  RouteKeeper(std::string state_dir, uint32_t rule_pref_base, HostNetwork& net);

  // The policy routing of the links the host can use (whatever the health
  // checker says: its probes leave by this routing): a table with a default
  // route for each family the link can carry, and its fwmark rule.
  std::vector<RouteLink> links(const core::CompiledRules& c, const ResolvedRules& r) const;

  // Downs the link in `slot` for `reason` (a refusal by the kernel): the
  // routing of a slot refused this way is retried only after kRetry.
  void mark_down(ResolvedRules& r, int slot, std::string reason);

  // An apply's routing, in the order that keeps both rule sets whole (see
  // Agent::write_kernel). `Plan` is the routing wanted and what went in.
  struct Plan {
    std::vector<RouteLink> routes;  // links(c, r)
    std::vector<RouteLink> placed;  // installed so far
    uint64_t handover = 0;
  };
  // Before the flip: records the wanted routing in the ledger, then installs
  // that of links that are new or stay. An error: nothing was installed.
  core::Result<Plan> place_before_flip(ResolvedRules& r);
  // The flip failed: removes what place_before_flip added and puts back
  // what was installed before.
  void undo(const Plan& p);
  // After the flip: removes the routing of links that are gone (reinstalling
  // a staying link's that went with it), then installs that of links taking
  // over a slot.
  void place_after_flip(ResolvedRules& r, Plan& p);
  // What went in is now what is installed; the ledger says exactly that.
  void commit(const Plan& p);

  // The periodic or netlink-driven look: links that can no longer carry
  // traffic lose their claim on routing (the kernel may flush their routes,
  // an interface set down), and usable links that lack routing get it. A
  // link whose routing was refused (its reason in `host_reason`) is tried
  // again on a host event, else every kRetry.
  void sync(ResolvedRules& r, bool host_event, const std::array<std::string, CLV_MAX_LINKS>& host_reason);

  // Slots whose routing went in while they were usable.
  uint64_t routed() const { return routed_; }
  bool none_installed() const { return installed_.empty(); }
  const std::vector<RouteLink>& installed() const { return installed_; }
  // Removes all installed routing (the first refusal stops it).
  core::Status remove_installed();

 private:
  core::Status note(const std::vector<RouteLink>& more);
  void settle();
  bool install_or_down(ResolvedRules& r, const RouteLink& rl);

  std::string state_dir_;
  uint32_t rule_pref_base_;
  HostNetwork& net_;
  std::vector<RouteLink> installed_;
  std::vector<RouteLink> ledger_;  // routes.json as last written
  uint64_t routed_ = 0;
  std::array<Clock::time_point, CLV_MAX_LINKS> refused_at_{};  // routing last refused
};

}  // namespace clovis::agent
