// clovis-bench-memory: what core::check_mapping (load, validate, compile: the
// path of clovisctl validate and of clovisd's apply --dry-run) costs in
// memory and time on mapping files, without gRPC or the CLI around it.
//
//   clovis-bench-memory [--max-growth-mb N] FILE...
//
// Per file: the text is read first, then the peak RSS is reset
// (/proc/self/clear_refs, 5) and check_mapping runs; "growth" is the peak RSS
// during the check over the RSS before it, i.e. what the check adds on top of
// the text the caller already holds (clovisd holds the gRPC request's copy).
// With --max-growth-mb, exits 1 when a file's growth is over N: a bound for
// bench/bounded/memory.sh, never a ctest (docs/BENCHMARKS.md, "Bounded apply").
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/pipeline.hpp"

namespace {

long status_kb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string k = std::string(key) + ":";
  while (std::getline(in, line))
    if (line.rfind(k, 0) == 0) return std::strtol(line.c_str() + k.size(), nullptr, 10);
  return -1;
}

// Resets VmHWM to the current RSS (Linux >= 4.0).
bool reset_peak() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

}  // namespace

int main(int argc, char** argv) {
  double max_growth_mb = 0;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--max-growth-mb" && i + 1 < argc) {
      max_growth_mb = std::strtod(argv[++i], nullptr);
    } else if (a == "-h" || a == "--help" || a.rfind("--", 0) == 0) {
      std::fprintf(stderr, "usage: clovis-bench-memory [--max-growth-mb N] FILE...\n");
      return a == "-h" || a == "--help" ? 0 : 2;
    } else {
      files.push_back(a);
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "usage: clovis-bench-memory [--max-growth-mb N] FILE...\n");
    return 2;
  }
  int rc = 0;
  fmt::print("{:<40} {:>9} {:>8} {:>8} {:>9}  {}\n", "file", "bytes", "seconds", "base MB", "growth MB", "result");
  for (const auto& f : files) {
    auto text = clovis::core::read_file(f);
    if (!text) {
      fmt::print(stderr, "{}: {}\n", f, text.error().what());
      return 2;
    }
    if (!reset_peak()) {
      fmt::print(stderr, "cannot reset the peak RSS (/proc/self/clear_refs)\n");
      return 2;
    }
    const long base = status_kb("VmRSS");
    const auto t0 = std::chrono::steady_clock::now();
    std::string result;
    {
      auto c = clovis::core::check_mapping(*text);
      result = c.ok() ? fmt::format("ok, {} entries", c.compiled->entries.size())
                      : fmt::format("{} errors{}", c.diagnostics.error_count(),
                                    c.diagnostics.items().empty() ? "" : ": " + c.diagnostics.items()[0].message);
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double growth = static_cast<double>(status_kb("VmHWM") - base) / 1024;
    const auto slash = f.rfind('/');
    fmt::print("{:<40} {:>9} {:>8.2f} {:>8.0f} {:>9.1f}  {}\n", slash == std::string::npos ? f : f.substr(slash + 1),
               text->size(), secs, static_cast<double>(base) / 1024, growth, result.substr(0, 100));
    if (max_growth_mb > 0 && growth > max_growth_mb) {
      fmt::print("  over the bound of {} MB\n", max_growth_mb);
      rc = 1;
    }
  }
  return rc;
}
