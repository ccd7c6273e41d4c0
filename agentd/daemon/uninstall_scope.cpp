#include "daemon/uninstall_scope.hpp"

#include <linux/fib_rules.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <algorithm>

#include "agent/agent.hpp"
#include "agent/agent_state.hpp"
#include "core/pipeline.hpp"

namespace clovis::agent {

using kernel::kRtProtClovis;

void KnownLinks::add(const core::CompiledRules& c) {
  for (int s = 0; s < CLV_MAX_LINKS; ++s) {
    if (c.link_info[s].name.empty()) continue;
    const clv_link& l = c.links[s];
    mark_table.insert({l.mark, l.table});
    tables.insert(l.table);
    if (!(l.flags & CLV_LINK_GWMAC)) continue;
    std::array<uint8_t, 6> mac;
    std::copy(std::begin(l.gw_mac), std::end(l.gw_mac), mac.begin());
    if (l.flags & CLV_LINK_GW4) {
      const uint32_t w[4] = {l.gw4, 0, 0, 0};
      gateway_macs.push_back({AF_INET, core::IpAddr::from_words(core::Family::kV4, w).bytes, mac});
    }
    if (l.flags & CLV_LINK_GW6)
      gateway_macs.push_back({AF_INET6, core::IpAddr::from_words(core::Family::kV6, l.gw6).bytes, mac});
  }
}

KnownLinks known_links(const std::string& state_dir) {
  KnownLinks k;
  if (auto c = load_persisted(state_dir)) k.add(*c);
  History history(state_dir);
  history.load();
  for (const auto& e : history.entries()) {
    auto text = history.text(e.generation);
    if (!text) continue;
    auto checked = core::check_mapping(*text);
    if (checked.compiled) k.add(*checked.compiled);
  }
  return k;
}

bool clovis_rule(const kernel::RuleEntry& r, const KnownLinks& k, uint32_t pref_base) {
  if (r.protocol == kRtProtClovis) return true;
  return r.has_mark && r.mask == 0xffffffffu && r.action == FR_ACT_TO_TBL && r.pref >= pref_base &&
         r.pref < pref_base + CLV_MAX_LINKS && k.mark_table.count({r.mark, r.table}) > 0;
}

bool clovis_route(const kernel::RouteEntry& r, const std::set<uint32_t>& tables) {
  const bool reserved = r.table == RT_TABLE_UNSPEC || r.table == RT_TABLE_MAIN || r.table == RT_TABLE_LOCAL ||
                        r.table == RT_TABLE_DEFAULT;
  return r.protocol == kRtProtClovis || (tables.count(r.table) > 0 && !reserved);
}

bool clovis_neighbor(const kernel::NeighEntry& n, const KnownLinks& k) {
  if (!(n.state & NUD_PERMANENT)) return false;
  if (n.protocol == kRtProtClovis) return true;
  const auto len = static_cast<long>(n.family == AF_INET ? 4 : 16);
  return std::any_of(k.gateway_macs.begin(), k.gateway_macs.end(), [&](const KnownLinks::GatewayMac& g) {
    return g.family == n.family && n.has_lladdr && g.mac == n.lladdr &&
           std::equal(g.addr.begin(), g.addr.begin() + len, n.addr.begin());
  });
}

}  // namespace clovis::agent
