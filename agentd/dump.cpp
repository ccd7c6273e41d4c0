#include "dump.hpp"

#include <ctime>
#include <filesystem>

#include <fmt/format.h>

#include "agent.hpp"
#include "log.hpp"

namespace clovis::agent {

namespace {

using nlohmann::json;

std::string addr(const uint32_t w[4], uint8_t family) {
  return core::IpAddr::from_words(family == CLV_AF_INET ? core::Family::kV4 : core::Family::kV6, w).str();
}

const char* action_name(uint8_t a) {
  switch (a) {
    case CLV_ACT_STEER: return "steer";
    case CLV_ACT_BYPASS: return "bypass";
    case CLV_ACT_DROP: return "drop";
  }
  return "not-steered";
}

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

json flow_json(const FlowEntry& e, const core::CompiledRules* rules, uint64_t now_ns) {
  const auto& k = e.key;
  const auto& f = e.flow;
  json flags = json::array();
  if (f.flags & CLV_FLOW_NAT) flags.push_back("nat");
  if (f.flags & CLV_FLOW_PROXY) flags.push_back("proxy");
  if (f.flags & CLV_FLOW_MIGRATED) flags.push_back("migrated");
  if (f.flags & CLV_FLOW_LOCAL) flags.push_back("local");
  const bool steered = f.action == CLV_ACT_STEER && !(f.flags & CLV_FLOW_LOCAL);
  std::string rule = fmt::format("#{}", f.rule_id), link;
  if (rules && rules->generation == f.generation && f.rule_id < rules->rules.size()) rule = rules->rules[f.rule_id].name;
  if (steered) link = rules && !rules->link_info[f.link].name.empty() ? rules->link_info[f.link].name : fmt::format("#{}", f.link);
  json j = {{"family", k.family == CLV_AF_INET ? "ipv4" : "ipv6"},
            {"src", addr(k.src, k.family)},
            {"dst", addr(k.dst, k.family)},
            {"sport", k.sport},
            {"dport", k.dport},
            {"proto", core::proto_name(k.proto)},
            {"action", (f.flags & CLV_FLOW_LOCAL) ? "local" : action_name(f.action)},
            {"rule", (f.flags & CLV_FLOW_LOCAL) ? json(nullptr) : json(rule)},
            {"link", steered ? json(link) : json(nullptr)},
            {"generation", f.generation},
            {"flags", flags},
            {"packets_out", f.pkts_out},
            {"bytes_out", f.bytes_out},
            {"packets_in", f.pkts_in},
            {"bytes_in", f.bytes_in},
            {"age_s", f.first_ns && now_ns > f.first_ns ? static_cast<double>(now_ns - f.first_ns) / 1e9 : 0.0},
            {"idle_s", f.last_ns && now_ns > f.last_ns ? static_cast<double>(now_ns - f.last_ns) / 1e9 : 0.0}};
  if (f.flags & CLV_FLOW_NAT) j["nat"] = fmt::format("{}:{}", addr(f.nat_addr, k.family), f.nat_port);
  return j;
}

int dump_state(const kernel::BpfOptions& bpf, const std::string& state_dir, std::ostream& out) {
  if (!std::filesystem::exists(bpf.pin_dir + "/maps/clv_flows")) {
    log_error(fmt::format("clovis is not installed here: no pinned maps under {}/maps", bpf.pin_dir));
    return 1;
  }
  auto dp = kernel::BpfDataplane::open(bpf);
  if (!dp) {
    log_error(dp.error().what());
    return 1;
  }
  auto rules = load_persisted(state_dir);
  auto gen = (*dp)->active_generation();
  auto st = (*dp)->link_state();
  auto lc = (*dp)->link_counters();
  auto gc = (*dp)->counters();
  auto fl = (*dp)->flows();
  if (!gen || !st || !lc || !gc || !fl) {
    log_error("reading the kernel state failed");
    return 1;
  }
  json links = json::array();
  for (int s = 0; s < CLV_MAX_LINKS; ++s) {
    const auto& c = (*lc)[s];
    bool named = rules && !rules->link_info[s].name.empty();
    if (!named && !c.tx_packets && !c.rx_packets) continue;
    links.push_back({{"slot", s},
                     {"name", named ? json(rules->link_info[s].name) : json(nullptr)},
                     {"interface", named ? json(rules->link_info[s].interface) : json(nullptr)},
                     {"up", static_cast<bool>((st->up >> s) & 1)},
                     {"degraded", static_cast<bool>((st->degraded >> s) & 1)},
                     {"tx_packets", c.tx_packets},
                     {"tx_bytes", c.tx_bytes},
                     {"rx_packets", c.rx_packets},
                     {"rx_bytes", c.rx_bytes},
                     {"new_flows", c.new_flows},
                     {"migrated", c.migrated}});
  }
  static const char* kStat[CLV_STAT_MAX] = {"packets", "not_ip", "fragment", "malformed", "flow_hit", "new_flow",
                                            "local", "not_steered", "bypass", "drop_rule", "drop_no_link",
                                            "ttl_expired", "redirect_err", "nat_exhausted", "reclassified",
                                            "migrated", "return"};
  json counters = json::object();
  for (int i = 0; i < CLV_STAT_MAX; ++i) counters[kStat[i]] = (*gc)[i];
  json flows = json::array();
  const uint64_t now = monotonic_ns();
  for (const auto& e : *fl) flows.push_back(flow_json(e, rules ? &*rules : nullptr, now));
  json doc = {{"generation", *gen}, {"links", links}, {"counters", counters}, {"flows", flows}};
  out << doc.dump(2) << "\n";
  return 0;
}

}  // namespace clovis::agent
