// The agent's state on disk and what it made outside BPF, as a restarted or
// uninstalling clovisd finds them: saving and reading the running mapping
// and its link slots, and removing the policy routing (agent.cpp applies).
#include <nlohmann/json.hpp>

#include "agent/agent.hpp"

namespace clovis::agent {

core::Status Agent::remove_routes() {
  std::lock_guard lock(mu_);
  if (routes_.none_installed()) return remove_persisted_routes(opts_, net_);
  return routes_.remove_installed();
}

core::Status remove_persisted_routes(const AgentOptions& opts, HostNetwork& net) {
  for (const auto& rl : load_route_ledger(opts.state_dir))
    if (auto st = net.remove_route_link(rl); !st) return st;
  (void)save_route_ledger(opts.state_dir, {});
  auto c = load_persisted(opts.state_dir);
  if (!c) return core::Ok{};
  for (int s = 0; s < CLV_MAX_LINKS; ++s) {
    const clv_link& l = c->links[s];
    if (c->link_info[s].name.empty() || l.mode != CLV_MODE_ROUTE) continue;
    // The interface may be gone: the rule and table go by mark/table/pref alone.
    RouteLink rl;
    rl.interface = c->link_info[s].interface;
    rl.mark = l.mark;
    rl.table = l.table;
    rl.pref = opts.rule_pref_base + static_cast<uint32_t>(s);
    if (auto st = net.remove_route_link(rl); !st) return st;
  }
  return core::Ok{};
}

core::Status Agent::persist(const std::string& text, const core::CompiledRules& c) {
  nlohmann::json links = nlohmann::json::object();
  for (int s = 0; s < CLV_MAX_LINKS; ++s)
    if (!c.link_info[s].name.empty()) links[c.link_info[s].name] = {{"slot", s}, {"epoch", c.links[s].epoch}};
  nlohmann::json state = {{"generation", c.generation}, {"links", links}};
  if (auto st = write_file_atomic(opts_.state_dir + "/mapping.yaml", text); !st) return st;
  return write_file_atomic(opts_.state_dir + "/state.json", state.dump(2) + "\n");
}

namespace {

// state.json's slots: {"generation": N, "links": {NAME: {"slot": S, "epoch": E}}}.
// Throws nlohmann's exceptions on a wrong shape (the callers decide).
core::CompiledRules slots_of(const nlohmann::json& j) {
  core::CompiledRules prev;
  prev.generation = j.at("generation").get<uint32_t>();
  for (const auto& [name, v] : j.at("links").items()) {
    const int slot = v.at("slot").get<int>();
    if (slot < 0 || slot >= CLV_MAX_LINKS || name.empty()) throw std::out_of_range("link slot");
    prev.link_info[slot].name = name;
    prev.links[slot].epoch = v.at("epoch").get<uint32_t>();
  }
  return prev;
}

}  // namespace

// Read-only (clovisd --dump runs beside the agent): a bad file is nothing.
std::optional<core::CompiledRules> load_persisted(const std::string& state_dir) {
  auto text = core::read_file(state_dir + "/mapping.yaml");
  auto state = core::read_file(state_dir + "/state.json");
  if (!text || !state) return std::nullopt;
  core::CompiledRules slots;
  try {
    slots = slots_of(nlohmann::json::parse(*state));
  } catch (const std::exception&) {
    return std::nullopt;
  }
  core::CompileOptions o;
  o.previous = &slots;
  o.generation = slots.generation;
  auto checked = core::check_mapping(*text, o);
  if (!checked.ok()) return std::nullopt;
  return std::move(*checked.compiled);
}

// The slots the last run used. A state.json that is not what clovisd writes
// is set aside: links then take fresh slots, and their flows reclassify.
std::optional<core::CompiledRules> Agent::load_previous_slots() {
  std::optional<core::CompiledRules> prev;
  (void)read_state_json(opts_.state_dir + "/state.json", [&](const nlohmann::json& j) {
    prev = slots_of(j);
    return true;
  });
  return prev;
}

}  // namespace clovis::agent
