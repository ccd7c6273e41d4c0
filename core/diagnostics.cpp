#include "diagnostics.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace clovis::core {

void Diagnostics::error(SourceLoc loc, std::string path, std::string message, std::string hint) {
  items_.push_back({Severity::kError, loc, std::move(path), std::move(message), std::move(hint)});
  ++errors_;
}

void Diagnostics::warning(SourceLoc loc, std::string path, std::string message, std::string hint) {
  items_.push_back({Severity::kWarning, loc, std::move(path), std::move(message), std::move(hint)});
}

void Diagnostics::append(const Diagnostics& other) {
  items_.insert(items_.end(), other.items_.begin(), other.items_.end());
  errors_ += other.errors_;
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
