// core::Fd: the one owner type of every fd the agent opens.
#include <fcntl.h>
#include <unistd.h>

#include <utility>

#include <doctest/doctest.h>

#include "core/fd.hpp"

using clovis::core::Fd;

namespace {

bool is_open(int fd) {
  return fcntl(fd, F_GETFD) != -1;
}

int open_null() {
  const int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  return fd;
}

}  // namespace

TEST_CASE("fd: closes what it owns when destroyed, once") {
  const int raw = open_null();
  {
    Fd fd(raw);
    CHECK(fd.valid());
    CHECK(fd.get() == raw);
  }
  CHECK_FALSE(is_open(raw));
  Fd empty;
  CHECK_FALSE(empty);
  CHECK(empty.get() == -1);
}

TEST_CASE("fd: a move hands the fd over and the source no longer closes it") {
  const int raw = open_null();
  Fd a(raw);
  Fd b(std::move(a));
  CHECK_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): the moved-from state is specified
  CHECK(b.get() == raw);
  a = Fd{};  // assigning an empty one closes nothing
  CHECK(is_open(raw));
  const int other = open_null();
  b = Fd(other);  // assignment closes the fd held before
  CHECK_FALSE(is_open(raw));
  CHECK(is_open(other));
}

TEST_CASE("fd: release gives up ownership, reset closes and takes another") {
  const int raw = open_null();
  Fd fd(raw);
  CHECK(fd.release() == raw);
  CHECK_FALSE(fd.valid());
  CHECK(is_open(raw));  // the new owner closes it
  fd.reset(raw);
  CHECK(fd.get() == raw);
  fd.reset();
  CHECK_FALSE(is_open(raw));
}
