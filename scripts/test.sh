#!/usr/bin/env bash
# Runs every clovis test: installs what is missing, builds, runs ctest.
# Privileged (kernel) tests run when root; with CLOVIS_REQUIRE_PRIVILEGED=1 a
# skipped privileged test is a failure (CI sets it).
#
#   scripts/test.sh            default build (build/)
#   scripts/test.sh --asan     also build and run the unit tests under ASan+UBSan
set -euo pipefail
cd "$(dirname "$0")/.."

asan=0
for a in "$@"; do
  case "$a" in
    --asan) asan=1 ;;
    *) echo "usage: $0 [--asan]" >&2; exit 2 ;;
  esac
done

bash scripts/bootstrap.sh
jobs=$(nproc)

echo "== build (preset default)"
cmake --preset default >/dev/null
cmake --build --preset default -j "$jobs"
echo "== test (preset default)"
ctest --preset default -j "$jobs"

if [ "$asan" = 1 ]; then
  echo "== build (preset asan)"
  cmake --preset asan >/dev/null
  cmake --build --preset asan -j "$jobs" --target clovis-unit-tests
  echo "== unit tests under ASan+UBSan"
  ctest --preset asan -j "$jobs" -L unit
fi
