#include "sla.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

#include <fmt/format.h>

#include "compiled.hpp"

namespace clovis::core {

std::string format_ms(double ms) {
  const double r = std::round(ms * 10) / 10;
  return r == std::floor(r) ? fmt::format("{:.0f} ms", r) : fmt::format("{:.1f} ms", r);
}

std::string format_pct(double pct) {
  const double r = std::round(pct * 100) / 100;
  return fmt::format("{}%", r);
}

std::optional<double> parse_percent(std::string_view text) {
  if (!text.empty() && text.back() == '%') text.remove_suffix(1);
  double v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size() || !(v >= 0 && v <= 100)) return std::nullopt;
  return v;
}

std::string sla_violation(const SlaClass& c, const LinkQuality& q) {
  if (c.max_latency_ms && q.latency_ms > *c.max_latency_ms)
    return fmt::format("latency {} > {} {}", format_ms(q.latency_ms), c.name, format_ms(*c.max_latency_ms));
  if (c.max_jitter_ms && q.jitter_ms > *c.max_jitter_ms)
    return fmt::format("jitter {} > {} {}", format_ms(q.jitter_ms), c.name, format_ms(*c.max_jitter_ms));
  if (c.max_loss_pct && q.loss_pct > *c.max_loss_pct)
    return fmt::format("loss {} > {} {}", format_pct(q.loss_pct), c.name, format_pct(*c.max_loss_pct));
  return {};
}

std::string sla_reentry_block(const SlaClass& c, const LinkQuality& q) {
  const double keep = 1.0 - kSlaMargin;
  const int share = static_cast<int>(keep * 100 + 0.5);
  if (c.max_latency_ms && q.latency_ms > *c.max_latency_ms * keep)
    return fmt::format("latency {} > {}, {}% of {} {}", format_ms(q.latency_ms), format_ms(*c.max_latency_ms * keep),
                       share, c.name, format_ms(*c.max_latency_ms));
  if (c.max_jitter_ms && q.jitter_ms > *c.max_jitter_ms * keep)
    return fmt::format("jitter {} > {}, {}% of {} {}", format_ms(q.jitter_ms), format_ms(*c.max_jitter_ms * keep),
                       share, c.name, format_ms(*c.max_jitter_ms));
  if (c.max_loss_pct && q.loss_pct > *c.max_loss_pct * keep)
    return fmt::format("loss {} > {}, {}% of {} {}", format_pct(q.loss_pct), format_pct(*c.max_loss_pct * keep), share,
                       c.name, format_pct(*c.max_loss_pct));
  return {};
}

const char* to_string(QualityField f) {
  switch (f) {
    case QualityField::kLatency: return "latency";
    case QualityField::kJitter: return "jitter";
    case QualityField::kLoss: return "loss";
  }
  return "?";
}

std::string set_quality(LinkQuality* q, QualityField f, double value) {
  if (!std::isfinite(value) || value < 0 || (f == QualityField::kLoss && value > 100))
    return fmt::format("{} {} is out of range ({})", to_string(f), value,
                       f == QualityField::kLoss ? "0-100%" : "0 ms or more");
  if (!q->measured) *q = LinkQuality{};
  q->measured = true;
  (f == QualityField::kLatency ? q->latency_ms : f == QualityField::kJitter ? q->jitter_ms : q->loss_pct) = value;
  return {};
}

bool parse_quality_arg(QualityField f, std::string_view arg, std::string* link, double* value, std::string* error) {
  const auto eq = arg.find('=');
  const char* example = f == QualityField::kLoss ? "LINK=3%" : "LINK=180ms";
  if (eq == std::string_view::npos || eq == 0) {
    *error = fmt::format("'{}' is not {}", arg, example);
    return false;
  }
  *link = std::string(arg.substr(0, eq));
  std::string_view v = arg.substr(eq + 1);
  std::optional<double> parsed;
  if (f == QualityField::kLoss) {
    parsed = parse_percent(v);
  } else {
    double scale = 1;
    if (v.size() > 2 && v.substr(v.size() - 2) == "ms") v.remove_suffix(2);
    else if (v.size() > 1 && v.back() == 's') v.remove_suffix(1), scale = 1000;
    double d = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), d);
    if (!v.empty() && ec == std::errc() && p == v.data() + v.size() && d >= 0 && std::isfinite(d)) parsed = d * scale;
  }
  if (!parsed) {
    *error = fmt::format("'{}' is not a {} value: write {}", arg.substr(eq + 1), to_string(f), example);
    return false;
  }
  *value = *parsed;
  return true;
}

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// How far out of SLA a link is: its worst measurement over the class's
// limit (1.5: 50% over). best-of-worst takes the smallest first.
double excess(const SlaClass& c, const LinkQuality& q) {
  auto ratio = [](double v, double limit) { return limit > 0 ? v / limit : (v > 0 ? kInf : 0); };
  double e = 0;
  if (c.max_latency_ms) e = std::max(e, ratio(q.latency_ms, *c.max_latency_ms));
  if (c.max_jitter_ms) e = std::max(e, ratio(q.jitter_ms, *c.max_jitter_ms));
  if (c.max_loss_pct) e = std::max(e, ratio(q.loss_pct, *c.max_loss_pct));
  return e;
}

std::string measured_text(const LinkQuality& q) {
  return fmt::format("latency {}, jitter {}, loss {}", format_ms(q.latency_ms), format_ms(q.jitter_ms),
                     format_pct(q.loss_pct));
}

// A member's place in the order the kernel is given: lexicographic, lowest
// first; members with equal keys share a tier (and split it by weight).
using OrderKey = std::array<double, 6>;

// A time as a step of ~15% (kQualityStep): best-quality compares links by
// these, not by the raw smoothed values. Raw, two links a few microseconds
// apart swapped places on every probe round (16 links, 8 classes: 628
// rewrites of the kernel's policies in 30 s, 1% of a core, and new flows
// alternating between them); a step is a difference an application notices.
// Everything under 1 ms is one step: no WAN choice turns on less.
double time_step(double ms) {
  return ms <= 1 ? 0 : std::floor(std::log(ms) / std::log(kQualityStep)) + 1;
}

// best-quality: measured links by latency, then loss (steps of
// kLossStepPct), then jitter, each in steps; links not measured yet after
// them; the member order breaks ties, so each member has its own tier.
OrderKey quality_key(double group, const LinkQuality& q, int index) {
  if (!q.measured) return {group, 1, 0, 0, 0, static_cast<double>(index)};
  return {group,
          0,
          time_step(q.latency_ms),
          std::floor(q.loss_pct / kLossStepPct),
          time_step(q.jitter_ms),
          static_cast<double>(index)};
}

}  // namespace

SlaDecision decide_sla(const clv_policy& compiled, const PolicySla& ps, const LinkQualities& q, uint64_t held_out) {
  SlaDecision d;
  d.programmed = compiled;
  const int n = std::min<int>(compiled.n_members, CLV_POLICY_MAX_MEMBERS);
  bool any_in = false, any_out = false;
  for (int i = 0; i < n; ++i) {
    MemberSla m;
    m.slot = compiled.members[i].link & (CLV_MAX_LINKS - 1);
    m.quality = q[static_cast<size_t>(m.slot)];
    m.measured = m.quality.measured;
    if (ps.sla && m.measured) {
      m.why = sla_violation(*ps.sla, m.quality);
      if (m.why.empty() && (held_out >> m.slot & 1)) m.why = sla_reentry_block(*ps.sla, m.quality);
      m.in_sla = m.why.empty();
      if (m.in_sla) m.why = fmt::format("within {} ({})", ps.sla->name, measured_text(m.quality));
    } else if (ps.sla) {
      m.why = fmt::format("not measured yet: taken as within {}", ps.sla->name);
    } else {
      m.why = m.measured ? measured_text(m.quality) : "not measured yet";
    }
    (m.in_sla ? any_in : any_out) = true;
    d.members.push_back(std::move(m));
  }
  d.none_in_sla = any_out && !any_in;
  // Nothing to reorder: the policy as written, byte for byte (and no kernel
  // write when a mapping's SLAs are all met).
  if (!any_out && ps.strategy == Strategy::kTiers) return d;

  struct Slot {
    int index;
    OrderKey key;
  };
  std::vector<Slot> order;
  for (int i = 0; i < n; ++i) {
    const MemberSla& m = d.members[static_cast<size_t>(i)];
    const double group = m.in_sla ? 0 : 1;
    OrderKey k;
    if (!m.in_sla && ps.fallback == SlaFallback::kBestOfWorst) {
      k = {group, excess(*ps.sla, m.quality), 0, 0, 0, static_cast<double>(i)};
    } else if (ps.strategy == Strategy::kBestQuality) {
      k = quality_key(group, m.quality, i);
    } else {
      k = {group, static_cast<double>(compiled.members[i].tier), 0, 0, 0, 0};
    }
    order.push_back({i, k});
  }
  std::stable_sort(order.begin(), order.end(), [](const Slot& a, const Slot& b) { return a.key < b.key; });
  uint8_t tier = 0;
  for (size_t j = 0; j < order.size(); ++j) {
    if (j == 0 || order[j].key != order[j - 1].key) ++tier;
    clv_member& pm = d.programmed.members[order[j].index];
    pm.tier = tier;
    if (!d.members[static_cast<size_t>(order[j].index)].in_sla && ps.fallback == SlaFallback::kLastResort)
      pm.weight = 0;
  }
  return d;
}

std::vector<clv_policy> sla_policies(const CompiledRules& c, const LinkQualities& q,
                                     const std::vector<uint64_t>* held_out) {
  std::vector<clv_policy> out = c.policies;
  for (size_t i = 0; i < out.size() && i < c.policy_sla.size(); ++i)
    if (c.policy_sla[i].active())
      out[i] = decide_sla(c.policies[i], c.policy_sla[i], q, held_out && i < held_out->size() ? (*held_out)[i] : 0)
                   .programmed;
  return out;
}

bool same_policies(const std::vector<clv_policy>& a, const std::vector<clv_policy>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof a[0]) == 0);
}

bool has_sla(const CompiledRules& c) {
  return std::any_of(c.policy_sla.begin(), c.policy_sla.end(), [](const PolicySla& p) { return p.active(); });
}

}  // namespace clovis::core
