#include "uninstall.hpp"

#include <linux/fib_rules.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <filesystem>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "agent_state.hpp"
#include "kernel/netlink.hpp"
#include "kernel/tc_attach.hpp"
#include "kernel/tc_leftovers.hpp"
#include "log.hpp"
#include "pipeline.hpp"

namespace clovis::agent {

namespace {

using kernel::kRtProtClovis;

// What clovis's mappings made, as far as the state directory remembers.
struct Known {
  std::set<std::pair<uint32_t, uint32_t>> mark_table;  // the links' fwmark rules
  std::set<uint32_t> tables;
  struct GatewayMac {
    int family;
    std::array<uint8_t, 16> addr;
    std::array<uint8_t, 6> mac;
  };
  std::vector<GatewayMac> gateway_macs;
};

void add_links(const core::CompiledRules& c, Known* k) {
  for (int s = 0; s < CLV_MAX_LINKS; ++s) {
    if (c.link_info[s].name.empty()) continue;
    const clv_link& l = c.links[s];
    k->mark_table.insert({l.mark, l.table});
    k->tables.insert(l.table);
    if (!(l.flags & CLV_LINK_GWMAC)) continue;
    std::array<uint8_t, 6> mac;
    std::copy(std::begin(l.gw_mac), std::end(l.gw_mac), mac.begin());
    if (l.flags & CLV_LINK_GW4) {
      const uint32_t w[4] = {l.gw4, 0, 0, 0};
      k->gateway_macs.push_back({AF_INET, core::IpAddr::from_words(core::Family::kV4, w).bytes, mac});
    }
    if (l.flags & CLV_LINK_GW6)
      k->gateway_macs.push_back({AF_INET6, core::IpAddr::from_words(core::Family::kV6, l.gw6).bytes, mac});
  }
}

// The persisted mapping with its slots, and every mapping of the history
// (their slots, and so default marks, may differ: the protocol tag is what
// finds rules; these add the gateway MACs made before neighbours had one).
Known known_state(const std::string& state_dir) {
  Known k;
  if (auto c = load_persisted(state_dir)) add_links(*c, &k);
  History history(state_dir);
  history.load();
  for (const auto& e : history.entries()) {
    auto text = history.text(e.generation);
    if (!text) continue;
    auto checked = core::check_mapping(*text);
    if (checked.compiled) add_links(*checked.compiled, &k);
  }
  return k;
}

bool reserved_table(uint32_t t) {
  return t == RT_TABLE_UNSPEC || t == RT_TABLE_MAIN || t == RT_TABLE_LOCAL || t == RT_TABLE_DEFAULT;
}

bool clovis_rule(const kernel::RuleEntry& r, const Known& k, uint32_t pref_base) {
  if (r.protocol == kRtProtClovis) return true;
  return r.has_mark && r.mask == 0xffffffffu && r.action == FR_ACT_TO_TBL && r.pref >= pref_base &&
         r.pref < pref_base + CLV_MAX_LINKS && k.mark_table.count({r.mark, r.table}) > 0;
}

bool clovis_neighbor(const kernel::NeighEntry& n, const Known& k) {
  if (!(n.state & NUD_PERMANENT)) return false;
  if (n.protocol == kRtProtClovis) return true;
  const size_t len = n.family == AF_INET ? 4 : 16;
  for (const auto& g : k.gateway_macs)
    if (g.family == n.family && n.has_lladdr && g.mac == n.lladdr &&
        std::equal(g.addr.begin(), g.addr.begin() + static_cast<long>(len), n.addr.begin()))
      return true;
  return false;
}

struct Tally {
  size_t rules = 0, routes = 0, neighbors = 0;
  std::vector<std::string> errors;
  void check(const core::Status& st) {
    if (!st) errors.push_back(st.error().what());
  }
};

// Rules first, so no marked packet is sent to a table being emptied.
void remove_policy_routing(kernel::Netlink& nl, const Known& known, uint32_t pref_base, Tally* t) {
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
      const bool ours = r.protocol == kRtProtClovis || (tables.count(r.table) && !reserved_table(r.table));
      if (!ours) continue;
      auto st = nl.delete_route(r);
      t->routes += st.ok();
      t->check(st);
    }
  }
}

void remove_neighbors(kernel::Netlink& nl, const Known& known, Tally* t) {
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
  const Known known = known_state(o.agent.state_dir);
  if (auto nl = kernel::Netlink::open(); !nl) {
    t.errors.push_back(nl.error().what());
  } else {
    remove_policy_routing(*nl, known, o.agent.rule_pref_base, &t);
    remove_neighbors(*nl, known, &t);
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
