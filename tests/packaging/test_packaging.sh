#!/usr/bin/env bash
# Packaging checks: the man pages are clean for mandoc, clovisd(8) mentions
# every option clovisd has, and the systemd unit passes
# `systemd-analyze verify` without a single message.
#
#   tests/packaging/test_packaging.sh [PATH/TO/clovisd]
#
# The clovisd binary defaults to $CLOVIS_BUILD_DIR/agentd/clovisd
# (CLOVIS_BUILD_DIR defaults to <repo>/build). Without systemd-analyze the
# unit check is skipped, unless CLOVIS_REQUIRE_PRIVILEGED=1 (CI), which
# makes a skip a failure. Exit status 0 when every check passed.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${1:-${CLOVIS_BUILD_DIR:-$repo/build}/agentd/clovisd}
[[ $bin == /* ]] || bin=$PWD/$bin
unit=$repo/packaging/systemd/clovisd.service

# shellcheck source=tests/packaging/report.sh
. "$repo/tests/packaging/report.sh"

# Every man page: no mandoc message at level warning or above.
pages=("$repo"/man/*.[0-9])
if ! command -v mandoc >/dev/null; then
  fail "mandoc lint" "mandoc is not installed (apt-get install mandoc)"
elif [ ! -e "${pages[0]}" ]; then
  fail "mandoc lint" "no man pages under $repo/man"
else
  for page in "${pages[@]}"; do
    out=$(mandoc -Tlint -W warning "$page" 2>&1)
    rc=$?
    if [ $rc -eq 0 ] && [ -z "$out" ]; then
      pass "mandoc lint ${page#"$repo"/}"
    else
      fail "mandoc lint ${page#"$repo"/}" "${out:-mandoc exited with $rc}"
    fi
  done
fi

# clovisd(8) documents every long option of `clovisd --help`.
if [ ! -x "$bin" ]; then
  fail "clovisd(8) options" "no clovisd binary at $bin (build it, or pass its path)"
else
  missing=()
  for opt in $("$bin" --help | grep -o -- '--[a-z][a-z0-9-]*' | sort -u); do
    grep -qF -- "${opt//-/\\-}" "$repo/man/clovisd.8" || missing+=("$opt")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    pass "clovisd(8) options"
  else
    fail "clovisd(8) options" "not in man/clovisd.8: ${missing[*]}"
  fi
fi

# The unit, with ExecStart pointed at the built binary (verify checks that it
# is executable) and the repo's man pages on MANPATH (verify runs man(1) for
# each man: reference of Documentation=). Any message is a failure:
# systemd-analyze exits 0 on unknown keys.
if ! command -v systemd-analyze >/dev/null; then
  skip "systemd-analyze verify clovisd.service" "systemd-analyze is not installed"
elif [ ! -x "$bin" ]; then
  fail "systemd-analyze verify clovisd.service" "no clovisd binary at $bin (build it, or pass its path)"
else
  replaced=0
  while IFS= read -r line; do
    if [[ $line == ExecStart=/usr/sbin/clovisd* ]]; then
      line="ExecStart=$bin${line#ExecStart=/usr/sbin/clovisd}"
      replaced=$((replaced + 1))
    fi
    printf '%s\n' "$line"
  done <"$unit" >"$tmp/clovisd.service"
  for page in "${pages[@]}"; do
    [ -e "$page" ] || continue
    mkdir -p "$tmp/man/man${page##*.}"
    cp "$page" "$tmp/man/man${page##*.}/"
  done
  if [ $replaced -ne 1 ]; then
    fail "systemd-analyze verify clovisd.service" "expected one ExecStart=/usr/sbin/clovisd line in $unit, found $replaced"
  else
    err=$(MANPATH=$tmp/man SYSTEMD_LOG_COLOR=0 systemd-analyze verify "$tmp/clovisd.service" 2>&1 >/dev/null)
    rc=$?
    if [ $rc -eq 0 ] && [ -z "$err" ]; then
      pass "systemd-analyze verify clovisd.service"
    else
      fail "systemd-analyze verify clovisd.service" "${err:-systemd-analyze exited with $rc}"
    fi
  fi
fi

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
