// SLA classes at work: from each link's smoothed quality and each policy's
// SLA, strategy and fallback, the policy entry the kernel is given. Pure: the
// agent programs what this returns, and the simulator explains a decision
// with the same function, so the two cannot drift.
//
// Nothing is added per packet. The kernel already picks, per policy, the
// lowest tier holding a usable link of weight > 0 (clv_pick_member); an SLA
// only rewrites the tiers and weights of a policy's members:
//   - members in SLA keep their order (by tier, or by quality with
//     strategy: best-quality) and come first;
//   - members out of SLA come after them (fallback: keep, in the policy's own
//     order; best-of-worst, the least bad first) or get weight 0 (fallback:
//     last-resort: the policy's last-resort then decides).
// Since the kernel still skips links that are down, have no next hop of the
// flow's family or are degraded (avoid-degraded), "no member meets the SLA"
// is judged among the usable ones, at once and without the agent, when an
// in-SLA link goes down between two quality updates.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "abi.hpp"
#include "model.hpp"

namespace clovis::core {

// A link's smoothed quality, as the health checker measures it (EWMAs).
struct LinkQuality {
  double latency_ms = 0;
  double jitter_ms = 0;
  double loss_pct = 0;
  bool measured = false;  // at least one probe answered; else the values mean nothing
};
using LinkQualities = std::array<LinkQuality, CLV_MAX_LINKS>;  // by link slot

// What a compiled policy needs to apply its SLA (CompiledRules::policy_sla).
struct PolicySla {
  std::optional<SlaClass> sla;  // none: every member is in SLA
  Strategy strategy = Strategy::kTiers;
  SlaFallback fallback = SlaFallback::kBestOfWorst;
  // Live flows (core/sla_moves.hpp). The defaults are an implicit policy's
  // (a rule's link:): nothing to leave, nothing to return to.
  OnSlaViolation on_violation = OnSlaViolation::kMigrate;
  uint32_t hold_down_ms = 30000;
  OnLinkUp on_up = OnLinkUp::kStay;
  uint32_t return_after_ms = 60000;
  bool active() const { return sla.has_value() || strategy == Strategy::kBestQuality; }
};

// best-quality compares measurements in steps, not raw: latency and jitter
// in steps of 15% (all under 1 ms alike), loss in steps of half a percent.
// A link is ranked above another only when it is better by about a step.
inline constexpr double kQualityStep = 1.15;
inline constexpr double kLossStepPct = 0.5;

// One member's standing, for explanations (simulate) and events.
struct MemberSla {
  int slot = -1;
  bool in_sla = true;
  bool measured = false;
  LinkQuality quality;
  std::string why;  // "latency 182 ms > voice 150 ms"; "within voice"; "not measured yet"
};

struct SlaDecision {
  clv_policy programmed{};         // what the kernel is given for the policy
  std::vector<MemberSla> members;  // in member order
  bool none_in_sla = false;        // no member meets the SLA: the fallback decides
};

// A link not measured yet (no probe answered since clovisd started or the
// link appeared, or a link without health probes) is taken to be in SLA:
// otherwise every SLA policy would fall back at each start of clovisd until
// the first probe rounds, and a link without probes could never carry one.
// Validation warns of SLA policies over links without probes.
// `held_out`: link slots held out of SLA by hysteresis (SlaMoves::out_of_sla:
// out once, not yet back under the limits by kSlaMargin), out even when now
// under the limits, so that new flows and live ones see the same standing.
SlaDecision decide_sla(const clv_policy& compiled, const PolicySla& ps, const LinkQualities& q, uint64_t held_out = 0);

// Re-entering an SLA: every limit met with this share of it to spare.
inline constexpr double kSlaMargin = 0.10;
// "" when `q` meets `c` with kSlaMargin to spare; else what keeps it out
// ("latency 140 ms > 135 ms, 90% of voice 150 ms").
std::string sla_reentry_block(const SlaClass& c, const LinkQuality& q);

// "latency 182 ms > voice 150 ms" for the first limit `q` breaks, empty when
// it meets them all.
std::string sla_violation(const SlaClass& c, const LinkQuality& q);

// "150 ms", "0.5 %": how limits and measurements read in explanations.
std::string format_ms(double ms);
std::string format_pct(double pct);

// What-if values (clovisctl simulate --latency/--jitter/--loss): one field
// of one link's quality.
enum class QualityField : uint8_t { kLatency, kJitter, kLoss };
const char* to_string(QualityField f);  // latency, jitter, loss
// Sets `f` of `q` to `value`, which then counts as measured (its other
// values as they were, 0 when it was not measured). Empty, or what is wrong
// with the value.
std::string set_quality(LinkQuality* q, QualityField f, double value);
// "LINK=180ms" (latency, jitter: ms, or s) and "LINK=3%" (loss) -> link and
// value; false with `error` set otherwise.
bool parse_quality_arg(QualityField f, std::string_view arg, std::string* link, double* value, std::string* error);

// "1%", "0.5%" or "1" -> 1.0 (0-100); nullopt otherwise.
std::optional<double> parse_percent(std::string_view text);

}  // namespace clovis::core
