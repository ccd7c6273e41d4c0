// Log lines to stderr. Under systemd (JOURNAL_STREAM set) each line carries a
// <N> syslog priority prefix that journald turns into the entry's priority.
#pragma once

#include <string>

namespace clovis::agent {

void log_info(const std::string& msg);
void log_warning(const std::string& msg);
void log_error(const std::string& msg);

}  // namespace clovis::agent
