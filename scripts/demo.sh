#!/usr/bin/env bash
# The clovis demo on a built-in edge site: installs what is missing, builds,
# validates the example WAN mapping and explains how it classifies a few
# flows and requests.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
cmake --preset default >/dev/null
cmake --build --preset default -j "$(nproc)" --target clovisctl >/dev/null
ctl=./build/cli/clovisctl
map=examples/edge-site.yaml

step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "${*:2}"; "${@:2}"; }

step "Validate the mapping" $ctl validate -f $map
step "The Clovisor demo: user 'minions' to the video service takes broadband" \
  $ctl simulate -f $map --src 10.1.0.5 --dst 198.51.100.10 --sport 40000 --dport 8000 \
  --host video.example.com --header end-user=minions
step "...while user 'boss' stays on MPLS" \
  $ctl simulate -f $map --src 10.1.0.5 --dst 198.51.100.10 --sport 40001 --dport 8000 \
  --host video.example.com --header end-user=boss
step "Voice with MPLS degraded fails over to broadband" \
  $ctl simulate -f $map --src 10.1.0.7 --dst 192.0.2.200 --proto udp --sport 5060 --dport 5061 \
  --dscp ef --degraded mpls
step "Backups never use metered LTE: with MPLS and broadband down they are dropped" \
  $ctl simulate -f $map --src 10.1.20.5 --dst 203.0.113.9 --dport 22 --down mpls --down broadband
step "A typo is rejected with its position and a hint; nothing is applied" \
  bash -c "sed 's/gateway: 198.18.0.1/gatway: 198.18.0.1/' $map | $ctl validate -f - || true"
