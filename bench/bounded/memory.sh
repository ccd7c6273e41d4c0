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
here=$(cd "$(dirname "$0")" && pwd)
tool=${1:?usage: $0 CLOVIS-BENCH-MEMORY [BYTES] [SHAPE...]}
bytes=${2:-16777216}
shift $(( $# >= 2 ? 2 : 1 ))
shapes=("$@")
[ ${#shapes[@]} -eq 0 ] && shapes=(issue issue-same rules tiny wide wide-max shapes srclist mixed-fam policies policies-max errors deep longstr
                                   aliases alias-rules alias-match alias-src)
dir=${CLOVIS_BENCH_DIR:-/tmp/clovis-bounded}
mkdir -p "$dir"
bound=()
[ -n "${MAX_MB:-}" ] && bound=(--max-growth-mb "$MAX_MB")
rc=0
first=1
for s in "${shapes[@]}"; do
  f="$dir/$s-$bytes.yaml"
  [ -s "$f" ] || python3 "$here/gen_mapping.py" "$s" --bytes "$bytes" > "$f"
  out=$("$tool" "${bound[@]}" "$f") || rc=1
  if (( first )); then echo "$out"; first=0; else tail -n +2 <<<"$out"; fi
done
exit $rc
