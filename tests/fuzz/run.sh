#!/usr/bin/env bash
# Builds the core's libFuzzer target (build-fuzz/, clang-14, ASan + UBSan) and
# runs it for SECONDS over a corpus seeded from examples/ and the unit tests'
# loader corpus. Exit status 0: no crash, leak, OOM or timeout. See docs/FUZZING.md.
#
#   tests/fuzz/run.sh 60              # as CI runs it
#   tests/fuzz/run.sh 600 -jobs=1     # the recorded run; extra args go to libFuzzer
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:?usage: tests/fuzz/run.sh SECONDS [libFuzzer args...]}
shift
build=${CLOVIS_FUZZ_BUILD:-build-fuzz}

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLOVIS_FUZZ=ON -DCLOVIS_WERROR=OFF \
  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
  ${CMAKE_CXX_COMPILER_LAUNCHER:+-DCMAKE_CXX_COMPILER_LAUNCHER=$CMAKE_CXX_COMPILER_LAUNCHER} >/dev/null
cmake --build "$build" -j "${CLOVIS_FUZZ_JOBS:-2}" --target clovis-fuzz-mapping clovis-fuzz-seeds

# The corpus grows across runs in $build/corpus; seeds are refreshed each time.
seeds="$build/seeds"
rm -rf "$seeds" && mkdir -p "$seeds" "$build/corpus" "$build/artifacts"
cp examples/*.yaml "$seeds/"
"$build/tests/fuzz/clovis-fuzz-seeds" "$seeds"

# ASan holds freed memory in a quarantine (256 MB by default) to catch uses
# after free; a compile at the entries limit frees ~100 MB, so the default
# alone would fill most of the RSS limit. 64 MB keeps the limit about the core.
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=64}

# -rss_limit_mb: the bound on memory; -timeout: seconds per input (a release
# build answers any mapping in < 2 s; ASan and UBSan are ~3-5x slower);
# -max_len: inputs up to 64 KiB, enough for every shape of mapping.
echo "fuzz: ${seconds}s, $(ls "$seeds" | wc -l) seeds"
exec "$build/tests/fuzz/clovis-fuzz-mapping" -max_total_time="$seconds" -rss_limit_mb=512 -timeout=10 \
  -max_len=65536 -print_final_stats=1 -artifact_prefix="$build/artifacts/" "$@" "$build/corpus" "$seeds"
