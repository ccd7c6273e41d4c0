#include "diagnostics.hpp"

#include <fmt/format.h>

namespace clovis::cli::render {

using nlohmann::json;

json diagnostics_json(const core::Diagnostics& d, const std::string& file) {
  json items = json::array();
  for (const auto& x : d.items()) {
    items.push_back({{"severity", x.severity == core::Severity::kError ? "error" : "warning"},
                     {"file", file},
                     {"line", x.loc.line},
                     {"col", x.loc.col},
                     {"path", x.path},
                     {"message", x.message},
                     {"hint", x.hint}});
  }
  return items;
}

void diagnostics_text(std::ostream& os, const core::Diagnostics& d, const std::string& file) {
  for (const auto& x : d.items()) os << core::format_diagnostic(x, file) << "\n";
}

json summary_json(const core::Checked& c) {
  json s = json::object();
  if (!c.mapping) return s;
  const auto& m = *c.mapping;
  size_t l7 = 0;
  for (const auto& r : m.rules) l7 += r.match.has_l7();
  s["links"] = m.links.size();
  s["policies"] = m.policies.size();
  s["rules"] = m.rules.size();
  s["l7_rules"] = l7;
  s["default"] = m.default_target ? json(std::string(core::to_string(m.default_target->kind)) +
                                         (m.default_target->name.empty() ? "" : ":" + m.default_target->name))
                                  : json(nullptr);
  if (c.compiled) {
    s["table_entries"] = c.compiled->entries.size();
    s["shapes"] = c.compiled->shapes.size();
    s["shape_limit"] = CLV_MAX_SHAPES;
  }
  return s;
}

void summary_text(std::ostream& os, const core::Checked& c, const std::string& file) {
  const int e = c.diagnostics.error_count(), w = c.diagnostics.warning_count();
  auto counts = [&] {
    std::string out;
    if (e) out += fmt::format("{} error{}", e, e == 1 ? "" : "s");
    if (w) out += fmt::format("{}{} warning{}", e ? ", " : "", w, w == 1 ? "" : "s");
    return out;
  };
  if (!c.compiled) {
    os << fmt::format("{}: rejected ({})\n", file, counts());
    return;
  }
  const auto& m = *c.mapping;
  size_t l7 = 0;
  for (const auto& r : m.rules) l7 += r.match.has_l7();
  os << fmt::format("{}: ok: {} link{}, {} polic{}, {} rule{} ({} L7)", file, m.links.size(),
                    m.links.size() == 1 ? "" : "s", m.policies.size(), m.policies.size() == 1 ? "y" : "ies",
                    m.rules.size(), m.rules.size() == 1 ? "" : "s", l7);
  os << fmt::format("; kernel table: {} entries in {} shape{} (limit {})", c.compiled->entries.size(),
                    c.compiled->shapes.size(), c.compiled->shapes.size() == 1 ? "" : "s", CLV_MAX_SHAPES);
  // Not the default, and it changes what proxies' clients see: say so.
  if (m.proxy.on_drop == core::OnDrop::kDeny) os << "; proxy: drop verdicts denied (403)";
  if (w) os << "; " << counts();
  os << "\n";
}

}  // namespace clovis::cli::render
