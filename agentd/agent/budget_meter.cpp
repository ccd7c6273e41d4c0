#include "agent/budget_meter.hpp"

#include <nlohmann/json.hpp>

#include "agent/agent_state.hpp"

namespace clovis::agent {

namespace {

// Counts of links that left the mapping are kept (it may come back within
// the period), until their period is surely over: two of the longest months.
constexpr int64_t kKeepGone = 62 * 86400;

// The count of `b`'s link at `now`: 0 used once its period ended.
uint64_t used_now(const core::BudgetCount& n, const core::Budget& b, int64_t now) {
  return n.period_start == core::budget_period(now, b.reset_day).start ? n.used : 0;
}

}  // namespace

void BudgetMeter::load() {
  std::map<std::string, core::BudgetCount> read;
  auto j = read_state_json(path_, [&](const nlohmann::json& doc) {
    for (const auto& [name, v] : doc.at("links").items()) {
      core::BudgetCount c;
      c.period_start = v.at("period_start").get<int64_t>();
      c.used = v.at("used").get<uint64_t>();
      if (v.contains("rx"))
        c.last = core::CounterSample{v.at("rx").get<uint64_t>(), v.at("tx").get<uint64_t>(), v.at("ifindex").get<int>(),
                                     v.at("boot_id").get<std::string>()};
      read[name] = std::move(c);
    }
    return true;
  });
  if (j) counts_ = std::move(read);
}

std::vector<BudgetChange> BudgetMeter::sample(const core::CompiledRules& c, HostNetwork& net, int64_t now) {
  std::vector<BudgetChange> changes;
  for (int s = 0; s < CLV_MAX_LINKS; ++s) {
    const core::LinkInfo& li = c.link_info[s];
    if (li.name.empty() || !li.budget) continue;
    core::BudgetCount& n = counts_[li.name];
    const int64_t was_period = n.period_start;
    auto r = net.interface_counters(li.interface);
    if (r) {
      errors_.erase(li.name);
      (void)core::count_budget(n, *r, now, li.budget->reset_day);
      dirty_ = true;  // the reading moved on, if not `used`
    } else {
      errors_[li.name] = r.error().what();
    }
    auto st = status(c, s, now);
    const auto it = over_.find(li.name);
    const bool crossed = it == over_.end() ? st->over : it->second != st->over;
    if (crossed || (was_period && was_period != n.period_start)) changes.push_back({s, li.name, *st});
    over_[li.name] = st->over;
  }
  // A crossing, or a new period, is kept at once.
  if (!changes.empty()) (void)save(now, true);
  return changes;
}

void BudgetMeter::baseline(const core::CompiledRules& c, HostNetwork& net, int64_t now) {
  for (int s = 0; s < CLV_MAX_LINKS; ++s) {
    const core::LinkInfo& li = c.link_info[s];
    if (li.name.empty() || !li.budget) continue;
    auto it = counts_.find(li.name);
    if (it != counts_.end() && it->second.last) continue;
    if (auto r = net.interface_counters(li.interface)) {
      (void)core::count_budget(counts_[li.name], *r, now, li.budget->reset_day);
      dirty_ = true;
    }
  }
}

uint64_t BudgetMeter::over_mask(const core::CompiledRules& c, int64_t now) const {
  uint64_t m = 0;
  for (int s = 0; s < CLV_MAX_LINKS; ++s) {
    const auto st = status(c, s, now);
    if (st && st->over) m |= 1ull << s;
  }
  return m;
}

std::optional<BudgetStatus> BudgetMeter::status(const core::CompiledRules& c, int slot, int64_t now) const {
  const core::LinkInfo& li = c.link_info[static_cast<size_t>(slot)];
  if (li.name.empty() || !li.budget) return std::nullopt;
  BudgetStatus st;
  st.limit_bytes = li.budget->limit_bytes;
  st.resets_unix_s = core::budget_period(now, li.budget->reset_day).end;
  if (auto it = counts_.find(li.name); it != counts_.end()) st.used_bytes = used_now(it->second, *li.budget, now);
  st.over = st.used_bytes >= st.limit_bytes;
  if (auto it = errors_.find(li.name); it != errors_.end()) st.error = it->second;
  return st;
}

core::Status BudgetMeter::save(int64_t now, bool force) {
  if (!dirty_ || (!force && now - saved_unix_s_ < kSaveEvery)) return core::Ok{};
  nlohmann::json links = nlohmann::json::object();
  for (auto it = counts_.begin(); it != counts_.end();) {
    if (now - it->second.period_start > kKeepGone) {
      it = counts_.erase(it);
      continue;
    }
    const core::BudgetCount& n = it->second;
    nlohmann::json e = {{"period_start", n.period_start}, {"used", n.used}};
    if (n.last) {
      e["rx"] = n.last->rx_bytes;
      e["tx"] = n.last->tx_bytes;
      e["ifindex"] = n.last->ifindex;
      e["boot_id"] = n.last->boot_id;
    }
    links[it->first] = std::move(e);
    ++it;
  }
  auto st = write_file_atomic(path_, nlohmann::json{{"links", links}}.dump(2) + "\n");
  if (st) dirty_ = false, saved_unix_s_ = now;
  return st;
}

}  // namespace clovis::agent
