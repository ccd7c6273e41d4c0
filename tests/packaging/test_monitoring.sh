#!/usr/bin/env bash
# The monitoring kit in packaging/ (alert rules, their unit tests, the example
# Prometheus configuration, the Grafana dashboard):
#  - promtool check rules, promtool test rules, promtool check config on the
#    example (its rule_files pointed at the repo's rules), and promtool check
#    rules on the dashboard's expressions (so that PromQL parses them);
#  - check_monitoring.py: the dashboard's JSON, and every metric name of the
#    rules and the dashboard one of packaging/prometheus/metric-names.txt; and
#    that it rejects a dashboard with a name that is not.
#
#   tests/packaging/test_monitoring.sh [PYTHON]
#
# Without promtool (Debian package prometheus) its checks are skipped, unless
# CLOVIS_REQUIRE_PRIVILEGED=1 (CI), which makes a skip a failure. Exit status
# 0 when every check passed.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
python=${1:-python3}
prom=$repo/packaging/prometheus
dashboard=$repo/packaging/grafana/clovis-dashboard.json
checker=$repo/tests/packaging/check_monitoring.py

# shellcheck source=tests/packaging/report.sh
. "$repo/tests/packaging/report.sh"

# run NAME COMMAND...: passes when COMMAND exits 0; its output is shown when it does not.
run() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    pass "$name"
  else
    fail "$name" "$out"
  fi
}

# ---- check_monitoring.py ----------------------------------------------------

if ! "$python" -c 'import yaml' 2>/dev/null; then
  fail "check_monitoring.py" "$python cannot import yaml (apt-get install python3-yaml)"
else
  # Its own lines say what passed; a failure is one of them.
  out=$("$python" "$checker" --emit-rules "$tmp/dashboard-rules.yml" 2>&1)
  rc=$?
  while IFS= read -r line; do echo "     $line"; done <<<"$out"
  if [ $rc -eq 0 ]; then
    pass "check_monitoring.py"
  else
    fail "check_monitoring.py" "exited with $rc (see its FAIL lines above)"
  fi

  # The name check can fail: a dashboard naming clovis_link_flow (no s) is refused.
  sed 's/clovis_link_flows{/clovis_link_flow{/' "$dashboard" >"$tmp/misnamed.json"
  if cmp -s "$dashboard" "$tmp/misnamed.json"; then
    fail "check_monitoring.py refuses an unknown metric name" "the dashboard has no clovis_link_flows{ to misspell"
  elif out=$("$python" "$checker" --dashboard "$tmp/misnamed.json" 2>&1); then
    fail "check_monitoring.py refuses an unknown metric name" "it passed a dashboard using clovis_link_flow"
  elif ! grep -q 'clovis_link_flow is not in metric-names.txt' <<<"$out"; then
    fail "check_monitoring.py refuses an unknown metric name" "it failed for another reason:"$'\n'"$out"
  else
    pass "check_monitoring.py refuses an unknown metric name"
  fi
fi

# ---- promtool ---------------------------------------------------------------

if ! command -v promtool >/dev/null; then
  skip "promtool checks" "promtool is not installed (apt-get install prometheus)"
else
  run "promtool check rules clovis-alerts.yml" promtool check rules "$prom/clovis-alerts.yml"
  # Relative rule_files are resolved from the test file's directory.
  run "promtool test rules clovis-alerts.test.yml" promtool test rules "$prom/clovis-alerts.test.yml"

  # The example names the installed rules; check it with the repo's instead.
  sed "s#/usr/share/clovis/prometheus/#$prom/#" "$prom/prometheus.example.yml" >"$tmp/prometheus.yml"
  if ! grep -qF "$prom/clovis-alerts.yml" "$tmp/prometheus.yml"; then
    fail "promtool check config prometheus.example.yml" \
      "the example has no rule_files entry /usr/share/clovis/prometheus/clovis-alerts.yml"
  else
    run "promtool check config prometheus.example.yml" promtool check config "$tmp/prometheus.yml"
  fi

  if [ -s "$tmp/dashboard-rules.yml" ]; then
    run "promtool check rules on the dashboard's expressions" promtool check rules "$tmp/dashboard-rules.yml"
  else
    fail "promtool check rules on the dashboard's expressions" "check_monitoring.py wrote none"
  fi
fi

summary="$passed passed, $failed failed"
[ "$skipped" -eq 0 ] || summary+=" ($skipped skipped)"
echo "$summary"
[ "$failed" -eq 0 ]
