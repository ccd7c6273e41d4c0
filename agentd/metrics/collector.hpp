// The Prometheus collector: builds every clovis_ family at scrape time from
// the Sources' snapshots and the Events' counters (docs/METRICS.md lists
// them). Per-CPU kernel counters are summed here, once per scrape; the
// flow tables are never read (their fill comes from the last expiry sweep).
// Collect() may run on any thread (the exposer's), alone or with others.
#pragma once

#include <atomic>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include "metrics/events.hpp"
#include "metrics/sources.hpp"

namespace clovis::agent::metrics {

class Collector final : public prometheus::Collectable {
 public:
  Collector(Sources sources, const Events& events) : src_(std::move(sources)), events_(events) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  class Out;
  void collect_links(Out& out, const TableFill* fill) const;
  // The kernel's per-link drops by reason and migrations from -> to, and the
  // expiry sweep's per-link flow and NAT binding counts.
  void collect_link_kernel(Out& out, const std::vector<LinkView>& links, const TableFill* fill) const;
  void collect_probes(Out& out) const;
  void collect_policies(Out& out, const std::vector<LinkView>& links) const;
  void collect_datapath(Out& out, const TableFill* fill) const;
  void collect_control(Out& out) const;
  // A source that failed is left out of the scrape (the others are served);
  // the first failure is logged.
  void failed(const std::string& what, const core::Error& e) const;

  Sources src_;
  const Events& events_;
  mutable std::atomic<bool> warned_{false};
};

}  // namespace clovis::agent::metrics
