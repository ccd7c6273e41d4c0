#!/usr/bin/env bash
# The Kubernetes manifests in packaging/kubernetes/, offline (there is no
# cluster): check_kubernetes.py decodes every object strictly against the
# Kubernetes API schema of python3-kubernetes, checks the DaemonSet against the
# systemd unit, `clovisd --help` and `clovisctl validate`, runs its start
# script, and proves that its checks fail on known-bad input; promtool checks
# the Prometheus examples in packaging/kubernetes/prometheus/.
#
#   tests/packaging/test_kubernetes.sh CLOVISD CLOVISCTL [PYTHON]
#
# PYTHON (CMake's interpreter) may be one that cannot see Debian's python3
# modules (e.g. a pyenv one); /usr/bin/python3 is tried next. Without
# python3-kubernetes the check is skipped, unless CLOVIS_REQUIRE_PRIVILEGED=1
# (CI), which makes a skip a failure. Exit status 0 when every check passed.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
clovisd=${1:?usage: test_kubernetes.sh CLOVISD CLOVISCTL [PYTHON]}
clovisctl=${2:?usage: test_kubernetes.sh CLOVISD CLOVISCTL [PYTHON]}

# shellcheck source=tests/packaging/report.sh
. "$repo/tests/packaging/report.sh"

python=
for p in ${3:-} /usr/bin/python3 python3; do
  if "$p" -c 'import kubernetes.client, yaml' 2>/dev/null; then
    python=$p
    break
  fi
done

if [ -z "$python" ]; then
  skip "check_kubernetes.py" "no python3 here imports kubernetes and yaml (apt-get install python3-kubernetes python3-yaml)"
else
  # Its own lines say what passed; a failure is one of them.
  out=$("$python" "$repo/tests/packaging/check_kubernetes.py" --clovisd "$clovisd" --clovisctl "$clovisctl" 2>&1)
  rc=$?
  while IFS= read -r line; do echo "     $line"; done <<<"$out"
  if [ $rc -eq 0 ]; then
    pass "check_kubernetes.py"
  else
    fail "check_kubernetes.py" "exited with $rc (see its FAIL lines above)"
  fi
fi

# The Prometheus examples, their rule_files pointed at the repo's rules.
if ! command -v promtool >/dev/null; then
  skip "promtool check config prometheus/*.yml" "promtool is not installed (apt-get install prometheus)"
else
  for f in "$repo"/packaging/kubernetes/prometheus/*.yml; do
    sed "s#/usr/share/clovis/prometheus/#$repo/packaging/prometheus/#" "$f" >"$tmp/${f##*/}"
    if out=$(promtool check config "$tmp/${f##*/}" 2>&1); then
      pass "promtool check config prometheus/${f##*/}"
    else
      fail "promtool check config prometheus/${f##*/}" "$out"
    fi
  done
fi

summary="$passed passed, $failed failed"
[ "$skipped" -eq 0 ] || summary+=" ($skipped skipped)"
echo "$summary"
[ "$failed" -eq 0 ]
