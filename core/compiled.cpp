#include "compiled.hpp"

namespace clovis::core {

int CompiledRules::link_slot(const std::string& name) const {
  for (int s = 0; s < CLV_MAX_LINKS; ++s)
    if (!link_info[s].name.empty() && link_info[s].name == name) return s;
  return -1;
}

int CompiledRules::policy_index(const std::string& name) const {
  for (size_t i = 0; i < policy_info.size(); ++i)
    if (policy_info[i].name == name) return static_cast<int>(i);
  return -1;
}

uint32_t CompiledRules::iif_id(const std::string& interface) const {
  for (size_t i = 0; i < iifs.size(); ++i)
    if (iifs[i] == interface) return static_cast<uint32_t>(i + 1);
  return 0;
}

clv_link_state CompiledRules::all_up_state() const {
  clv_link_state st{};
  for (int s = 0; s < CLV_MAX_LINKS; ++s) {
    if (link_info[s].name.empty()) continue;
    const uint64_t bit = 1ull << s;
    st.up |= bit;
    if (links[s].flags & (CLV_LINK_GW4 | CLV_LINK_P2P)) st.v4 |= bit;
    if (links[s].flags & (CLV_LINK_GW6 | CLV_LINK_P2P)) st.v6 |= bit;
  }
  return st;
}

std::vector<LinkRouting> link_routing(const CompiledRules& c) {
  std::vector<LinkRouting> out;
  for (int s = 0; s < CLV_MAX_LINKS; ++s) {
    const LinkInfo& li = c.link_info[s];
    if (li.name.empty()) continue;
    const clv_link& l = c.links[s];
    const bool p2p = (l.flags & CLV_LINK_P2P) != 0;
    out.push_back({s, li.name, li.interface, li.mode, l.mark, l.table, p2p || (l.flags & CLV_LINK_GW4) != 0,
                   p2p || (l.flags & CLV_LINK_GW6) != 0});
  }
  return out;
}

CompiledRules slot_layout(const std::vector<std::pair<std::string, int>>& slots) {
  CompiledRules c;
  for (const auto& [name, slot] : slots)
    if (slot >= 0 && slot < CLV_MAX_LINKS) c.link_info[static_cast<size_t>(slot)].name = name;
  return c;
}

}  // namespace clovis::core
