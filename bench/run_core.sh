#!/usr/bin/env bash
# Builds clovis-bench-core if needed and runs it; arguments are passed through
# (--quick, --json, --seed N, --sizes 10,1000,..., --tuples N). Build output and
# the command line go to stderr, so `--json` output on stdout stays clean.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build"

if [[ ! -f "$build/build.ninja" ]]; then
  echo "+ cmake --preset default" >&2
  (cd "$root" && cmake --preset default) >&2
fi
echo "+ ninja -C $build clovis-bench-core" >&2
ninja -C "$build" clovis-bench-core >&2

cmd=("$build/bench/clovis-bench-core" "$@")
echo "+ ${cmd[*]}" >&2
exec "${cmd[@]}"
