// Located findings about a mapping: errors reject it, warnings do not.
#pragma once

#include <string>
#include <vector>

namespace clovis::core {

struct SourceLoc {
  int line = 0;  // 1-based; 0 when unknown
  int col = 0;
};

enum class Severity { kError, kWarning };

struct Diagnostic {
  Severity severity = Severity::kError;
  SourceLoc loc;
  std::string path;     // where in the document, e.g. rules[3].match.dport
  std::string message;  // what is wrong
  std::string hint;     // what to do about it
};

// Diagnostics listed at most: a 16 MiB mapping can hold a problem every 40
// bytes, and listing 400,000 of them cost 300 MB. Past the limit, findings
// are counted but not kept, and one note (without a position, so it sorts
// first) says so.
inline constexpr size_t kMaxListedDiagnostics = 1000;

class Diagnostics {
 public:
  void error(SourceLoc loc, std::string path, std::string message, std::string hint = {});
  void warning(SourceLoc loc, std::string path, std::string message, std::string hint = {});
  void append(const Diagnostics& other);
  void sort();  // by position, errors before warnings at the same place

  // Counts include the findings past the listing limit.
  bool has_errors() const { return errors_ > 0; }
  int error_count() const { return errors_; }
  int warning_count() const { return warnings_; }
  bool empty() const { return items_.empty(); }
  // At most kMaxListedDiagnostics findings, and then the note.
  const std::vector<Diagnostic>& items() const { return items_; }
  bool truncated() const { return truncated_; }
  // True when a new finding would only be counted: callers with many may
  // then skip formatting its message.
  bool full() const { return items_.size() - truncated_ >= kMaxListedDiagnostics; }

 private:
  void add(Diagnostic d);

  std::vector<Diagnostic> items_;
  int errors_ = 0;
  int warnings_ = 0;
  bool truncated_ = false;
};

// "file:line:col: error: message (at path)\n  hint: ..." — the compiler-style form.
std::string format_diagnostic(const Diagnostic& d, const std::string& file);

}  // namespace clovis::core
