// What a proxy told clovisd about the sessions it reported (ext_authz Check):
// the L7 facts that chose each pinned connection's link. The kernel's flow
// entry has no room for a host or a header, so they live here, keyed by the
// same 5-tuple, and `clovisctl flows` joins the two.
//
// Bounded: at capacity the least recently reported session goes. An entry
// also goes when its flow leaves the kernel table (prune(), from the daemon's
// housekeeping), so it lives as long as the flow it describes. Thread-safe:
// Checks write from gRPC threads while listings read.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ports/dataplane.hpp"

namespace clovis::agent {

struct SessionFacts {
  std::string rule;  // the rule that decided (an L7 rule, an L3/L4 rule or the default)
  bool by_l7 = false;
  std::string host, method, path;
  // The request's values of the headers the deciding rule matched on.
  std::vector<std::pair<std::string, std::string>> headers;
  uint64_t seen_ns = 0;  // CLOCK_MONOTONIC of the last Check on this connection
  uint64_t checks = 0;   // Checks on this connection (HTTP keep-alive: many)
};

class SessionTable {
 public:
  // Lengths kept of what a client sent: enough to recognise, bounded memory.
  static constexpr size_t kMaxHost = 255, kMaxPath = 256, kMaxMethod = 16, kMaxHeaderValue = 128;

  explicit SessionTable(size_t capacity) : capacity_(capacity) {}

  // Records the latest Check of a connection (the facts replace the older
  // ones, `checks` counts on). Over capacity, the oldest session goes.
  void record(const clv_flow_key& key, SessionFacts facts);
  std::optional<SessionFacts> find(const clv_flow_key& key) const;
  // Removes sessions last reported before `before_ns` whose flow `alive`
  // says is gone; returns how many went. `alive` runs without the lock held.
  size_t prune(uint64_t before_ns, const std::function<bool(const clv_flow_key&)>& alive);
  size_t size() const;
  size_t capacity() const { return capacity_; }

 private:
  using Order = std::list<clv_flow_key>;  // most recently reported first
  struct Entry {
    SessionFacts facts;
    Order::iterator pos;
  };
  const size_t capacity_;
  mutable std::mutex mu_;
  Order order_;
  std::unordered_map<clv_flow_key, Entry, FlowKeyHash, FlowKeyEq> map_;
};

}  // namespace clovis::agent
