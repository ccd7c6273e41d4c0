// Every example mapping shipped in examples/ is a fixture: it must be valid.
#include <filesystem>

#include <doctest/doctest.h>

#include "helpers.hpp"

using namespace clovis;

TEST_CASE("every example in examples/ validates and compiles") {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(test::source_path("examples"))) {
    if (e.path().extension() != ".yaml") continue;
    ++n;
    auto text = core::read_file(e.path().string());
    REQUIRE(text);
    auto c = core::check_mapping(*text);
    INFO(e.path().filename().string() << "\n" << test::dump(c));
    CHECK(c.ok());
    CHECK(c.diagnostics.warning_count() == 0);
  }
  CHECK(n >= 1);
}
