#include "diff.hpp"

#include <algorithm>
#include <cstdlib>
#include <sstream>
#include <vector>

#include <fmt/format.h>

#include "core/json/json_text.hpp"
#include "diagnostics.hpp"
#include "table.hpp"

namespace clovis::cli::render {
using core::append_json_double;
using core::append_json_string;
using core::append_json_uint;
using core::JsonMembers;

using nlohmann::json;

namespace {

struct Style {
  const char* sign;
  const char* color;
};

Style style_of(const std::string& change) {
  if (change == "added") return {"+", "\x1b[32m"};
  if (change == "removed") return {"-", "\x1b[31m"};
  return {"~", "\x1b[33m"};
}

core::Diagnostic to_core(const v1::Diagnostic& x) {
  core::Diagnostic d;
  d.severity = x.severity() == v1::SEVERITY_WARNING ? core::Severity::kWarning : core::Severity::kError;
  d.loc = {static_cast<int>(x.line()), static_cast<int>(x.col())};
  d.path = x.path();
  d.message = x.message();
  d.hint = x.hint();
  return d;
}

std::string changes(uint32_t n) {
  return n == 0 ? "no changes" : fmt::format("{} change{}", n, n == 1 ? "" : "s");
}

// Every change, also from a clovisd that sent the items and no counts.
uint32_t total_of(const v1::ApplyResponse& r) {
  return std::max(r.diff_total(), static_cast<uint32_t>(r.diff_size()));
}

std::vector<v1::DiffCount> counts_of(const v1::ApplyResponse& r) {
  std::vector<v1::DiffCount> out(r.diff_counts().begin(), r.diff_counts().end());
  if (!out.empty() || r.diff_total() > 0) return out;
  for (const auto& d : r.diff()) {
    auto c = std::find_if(out.begin(), out.end(), [&](const v1::DiffCount& x) { return x.kind() == d.kind(); });
    if (c == out.end()) {
      c = out.insert(out.end(), v1::DiffCount());
      c->set_kind(d.kind());
    }
    if (d.change() == "added") c->set_added(c->added() + 1);
    else if (d.change() == "removed") c->set_removed(c->removed() + 1);
    else c->set_changed(c->changed() + 1);
  }
  return out;
}

}  // namespace

bool color_wanted(bool is_tty) {
  const char* no_color = std::getenv("NO_COLOR");
  return is_tty && (no_color == nullptr || *no_color == '\0');
}

void diff_text(std::ostream& os, const DiffItems& diff, bool color) {
  Table t({"", "", "", ""});
  for (const auto& d : diff) t.row({std::string("  ") + style_of(d.change()).sign, d.kind(), d.name(), d.detail()});
  std::ostringstream s;
  t.print(s);
  std::istringstream lines(s.str());
  int i = 0;
  for (std::string line; std::getline(lines, line); ++i) {
    if (color) os << style_of(diff[i].change()).color << line << "\x1b[0m\n";
    else os << line << "\n";
  }
}

void proto_diagnostics_text(std::ostream& os, const ProtoDiagnostics& d, const std::string& fallback_file) {
  for (const auto& x : d)
    os << core::format_diagnostic(to_core(x), x.file().empty() ? fallback_file : x.file()) << "\n";
}

json proto_diagnostics_json(const ProtoDiagnostics& d, const std::string& fallback_file) {
  json items = json::array();
  for (const auto& x : d) {
    items.push_back({{"severity", x.severity() == v1::SEVERITY_WARNING ? "warning" : "error"},
                     {"file", x.file().empty() ? fallback_file : x.file()},
                     {"line", x.line()},
                     {"col", x.col()},
                     {"path", x.path()},
                     {"message", x.message()},
                     {"hint", x.hint()}});
  }
  return items;
}

std::optional<DiffMode> parse_diff_mode(const std::string& s) {
  if (s == "auto") return DiffMode::kAuto;
  if (s == "full") return DiffMode::kFull;
  if (s == "summary") return DiffMode::kSummary;
  return std::nullopt;
}

std::optional<uint32_t> diff_items_wanted(DiffMode mode, bool as_json) {
  switch (mode) {
    case DiffMode::kFull: return std::nullopt;
    case DiffMode::kSummary: return 0;
    case DiffMode::kAuto: break;
  }
  if (as_json) return std::nullopt;
  return kAutoDiffItems;
}

std::string diff_summary(const v1::ApplyResponse& r) {
  std::string s;
  for (const auto& c : counts_of(r)) {
    std::string parts;
    for (auto [n, what] : {std::pair{c.added(), "added"}, {c.removed(), "removed"}, {c.changed(), "changed"}})
      if (n > 0) parts += fmt::format("{}{} {}", parts.empty() ? "" : ", ", n, what);
    if (parts.empty()) continue;
    s += fmt::format("{}{}: {}", s.empty() ? "" : "; ", c.kind(), parts);
  }
  return s.empty() ? "none" : s;
}

void apply_text(std::ostream& out, std::ostream& err, const v1::ApplyResponse& r, const std::string& verb,
                const std::string& source, bool color) {
  proto_diagnostics_text(err, r.warnings(), source);
  diff_text(out, r.diff(), color);
  const uint32_t n = total_of(r);
  const auto shown = static_cast<uint32_t>(r.diff_size());
  if (n > shown) {
    if (shown > 0)
      out << fmt::format("  ... {} more change{} (--diff full lists every one)\n", n - shown,
                         n - shown == 1 ? "" : "s");
    out << "changes: " << diff_summary(r) << "\n";
  }
  for (const auto& note : r.notes()) out << "note: " << note << "\n";
  if (r.dry_run()) {
    out << fmt::format("dry run: {} (running generation {}); nothing was {}\n", changes(n), r.generation(), verb);
    return;
  }
  out << fmt::format("{}: generation {} (was {}), {} in {:.1f} ms\n", verb, r.generation(), r.previous_generation(),
                     changes(n), r.apply_ms());
  if (r.confirm_deadline_s() > 0)
    out << fmt::format("confirm within {}s with 'clovisctl confirm', or clovisd goes back to generation {}\n",
                       r.confirm_deadline_s(), r.previous_generation());
}

std::string apply_json_text(const v1::ApplyResponse& r, const std::string& source) {
  std::string out;
  out.reserve(256 + static_cast<size_t>(r.diff_size()) * 160);
  out.append("{\n");
  JsonMembers top(&out, 2);
  top.dbl("apply_ms", r.apply_ms());
  top.num("confirm_deadline_s", r.confirm_deadline_s());
  // Arrays of objects at indent 4, their members at 6; [] when empty.
  auto objects = [&out](std::string_view key, JsonMembers& at, int n, auto&& members) {
    std::string& o = at.key(key);
    if (n == 0) {
      o.append("[]");
      return;
    }
    o.append("[\n");
    for (int i = 0; i < n; ++i) {
      out.append(i ? ",\n    {\n" : "    {\n");
      JsonMembers m(&out, 6);
      members(m, i);
      out.append("\n    }");
    }
    out.append("\n  ]");
  };
  objects("diff", top, r.diff_size(), [&r](JsonMembers& m, int i) {
    const auto& d = r.diff(i);
    m.str("change", d.change());
    m.str("detail", d.detail());
    m.str("kind", d.kind());
    m.str("name", d.name());
  });
  const auto counts = counts_of(r);
  objects("diff_counts", top, static_cast<int>(counts.size()), [&counts](JsonMembers& m, int i) {
    const auto& c = counts[static_cast<size_t>(i)];
    m.num("added", c.added());
    m.num("changed", c.changed());
    m.str("kind", c.kind());
    m.num("removed", c.removed());
  });
  top.num("diff_total", total_of(r));
  top.boolean("dry_run", r.dry_run());
  top.num("generation", r.generation());
  std::string& notes = top.key("notes");
  if (r.notes().empty()) notes.append("[]");
  else {
    notes.append("[\n");
    for (int i = 0; i < r.notes_size(); ++i) {
      if (i) out.append(",\n");
      out.append("    ");
      append_json_string(&out, r.notes(i));
    }
    out.append("\n  ]");
  }
  top.num("previous_generation", r.previous_generation());
  objects("warnings", top, r.warnings_size(), [&r, &source](JsonMembers& m, int i) {
    const auto& x = r.warnings(i);
    m.num("col", x.col());
    m.str("file", x.file().empty() ? source : x.file());
    m.str("hint", x.hint());
    m.num("line", x.line());
    m.str("message", x.message());
    m.str("path", x.path());
    m.str("severity", x.severity() == v1::SEVERITY_WARNING ? "warning" : "error");
  });
  out.append("\n}\n");
  return out;
}

}  // namespace clovis::cli::render
