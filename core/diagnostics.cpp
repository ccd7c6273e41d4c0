#include "diagnostics.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace clovis::core {

namespace {

Diagnostic unlisted_note() {
  return {
      Severity::kWarning,
      {},
      "",
      fmt::format("more than {} problems: only the first {} are listed", kMaxListedDiagnostics, kMaxListedDiagnostics),
      "fix these and check again; the counts include every problem"};
}

}  // namespace

void Diagnostics::add(Diagnostic d) {
  ++(d.severity == Severity::kError ? errors_ : warnings_);
  if (items_.size() - truncated_ < kMaxListedDiagnostics) {
    items_.push_back(std::move(d));
  } else if (!truncated_) {
    truncated_ = true;
    items_.push_back(unlisted_note());
  }
}

void Diagnostics::error(SourceLoc loc, std::string path, std::string message, std::string hint) {
  add({Severity::kError, loc, std::move(path), std::move(message), std::move(hint)});
}

void Diagnostics::warning(SourceLoc loc, std::string path, std::string message, std::string hint) {
  add({Severity::kWarning, loc, std::move(path), std::move(message), std::move(hint)});
}

void Diagnostics::append(const Diagnostics& other) {
  int errors = 0, warnings = 0;  // other's listed findings
  const std::string note = other.truncated_ ? unlisted_note().message : std::string();
  for (const auto& d : other.items_) {
    if (other.truncated_ && d.loc.line == 0 && d.message == note) continue;
    ++(d.severity == Severity::kError ? errors : warnings);
    add(d);
  }
  errors_ += other.errors_ - errors;  // and those it only counted
  warnings_ += other.warnings_ - warnings;
  if (other.truncated_ && !truncated_) {
    truncated_ = true;
    items_.push_back(unlisted_note());
  }
}

void Diagnostics::sort() {
  std::stable_sort(items_.begin(), items_.end(), [](const Diagnostic& a, const Diagnostic& b) {
    if (a.loc.line != b.loc.line) return a.loc.line < b.loc.line;
    if (a.loc.col != b.loc.col) return a.loc.col < b.loc.col;
    return a.severity < b.severity;
  });
}

std::string format_diagnostic(const Diagnostic& d, const std::string& file) {
  std::string out = file;
  if (d.loc.line > 0) out += fmt::format(":{}:{}", d.loc.line, d.loc.col);
  out += d.severity == Severity::kError ? ": error: " : ": warning: ";
  out += d.message;
  if (!d.path.empty()) out += fmt::format(" [{}]", d.path);
  if (!d.hint.empty()) out += fmt::format("\n  hint: {}", d.hint);
  return out;
}

}  // namespace clovis::core
