#!/usr/bin/env python3
"""clovisd's growth through `clovisctl apply --dry-run` of each worst-case
mapping shape (gen_mapping.py): a fresh clovisd per shape on an edge site
(tests/integration/edgesite.py), its VmRSS before and its peak (VmHWM) and
VmRSS after the dry run, and the dry run's wall time. Root.

    sudo python3 bench/bounded/dryrun.py --build build [--bytes 16777216] [SHAPE...]

See docs/BENCHMARKS.md, "Bounded apply".
"""
import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import clovis_site  # noqa: E402
from edgesite import EdgeSite  # noqa: E402
import gen_mapping  # noqa: E402  (beside this file: the script's own directory is on sys.path)

SHAPES = gen_mapping.DEFAULT_SHAPES


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--bytes", type=int, default=16 << 20)
    ap.add_argument("--dir", default="/tmp/clovis-bounded")
    ap.add_argument("shapes", nargs="*", default=SHAPES)
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/bounded/dryrun.py needs root (network namespaces)", file=sys.stderr)
        return 1
    clovis_site.CLOVISD = os.path.join(a.build, "agentd", "clovisd")
    clovis_site.CLOVISCTL = os.path.join(a.build, "cli", "clovisctl")
    os.makedirs(a.dir, exist_ok=True)
    with EdgeSite(wans=2) as site:
        start = ("version: 1\nlinks:\n  - {name: a, interface: wan0, gateway: %s}\n"
                 "  - {name: b, interface: wan1, gateway: %s}\n" % (site.wan_gateway(0), site.wan_gateway(1)))
        print(f"site {site.prefix}; {a.build}; load {os.getloadavg()[0]:.2f}", flush=True)
        print(f"{'shape':<12} {'bytes':>9} {'seconds':>8} {'RSS MB':>7} {'peak MB':>8} {'after MB':>8}  exit  first line")
        for s in a.shapes:
            path = os.path.join(a.dir, f"{s}-{a.bytes}.yaml")
            if not os.path.exists(path):
                with open(path, "w") as f:
                    subprocess.run([sys.executable, os.path.join(HERE, "gen_mapping.py"), s, "--bytes", str(a.bytes)],
                                   stdout=f, check=True)
            c = clovis_site.Clovisd(site, lan=("lan0",))
            try:
                c.start(start)
                pid = c.proc.pid
                rss0 = status_kb(pid, "VmRSS")
                t0 = time.monotonic()
                cp = c.ctl("apply", "--dry-run", "-f", path, timeout=300)
                dt = time.monotonic() - t0
                hwm, rss1 = status_kb(pid, "VmHWM"), status_kb(pid, "VmRSS")
                first = (cp.stdout + cp.stderr).strip().splitlines()[:1]
                print(f"{s:<12} {os.path.getsize(path):>9} {dt:>8.2f} {rss0 / 1024:>7.0f} {hwm / 1024:>8.0f} "
                      f"{rss1 / 1024:>8.0f}  {cp.returncode:>4}  {(first[0] if first else '')[:110]}", flush=True)
            finally:
                c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
