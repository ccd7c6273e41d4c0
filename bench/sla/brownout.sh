#!/bin/sh
# Time from a brownout starting to a voice flow moving off the link (#17
# item 8), on the namespace site of tests/integration/test_sla_migration.py:
# DNS probes every 100 ms answered by a responder that starts answering 90 ms
# late, an SLA class of 60 ms, a UDP flow at 1000 datagrams/s. Runs the
# scenario N times (default 5) and prints each figure. Root; run from the
# source tree after a build (clovisd, clovisctl in build/).
#
#   sh bench/sla/brownout.sh [N]
set -eu
n=${1:-5}
cd "$(dirname "$0")/../.."
i=0
while [ "$i" -lt "$n" ]; do
	python3 tests/integration/test_sla_migration.py -k browned 2>&1 | grep '^brownout' || {
		echo "run $i failed" >&2
		exit 1
	}
	i=$((i + 1))
done
