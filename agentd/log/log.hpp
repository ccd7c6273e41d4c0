// Log lines to stderr. Under systemd (JOURNAL_STREAM set) each line carries a
// <N> syslog priority prefix that journald turns into the entry's priority.
#pragma once

#include <string>

#include "core/diagnostics.hpp"

namespace clovis::agent {

void log_info(const std::string& msg);
void log_warning(const std::string& msg);
void log_error(const std::string& msg);
// A located diagnostic, one line (hint appended), at its own severity.
void log_diagnostic(const core::Diagnostic& d, const std::string& file);

}  // namespace clovis::agent
