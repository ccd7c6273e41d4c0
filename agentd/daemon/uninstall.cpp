#include "daemon/uninstall.hpp"

#include <sys/socket.h>

#include <filesystem>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "daemon/uninstall_scope.hpp"
#include "kernel/tc_attach.hpp"
#include "kernel/tc_leftovers.hpp"
#include "log/log.hpp"
#include "netlink/netlink.hpp"

namespace clovis::agent {

namespace {

struct Tally {
  size_t rules = 0, routes = 0, neighbors = 0;
  std::vector<std::string> errors;
  void check(const core::Status& st) {
    if (!st) errors.push_back(st.error().what());
  }
};

// Rules first, so no marked packet is sent to a table being emptied.
void remove_policy_routing(kernel::Netlink& nl, const KnownLinks& known, uint32_t pref_base, Tally* t) {
  for (int family : {AF_INET, AF_INET6}) {
    std::set<uint32_t> tables = known.tables;
    auto rules = nl.rules(family);
    if (!rules) {
      t->errors.push_back(rules.error().what());
      continue;
    }
    for (const auto& r : *rules) {
      if (!clovis_rule(r, known, pref_base)) continue;
      tables.insert(r.table);
      auto st = nl.delete_rule(r);
      t->rules += st.ok();
      t->check(st);
    }
    auto routes = nl.routes(family);
    if (!routes) {
      t->errors.push_back(routes.error().what());
      continue;
    }
    for (const auto& r : *routes) {
      if (!clovis_route(r, tables)) continue;
      auto st = nl.delete_route(r);
      t->routes += st.ok();
      t->check(st);
    }
  }
}

void remove_neighbors(kernel::Netlink& nl, const KnownLinks& known, Tally* t) {
  for (int family : {AF_INET, AF_INET6}) {
    auto neighbors = nl.neighbors(family);
    if (!neighbors) {
      t->errors.push_back(neighbors.error().what());
      continue;
    }
    for (const auto& n : *neighbors) {
      if (!clovis_neighbor(n, known)) continue;
      auto st = nl.delete_neighbor(n);
      t->neighbors += st.ok();
      t->check(st);
    }
  }
}

}  // namespace

int uninstall(const DaemonOptions& o) {
  Tally t;
  // Detach first: steering stops before the routing it relies on goes.
  kernel::TcAttacher tc(o.bpf.pin_dir, o.agent.state_dir);
  size_t attachments = tc.pinned().size();
  t.check(tc.detach_all());
  attachments += kernel::detach_legacy_leftovers(&t.errors);
  const KnownLinks known = known_links(o.agent.state_dir);
  if (auto nl = kernel::Netlink::open(); !nl) {
    t.errors.push_back(nl.error().what());
  } else {
    remove_policy_routing(*nl, known, o.agent.rule_pref_base, &t);
    remove_neighbors(*nl, known, &t);
    // Everything routes.json lists carries proto 0xc1 and went above.
    if (t.errors.empty()) {
      std::error_code gone;
      std::filesystem::remove(o.agent.state_dir + "/routes.json", gone);
    }
  }
  t.check(kernel::BpfDataplane::unpin_all(o.bpf.pin_dir));
  std::error_code ec;
  std::filesystem::remove_all(o.bpf.pin_dir, ec);
  if (ec) t.errors.push_back(fmt::format("remove {}: {}", o.bpf.pin_dir, ec.message()));
  for (const auto& e : t.errors) log_error("uninstall: " + e);
  log_info(fmt::format("uninstall{}: {} attachments detached, {} rules, {} routes and {} neighbours removed, {} {}",
                       t.errors.empty() ? "ed" : " incomplete", attachments, t.rules, t.routes, t.neighbors,
                       o.bpf.pin_dir, ec ? "not removed" : "removed"));
  return t.errors.empty() ? 0 : 1;
}

}  // namespace clovis::agent
