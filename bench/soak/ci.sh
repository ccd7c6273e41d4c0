#!/usr/bin/env bash
# CI's soak: 60 s of bench/soak/soak.py against clovisd, clovisctl and
# clovis-check-load built with ASan+UBSan (preset asan). Needs root. The
# summary, logs and any sanitizer report stay in $CLOVIS_SOAK_OUT (default
# build-asan/soak). See docs/SOAK.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
cmake --preset asan >/dev/null
cmake --build --preset asan -j "$(nproc)" --target clovisd clovisctl clovis-check-load
exec python3 bench/soak/soak.py --seconds 60 --build-dir build-asan --out "${CLOVIS_SOAK_OUT:-build-asan/soak}"
