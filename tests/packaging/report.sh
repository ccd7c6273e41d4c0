# Sourced by the packaging tests: their counters, scratch directory and
# pass/fail/skip reporting (a skip fails under CLOVIS_REQUIRE_PRIVILEGED=1).
# shellcheck shell=bash
passed=0
failed=0
skipped=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

pass() { echo "ok   $1"; passed=$((passed + 1)); }
fail() {
  echo "FAIL $1"
  local line
  [ -z "${2:-}" ] || while IFS= read -r line; do echo "     $line"; done <<<"$2"
  failed=$((failed + 1))
}
skip() {
  if [ "${CLOVIS_REQUIRE_PRIVILEGED:-0}" = 1 ]; then
    fail "$1" "skipped: $2 (CLOVIS_REQUIRE_PRIVILEGED=1 makes a skip a failure)"
  else
    echo "skip $1: $2"
    skipped=$((skipped + 1))
  fi
}
