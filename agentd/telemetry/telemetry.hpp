// What the API reads of the dataplane, and the little state reading it
// needs: per-link rates (a sampler the resident loop feeds every second),
// the classifier of the running rule set (Simulate's), and when the heap is
// due a trim after a request parsed a mapping. The daemon owns one; the
// gRPC service holds it by reference, so that the service keeps no domain
// state and sees none of the Dataplane's writes (apply, link state, pins,
// expiry).
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <mutex>

#include "core/flow_row.hpp"
#include "ports/dataplane.hpp"
#include "telemetry/classifier_cache.hpp"
#include "telemetry/link_sampler.hpp"

namespace clovis::agent {

// CLOCK_MONOTONIC in nanoseconds: the clock of the flow table's timestamps.
uint64_t monotonic_ns();

using PinnedFlows = std::array<uint64_t, CLV_MAX_LINKS>;  // steered flows per link slot

// Adds a steered flow to its link's count.
inline void count_pinned(const clv_flow& f, PinnedFlows* pinned) {
  if (core::flow_steered(f) && f.link < CLV_MAX_LINKS) ++(*pinned)[f.link];
}

class Telemetry {
 public:
  explicit Telemetry(Dataplane& dp) : dp_(dp) {}
  Telemetry(const Telemetry&) = delete;
  Telemetry& operator=(const Telemetry&) = delete;

  // The flow table a batch at a time (Dataplane::scan_flows).
  core::Status scan_flows(const FlowVisitor& visit, FlowBuffer& buf) { return dp_.scan_flows(visit, buf); }
  // Counts the flows pinned to each link, reading the table a batch at a time.
  core::Result<PinnedFlows> pinned_flows();
  core::Result<LinkCounters> link_counters() { return dp_.link_counters(); }
  core::Result<GlobalCounters> counters() { return dp_.counters(); }
  core::Result<LinkDrops> link_drops() { return dp_.link_drops(); }
  core::Result<LinkMigrations> link_migrations() { return dp_.link_migrations(); }
  core::Result<std::vector<LinkMigrations>> link_moves() { return dp_.link_moves(); }
  core::Result<FlowTableTotals> flow_table_totals() { return dp_.flow_table_totals(); }
  core::Result<clv_link_state> link_state() { return dp_.link_state(); }

  // Samples the per-link counters; the resident loop calls it every second,
  // and link rates are over the interval between the last two samples.
  void sample_links();
  // The rates as of the last two samples; when the last is stale (no
  // resident loop, as in tests) `now` is sampled first.
  std::array<LinkRates, CLV_MAX_LINKS> rates(const LinkCounters& now);

  // The classifier of `rules`, built once per rule set (null for null).
  std::shared_ptr<const RunningClassifier> classifier(const RulesPtr& rules) { return classifiers_.get(rules); }

  // A request parsed a mapping (Apply, Rollback, dry runs and rejections
  // too), which leaves megabytes of small blocks freed at 10k rules.
  void parsed() { parsed_at_ns_.store(monotonic_ns()); }
  // True once a second has passed since the last parse: then the resident
  // loop gives the heap back. (Not at once: back-to-back applies would
  // fault the same pages in again each time.) Resets.
  bool trim_due();

 private:
  Dataplane& dp_;
  ClassifierCache classifiers_;
  std::mutex sample_mu_;
  LinkSampler sampler_;
  std::atomic<uint64_t> parsed_at_ns_{0};  // monotonic_ns() of the last parse; 0: trimmed since
};

}  // namespace clovis::agent
