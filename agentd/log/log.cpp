#include "log/log.hpp"

#include <cstdio>
#include <cstdlib>

namespace clovis::agent {

namespace {

void emit(int prio, const char* tag, const std::string& msg) {
  static const bool journal = std::getenv("JOURNAL_STREAM") != nullptr;
  if (journal) std::fprintf(stderr, "<%d>%s\n", prio, msg.c_str());
  else std::fprintf(stderr, "clovisd: %s%s\n", tag, msg.c_str());
}

}  // namespace

void log_info(const std::string& msg) {
  emit(6, "", msg);
}
void log_warning(const std::string& msg) {
  emit(4, "warning: ", msg);
}
void log_error(const std::string& msg) {
  emit(3, "error: ", msg);
}

void log_diagnostic(const core::Diagnostic& d, const std::string& file) {
  std::string line = core::format_diagnostic(d, file);
  if (auto at = line.find("\n  hint: "); at != std::string::npos) line.replace(at, 9, "; hint: ");
  emit(d.severity == core::Severity::kError ? 3 : 4, "", line);
}

}  // namespace clovis::agent
