#!/usr/bin/env bash
# Time and peak memory of `clovisctl validate` (the core path clovisd's apply
# --dry-run takes) on each worst-case mapping shape of gen_mapping.py.
#
#   bench/bounded/run.sh build/cli/clovisctl [BYTES] [SHAPE...]
#
# BYTES: size of the filled shapes (default 16 MiB, core::kMaxMappingBytes).
# Each run is capped at 10 GB of address space and 120 s. See docs/BENCHMARKS.md.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ctl=${1:?usage: $0 CLOVISCTL [BYTES] [SHAPE...]}
bytes=${2:-16777216}
shift $(( $# >= 2 ? 2 : 1 ))
shapes=("$@")
[ ${#shapes[@]} -eq 0 ] && shapes=(issue issue-same rules tiny wide wide-max shapes srclist mixed-fam policies policies-max errors deep longstr
                                   aliases alias-rules alias-match alias-src)
dir=${CLOVIS_BENCH_DIR:-/tmp/clovis-bounded}
mkdir -p "$dir"
printf '%-12s %10s %8s %10s %5s  %s\n' shape bytes seconds "max RSS MB" exit "first line of output"
for s in "${shapes[@]}"; do
  f="$dir/$s-$bytes.yaml"
  [ -s "$f" ] || python3 "$here/gen_mapping.py" "$s" --bytes "$bytes" > "$f"
  out=$(prlimit --as=10000000000 timeout 120 /usr/bin/time -f 'TIME %e %M' "$ctl" validate -f "$f" 2>&1)
  rc=$?
  t=$(grep '^TIME' <<<"$out" | tail -1)
  read -r _ secs kb <<<"$t"
  first=$(grep -v '^TIME' <<<"$out" | head -1 | cut -c1-150)
  printf '%-12s %10s %8s %10s %5s  %s\n' "$s" "$(stat -c %s "$f")" "${secs:--}" "$(( ${kb:-0} / 1024 ))" "$rc" "$first"
done
