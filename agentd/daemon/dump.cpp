#include "daemon/dump.hpp"

#include <ctime>
#include <filesystem>

#include <fmt/format.h>

#include "agent/agent.hpp"
#include "core/json/flow_json.hpp"
#include "log/log.hpp"
#include "telemetry/counter_names.hpp"

namespace clovis::agent {

namespace {

using nlohmann::json;

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

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
  json counters = json::object();
  for (size_t i = 0; i < kStatNames.size(); ++i) counters[kStatNames[i]] = (*gc)[i];
  json flows = json::array();
  const uint64_t now = monotonic_ns();
  // Named from the persisted rule set only: a dump reads the kernel's state
  // without a running agent's older generations.
  std::vector<core::RulesPtr> sets;
  if (rules) sets.push_back(std::make_shared<const core::CompiledRules>(*rules));
  const core::FlowNaming naming(std::move(sets));
  core::FlowRowText text;
  for (const auto& e : *fl) flows.push_back(core::flow_json(core::flow_row(naming, e.key, e.flow, now, text)));
  json doc = {{"generation", *gen}, {"links", links}, {"counters", counters}, {"flows", flows}};
  out << doc.dump(2) << "\n";
  return 0;
}

}  // namespace clovis::agent
