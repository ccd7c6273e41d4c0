#!/usr/bin/env bash
# clang-format check (.clang-format, bpf/.clang-format; Debian's clang-format).
#
#   scripts/format-check.sh [BASE]   the C/C++ files changed since BASE (a commit;
#                                    default: the merge base with main, else HEAD),
#                                    committed, staged, or new; exits 1 naming those not clean
#   scripts/format-check.sh --all    every tracked C/C++ file not clean
#   scripts/format-check.sh --diff [BASE]   the same as the first, printing the fixes
#
# Checks whole files: a change to a file that was not clean before asks for
# the file to be formatted, so the tree converges on clean.
set -euo pipefail
cd "$(dirname "$0")/.."

usage="usage: $0 [--diff] [BASE] | --all"
clang_format=${CLANG_FORMAT:-clang-format}
command -v "$clang_format" >/dev/null ||
  { echo "format-check: $clang_format not found; run scripts/bootstrap.sh" >&2; exit 2; }

show_diff=0
all=0
base=
while [ $# -gt 0 ]; do
  case "$1" in
    --all) all=1 ;;
    --diff) show_diff=1 ;;
    -*) echo "$usage" >&2; exit 2 ;;
    *) [ -z "$base" ] || { echo "$usage" >&2; exit 2; }; base=$1 ;;
  esac
  shift
done

exts=('*.c' '*.h' '*.cpp' '*.hpp' '*.cc')
if [ "$all" = 1 ]; then
  mapfile -t files < <(git ls-files -- "${exts[@]}")
else
  if [ -z "$base" ]; then
    base=$(git merge-base HEAD main 2>/dev/null || git rev-parse HEAD)
  fi
  git rev-parse --verify -q "$base^{commit}" >/dev/null ||
    { echo "format-check: '$base' is not a commit" >&2; exit 2; }
  # Changed since BASE, in commits or in the work tree; deleted files left out.
  mapfile -t files < <({
    git diff --name-only --diff-filter=ACMR "$base" -- "${exts[@]}"
    git ls-files --others --exclude-standard -- "${exts[@]}"
  } | sort -u)
fi

bad=()
for f in "${files[@]}"; do
  [ -f "$f" ] || continue
  if ! "$clang_format" --style=file --dry-run --Werror "$f" >/dev/null 2>&1; then
    bad+=("$f")
    [ "$show_diff" = 0 ] || "$clang_format" --style=file "$f" | diff -u --label "$f" --label "$f (formatted)" "$f" - || true
  fi
done

if [ ${#bad[@]} -eq 0 ]; then
  echo "format-check: ${#files[@]} file(s) clean"
  exit 0
fi
printf '%s\n' "${bad[@]}"
echo "format-check: ${#bad[@]} of ${#files[@]} file(s) not clang-format clean; fix with: clang-format -i --style=file FILE" >&2
exit 1
