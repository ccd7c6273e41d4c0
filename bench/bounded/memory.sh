#!/usr/bin/env bash
# Peak memory growth and time of core::check_mapping (what clovisctl validate
# and clovisd's apply --dry-run run) on each worst-case shape of
# gen_mapping.py, one process per shape so that no shape reuses another's
# freed heap. With MAX_MB, exits 1 if any shape grows the process by more:
# a memory bound checked here, by hand or in a soak, never in ctest.
#
#   bench/bounded/memory.sh build/bench/clovis-bench-memory [BYTES] [SHAPE...]
#   MAX_MB=120 bench/bounded/memory.sh build/bench/clovis-bench-memory
#
# See docs/BENCHMARKS.md, "Bounded apply".
set -uo pipefail
tool_name=CLOVIS-BENCH-MEMORY
# shellcheck source=bench/bounded/common.sh
. "$(dirname "$0")/common.sh" "$@"
bound=()
[ -n "${MAX_MB:-}" ] && bound=(--max-growth-mb "$MAX_MB")
rc=0
first=1
for s in "${shapes[@]}"; do
  f=$(mapping_file "$s")
  out=$("$tool" "${bound[@]}" "$f") || rc=1
  if (( first )); then echo "$out"; first=0; else tail -n +2 <<<"$out"; fi
done
exit $rc
