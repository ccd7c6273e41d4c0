// core::Result and error_of: an error passed on arrives whole.
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "core/result.hpp"

using namespace clovis::core;

namespace {

Status failing() {
  return fail(ErrorCode::kNotFound, "no such link", "link wan0", 19);
}

// A caller of another value type passes the callee's error on.
Result<std::vector<int>> caller() {
  auto st = failing();
  if (!st) return error_of(st);
  return std::vector<int>{1};
}

Result<std::string, int> moved_from() {
  return Unexpected<int>{42};
}

}  // namespace

TEST_CASE("result: error_of passes an error on across value types, unchanged") {
  auto r = caller();
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kNotFound);
  CHECK(r.error().sys_errno == 19);
  CHECK(r.error().what() == "link wan0: no such link");
}

TEST_CASE("result: error_of works for any error type, from an rvalue too") {
  auto r = moved_from();
  Result<double, int> passed = error_of(std::move(r));
  REQUIRE_FALSE(passed.ok());
  CHECK(passed.error() == 42);
}
