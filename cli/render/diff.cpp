#include "diff.hpp"

#include <cstdlib>
#include <sstream>
#include <vector>

#include <fmt/format.h>

#include "diagnostics.hpp"
#include "table.hpp"

namespace clovis::cli::render {

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

std::string changes(int n) { return n == 0 ? "no changes" : fmt::format("{} change{}", n, n == 1 ? "" : "s"); }

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

void apply_text(std::ostream& out, std::ostream& err, const v1::ApplyResponse& r, const std::string& verb,
                const std::string& source, bool color) {
  proto_diagnostics_text(err, r.warnings(), source);
  diff_text(out, r.diff(), color);
  for (const auto& n : r.notes()) out << "note: " << n << "\n";
  const int n = r.diff_size();
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

json apply_json(const v1::ApplyResponse& r, const std::string& source) {
  json diff = json::array();
  for (const auto& d : r.diff())
    diff.push_back({{"kind", d.kind()}, {"name", d.name()}, {"change", d.change()}, {"detail", d.detail()}});
  return {{"generation", r.generation()},
          {"previous_generation", r.previous_generation()},
          {"dry_run", r.dry_run()},
          {"diff", diff},
          {"warnings", proto_diagnostics_json(r.warnings(), source)},
          {"notes", json(std::vector<std::string>(r.notes().begin(), r.notes().end()))},
          {"apply_ms", r.apply_ms()},
          {"confirm_deadline_s", r.confirm_deadline_s()}};
}

}  // namespace clovis::cli::render
