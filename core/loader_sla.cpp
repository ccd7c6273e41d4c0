// sla: the SLA classes policies refer to (sla: NAME).
#include <set>

#include <fmt/format.h>

#include "abi.hpp"
#include "loader_impl.hpp"
#include "sla.hpp"

namespace clovis::core::loader_detail {

namespace {

// A limit of 0 ms could never be met: no link answers in no time.
template <auto field>
void read_limit_ms(Loader& ld, YamlEntry kv, const YamlPath& p, SlaClass& c) {
  auto& r = ld.reader();
  auto d = r.duration_ms(kv.value, p);
  if (d && *d == 0) r.error(kv.value, p, "a limit of 0ms can never be met", "write e.g. 150ms");
  else if (d) c.*field = *d;
}

constexpr auto kSlaKeys = key_table<SlaClass>({
    {"latency", read_limit_ms<&SlaClass::max_latency_ms>},
    {"jitter", read_limit_ms<&SlaClass::max_jitter_ms>},
    {"loss",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, SlaClass& c) {
       if (auto v = ld.percent(kv.value, p)) c.max_loss_pct = *v;
     }},
});

}  // namespace

std::optional<double> Loader::percent(YamlNode n, const YamlPath& path) {
  auto s = r_.view(n, path);
  if (!s) return std::nullopt;
  auto v = parse_percent(*s);
  if (!v) r_.error(n, path, fmt::format("'{}' is not a percentage 0-100", *s), "write e.g. 1% or 0.5%");
  return v;
}

void Loader::sla_classes(YamlNode n, const YamlPath& path, Mapping& m) {
  if (n.is_null()) return;
  if (!n.is_map()) {
    r_.error(n, path, "sla: is a mapping of class names to limits",
             "write e.g. sla: {voice: {latency: 150ms, jitter: 30ms, loss: 1%}}");
    return;
  }
  if (n.size() > CLV_MAX_POLICIES) {
    r_.error(n, path, fmt::format("{} SLA classes, over the limit of {}", n.size(), CLV_MAX_POLICIES),
             "see clovis-wan.yaml(5), LIMITS");
    return;
  }
  std::set<std::string, std::less<>> seen;
  for (YamlEntry kv : n.entries()) {
    auto name = this->name(kv.key, path);
    if (!name) continue;
    const YamlPath p(path, kv.key.scalar());
    if (!seen.insert(*name).second) {
      r_.error(kv.key, p, fmt::format("duplicate SLA class '{}'", *name), "keep one");
      continue;
    }
    SlaClass c;
    c.name = *name;
    c.loc = YamlReader::loc(kv.key);
    if (!kv.value.is_null() && !read_map(kv.value, p, kSlaKeys, c)) continue;
    if (!c.max_latency_ms && !c.max_jitter_ms && !c.max_loss_pct)
      r_.warning(kv.key, p, fmt::format("SLA class '{}' sets no limit: every link meets it", *name),
                 "give latency:, jitter: and/or loss:");
    m.slas.push_back(std::move(c));
  }
}

}  // namespace clovis::core::loader_detail

// budget: of a link (a metered link): "20GiB per month", or
// {limit: 20GiB, per: month, reset-day: 1}.
namespace clovis::core::loader_detail {

namespace {

constexpr std::string_view kBudgetHint = "write e.g. budget: 20GiB per month, or {limit: 20GiB, reset-day: 15}";

void read_budget_limit(Loader& ld, YamlEntry kv, const YamlPath& p, Budget& b) {
  auto& r = ld.reader();
  auto s = r.view(kv.value, p);
  if (!s) return;
  if (auto v = parse_bytes(*s)) b.limit_bytes = *v;
  else r.error(kv.value, p, fmt::format("'{}' is not an amount of data", *s), "write e.g. 20GiB, 500MB or 2MiB");
}

constexpr auto kBudgetKeys = key_table<Budget>({
    {"limit", read_budget_limit},
    {"per",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, Budget&) { (void)ld.reader().word(kv.value, p, {"month"}); }},
    {"reset-day",
     [](Loader& ld, YamlEntry kv, const YamlPath& p, Budget& b) {
       if (auto u = ld.reader().uint(kv.value, p, 1, 31)) b.reset_day = static_cast<uint32_t>(*u);
     }},
});

}  // namespace

void Loader::budget(YamlNode n, const YamlPath& path, Link& l) {
  Budget b;
  b.loc = YamlReader::loc(n);
  if (n.is_scalar()) {
    auto s = r_.view(n, path);
    if (!s) return;
    std::string why;
    auto v = parse_budget_text(*s, &why);
    if (!v) return r_.error(n, path, why, std::string(kBudgetHint));
    b.limit_bytes = *v;
  } else {
    auto seen = read_map(n, path, kBudgetKeys, b);
    if (!seen) return;
    if (!seen->has("limit")) return r_.error(n, path, "budget has no 'limit'", std::string(kBudgetHint));
    if (!b.limit_bytes) return;  // reported
  }
  l.budget = b;
}

}  // namespace clovis::core::loader_detail
