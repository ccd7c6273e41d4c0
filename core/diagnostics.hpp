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

class Diagnostics {
 public:
  void error(SourceLoc loc, std::string path, std::string message, std::string hint = {});
  void warning(SourceLoc loc, std::string path, std::string message, std::string hint = {});
  void append(const Diagnostics& other);
  void sort();  // by position, errors before warnings at the same place

  bool has_errors() const { return errors_ > 0; }
  int error_count() const { return errors_; }
  int warning_count() const { return static_cast<int>(items_.size()) - errors_; }
  bool empty() const { return items_.empty(); }
  const std::vector<Diagnostic>& items() const { return items_; }

 private:
  std::vector<Diagnostic> items_;
  int errors_ = 0;
};

// "file:line:col: error: message (at path)\n  hint: ..." — the compiler-style form.
std::string format_diagnostic(const Diagnostic& d, const std::string& file);

}  // namespace clovis::core
