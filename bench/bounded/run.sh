#!/usr/bin/env bash
# Time and peak memory of `clovisctl validate` (the core path clovisd's apply
# --dry-run takes) on each worst-case mapping shape of gen_mapping.py.
#
#   bench/bounded/run.sh build/cli/clovisctl [BYTES] [SHAPE...]
#
# BYTES: size of the filled shapes (default 16 MiB, core::kMaxMappingBytes).
# Each run is capped at 10 GB of address space and 120 s. See docs/BENCHMARKS.md.
set -uo pipefail
tool_name=CLOVISCTL
# shellcheck source=bench/bounded/common.sh
. "$(dirname "$0")/common.sh" "$@"
ctl=$tool
printf '%-12s %10s %8s %10s %5s  %s\n' shape bytes seconds "max RSS MB" exit "first line of output"
for s in "${shapes[@]}"; do
  f=$(mapping_file "$s")
  out=$(prlimit --as=10000000000 timeout 120 /usr/bin/time -f 'TIME %e %M' "$ctl" validate -f "$f" 2>&1)
  rc=$?
  t=$(grep '^TIME' <<<"$out" | tail -1)
  read -r _ secs kb <<<"$t"
  first=$(grep -v '^TIME' <<<"$out" | head -1 | cut -c1-150)
  printf '%-12s %10s %8s %10s %5s  %s\n' "$s" "$(stat -c %s "$f")" "${secs:--}" "$(( ${kb:-0} / 1024 ))" "$rc" "$first"
done
