#!/usr/bin/env bash
# Runs every clovis test: installs what is missing, builds, runs ctest.
# Privileged (kernel) tests run when root; with CLOVIS_REQUIRE_PRIVILEGED=1 a
# skipped privileged test is a failure (CI sets it).
#
#   scripts/test.sh            default build (build/)
#   scripts/test.sh --asan     run the unit tests under ASan+UBSan instead (build-asan/),
#                              and a 60 s soak of clovisd under them (root)
#   scripts/test.sh --fuzz-seconds N
#                              also fuzz the core for N seconds (tests/fuzz/run.sh,
#                              build-fuzz/; docs/FUZZING.md)
set -euo pipefail
cd "$(dirname "$0")/.."

usage="usage: $0 [--asan] [--fuzz-seconds N]"
asan=0
fuzz=0
while [ $# -gt 0 ]; do
  case "$1" in
    --asan) asan=1 ;;
    --fuzz-seconds)
      [[ "${2:-}" =~ ^[0-9]+$ ]] || { echo "$usage" >&2; exit 2; }
      fuzz=$2
      shift ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
  shift
done

# Each phase says how long it took, and the end sums them up: what CI time is
# spent on (README.md, "Layout", keeps the last full run's numbers).
phases=""
phase_name=""
phase_start=$(date +%s)
phase() {
  local now
  now=$(date +%s)
  [ -z "$phase_name" ] || phases+="  $(( now - phase_start ))s  $phase_name"$'\n'
  phase_name="$1"
  phase_start=$now
  [ -z "$1" ] || echo "== $1"
}
trap 'phase ""; printf "== phase times\n%s" "$phases"' EXIT

phase "install what is missing (scripts/bootstrap.sh)"
bash scripts/bootstrap.sh
jobs=$(nproc)

phase "build (preset default)"
# With --asan the unit tests run once, under ASan+UBSan (below), and the
# default build leaves them out: they were 26-31% of a clean build's compile time.
unit_default=ON
[ "$asan" = 0 ] || unit_default=OFF
cmake --preset default -DCLOVIS_UNIT_TESTS="$unit_default" >/dev/null
cmake --build --preset default -j "$jobs"
# Two tests need Debian roots made from the Debian mirror; they are made here, once and
# cached, so that ctest never reaches the network: the root tests/packaging/test_deb.sh
# installs the .deb in (docs/PACKAGING.md), and the container image's base layer, keyed by
# the .deb's dependencies, from which tests/integration/test_container.py builds its
# images offline (docs/CONTAINER.md).
if [ "$(id -u)" = 0 ]; then
  phase "Debian roots for the package and container tests (cached)"
  # shellcheck source=tests/packaging/deb_root.sh
  . tests/packaging/deb_root.sh
  make_deb_root || { [ "${CLOVIS_REQUIRE_PRIVILEGED:-0}" != 1 ] || exit 1; }
  (cd build && cpack -G DEB >/dev/null)
  bash packaging/container/build.sh base "$(ls -t build/clovis_*.deb | head -n1)" || {
    echo "no container base layer: test_container will fail (CI) or skip" >&2
    [ "${CLOVIS_REQUIRE_PRIVILEGED:-0}" != 1 ] || exit 1
  }
fi
phase "test (preset default)"
ctest --preset default -j "$jobs"

if [ "$asan" = 1 ]; then
  phase "build (preset asan)"
  cmake --preset asan >/dev/null
  cmake --build --preset asan -j "$jobs" --target clovis-unit-tests
  phase "unit tests under ASan+UBSan"
  ctest --preset asan -j "$jobs" -L unit
  if [ "$(id -u)" = 0 ]; then
    phase "soak, 60 s under ASan+UBSan (bench/soak, docs/SOAK.md)"
    bash bench/soak/ci.sh
  elif [ "${CLOVIS_REQUIRE_PRIVILEGED:-0}" = 1 ]; then
    echo "the soak needs root and CLOVIS_REQUIRE_PRIVILEGED=1 makes that a failure" >&2
    exit 1
  fi
fi

if [ "$fuzz" -gt 0 ]; then
  phase "fuzz the core for ${fuzz}s"
  tests/fuzz/run.sh "$fuzz"
fi
