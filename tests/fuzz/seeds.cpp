// Writes the unit tests' loader corpus (tests/unit/loader_corpus.hpp) as
// files, one document each, for the fuzzer's seed corpus.
#define DOCTEST_CONFIG_DISABLE
#include <cstdio>
#include <fstream>
#include <string>

#include "loader_corpus.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const auto docs = clovis::test::loader_documents();
  int n = 0;
  for (const auto& d : docs) {
    std::ofstream out(std::string(argv[1]) + "/unit-" + std::to_string(n++) + ".yaml", std::ios::binary);
    out << d;
    if (!out) return 1;
  }
  std::printf("%d seeds\n", n);
  return 0;
}
