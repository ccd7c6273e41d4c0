#include "telemetry/sessions.hpp"

#include <cstring>

namespace clovis::agent {

namespace {

void clip(std::string& s, size_t n) {
  if (s.size() > n) s.resize(n);
}

}  // namespace

void SessionTable::record(const clv_flow_key& key, SessionFacts facts) {
  if (capacity_ == 0) return;
  clip(facts.host, kMaxHost);
  clip(facts.path, kMaxPath);
  clip(facts.method, kMaxMethod);
  for (auto& [name, value] : facts.headers) clip(value, kMaxHeaderValue);
  const std::lock_guard lock(mu_);
  if (auto it = map_.find(key); it != map_.end()) {
    facts.checks = it->second.facts.checks + 1;
    it->second.facts = std::move(facts);
    order_.splice(order_.begin(), order_, it->second.pos);
    return;
  }
  if (map_.size() >= capacity_) {
    map_.erase(order_.back());
    order_.pop_back();
  }
  facts.checks = 1;
  order_.push_front(key);
  map_.emplace(key, Entry{std::move(facts), order_.begin()});
}

std::optional<SessionFacts> SessionTable::find(const clv_flow_key& key) const {
  const std::lock_guard lock(mu_);
  auto it = map_.find(key);
  if (it == map_.end()) return std::nullopt;
  return it->second.facts;
}

size_t SessionTable::prune(uint64_t before_ns, const std::function<bool(const clv_flow_key&)>& alive) {
  std::vector<clv_flow_key> old;
  {
    const std::lock_guard lock(mu_);
    for (auto it = order_.rbegin(); it != order_.rend(); ++it) {  // oldest first
      if (map_.at(*it).facts.seen_ns >= before_ns) break;
      old.push_back(*it);
    }
  }
  std::vector<clv_flow_key> gone;
  for (const auto& k : old)
    if (!alive(k)) gone.push_back(k);
  const std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& k : gone) {
    auto it = map_.find(k);
    // Reported again meanwhile: its flow is back (or was never gone).
    if (it == map_.end() || it->second.facts.seen_ns >= before_ns) continue;
    order_.erase(it->second.pos);
    map_.erase(it);
    ++n;
  }
  return n;
}

size_t SessionTable::size() const {
  const std::lock_guard lock(mu_);
  return map_.size();
}

}  // namespace clovis::agent
