// The root-or-skip policy of privileged doctest tests (CI sets
// CLOVIS_REQUIRE_PRIVILEGED=1, turning a skip into a failure so a
// misconfigured runner cannot pass silently), on top of support/netns.hpp.
#pragma once

#include <doctest/doctest.h>

#include "netns.hpp"

// At the top of a privileged TEST_CASE: returns from it (reported as a
// skip) when not privileged, or fails it when CLOVIS_REQUIRE_PRIVILEGED=1.
#define CLOVIS_REQUIRE_ROOT_OR_SKIP()                                    \
  do {                                                                   \
    if (!::clovis::test::have_privileges()) {                            \
      if (::clovis::test::privileged_required())                         \
        FAIL(                                                            \
            "needs CAP_SYS_ADMIN + CAP_NET_ADMIN (run as root), and "    \
            "CLOVIS_REQUIRE_PRIVILEGED=1 forbids skipping");             \
      MESSAGE(                                                           \
          "skipped: needs CAP_SYS_ADMIN + CAP_NET_ADMIN (run as root); " \
          "set CLOVIS_REQUIRE_PRIVILEGED=1 to make this a failure");     \
      return;                                                            \
    }                                                                    \
  } while (false)
