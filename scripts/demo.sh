#!/usr/bin/env bash
# The clovis demo: installs what is missing, builds, then runs clovisd on a
# throwaway network-namespace edge site with three WAN links, steers real
# traffic, shows what clovisctl and the counters say, fails a link, cleans up.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
cmake --preset default >/dev/null
cmake --build --preset default -j "$(nproc)" --target clovisctl clovisd >/dev/null
exec python3 scripts/demo.py
