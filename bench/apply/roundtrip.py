#!/usr/bin/env python3
"""The apply round trip of the peer suite (bench/peers/run.py), alone and for
several builds in one run: `clovisctl apply` (as people run it: a diff of at
most 40 lines and the counts) and `clovisctl apply -o json` (every change, as
scripts get it) replacing a running N-rule
route-mode mapping by another (the suite's rule sets and positions), next to
`nft -f` and `iptables-restore` of the same N in the same edge site. Root.

    sudo python3 bench/apply/roundtrip.py --sizes 1000,10000,100000 \\
        --builds /path/to/old/build,build --reps 5

Per build and size: the first apply after clovisd starts (what the suite
measures: the shadow bank is empty), then reps-1 more alternating between the
two rule sets (the shadow bank holds the set of two applies ago); clovisd's
own "total" and "kernel writes" from its log; clovisctl's CPU time. A build
directory needs agentd/clovisd and cli/clovisctl. See docs/BENCHMARKS.md.
"""
import argparse
import importlib.util
import os
import random
import re
import resource
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
sys.path.insert(0, os.path.join(REPO, "bench", "peers"))
import clovis_site  # noqa: E402
from edgesite import EdgeSite  # noqa: E402

_spec = importlib.util.spec_from_file_location("peers", os.path.join(REPO, "bench", "peers", "run.py"))
peers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(peers)


def med(v):
    v = [x for x in v if x is not None]
    return f"{statistics.median(v):.1f} [{min(v):.1f}-{max(v):.1f}]" if v else "-"


def timed(site, argv, input=None):
    t0 = time.monotonic()
    cp = site.run(site.ns_edge, argv, input=input, check=False, timeout=600)
    return (time.monotonic() - t0) * 1000 if cp.returncode == 0 else None


def peers_apply(site, n, last, reps):
    nft, ipt = [], []
    for _ in range(reps):
        nft.append(timed(site, ["nft", "-f", "-"], input=peers.nft_script(last)))
        site.run(site.ns_edge, "nft", "delete", "table", "ip", "clvbench", check=False)
        ipt.append(timed(site, ["iptables-restore"], input=peers.iptables_script(last, False)))
        site.run(site.ns_edge, "nft", "delete", "table", "ip", "mangle", check=False)
    print(f"{n:>7}  nft -f            {med(nft):>24}   load {os.getloadavg()[0]:.2f}", flush=True)
    print(f"{n:>7}  iptables-restore  {med(ipt):>24}", flush=True)


OUTPUTS = {"text": [], "json": ["-o", "json"]}


def clovis_apply(site, n, last, rand, build, reps, output):
    clovis_site.CLOVISD = os.path.join(build, "agentd", "clovisd")
    clovis_site.CLOVISCTL = os.path.join(build, "cli", "clovisctl")
    c = clovis_site.Clovisd(site, lan=("lan0",))
    try:
        c.start(peers.clovis_mapping(last, "route"))
        path = os.path.join(c.tmp, "apply.yaml")
        wall, cpu = [], []
        for i in range(reps):
            with open(path, "w") as f:
                f.write(peers.clovis_mapping(rand if i % 2 == 0 else last, "route"))
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.monotonic()
            cp = c.ctl("apply", "-f", path, *OUTPUTS[output], timeout=600)
            wall.append((time.monotonic() - t0) * 1000 if cp.returncode == 0 else None)
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append((r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) * 1000)
            if cp.returncode != 0:
                print(f"apply failed: {cp.stderr[-300:]}", flush=True)
        logged = re.findall(r"\(([\d.]+) ms kernel writes, ([\d.]+) ms total\)", c.read_log())[1:]
        kernel = [float(k) for k, _ in logged]
        total = [float(t) for _, t in logged]
        first = f"{wall[0]:.1f}" if wall[0] is not None else "failed"
        print(f"{n:>7}  clovisctl apply {output:<5} first {first:>7} (clovisd {total[0]:.1f}, kernel {kernel[0]:.1f})   "
              f"later {med(wall[1:])} (clovisd {med(total[1:])}, kernel {med(kernel[1:])})   "
              f"clovisctl cpu {med(cpu)}   [{build}]", flush=True)
    finally:
        c.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--builds", default=os.path.join(REPO, "build"), help="build directories, comma-separated")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--outputs", default="text,json", help="clovisctl outputs to measure: text, json")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/apply/roundtrip.py needs root (network namespaces)", file=sys.stderr)
        return 1
    sizes = [int(s) for s in args.sizes.split(",")]
    builds = args.builds.split(",")
    rng = random.Random(peers.SEED)
    sets = {}
    for n in sorted(set(sizes) | {10, 1000, 10000, 100000}):  # the suite's order, hence its positions
        last, _ = peers.rule_list(n, "last", rng)
        rand, pos = peers.rule_list(n, "random", rng)
        sets[n] = (last, rand, pos)
    with EdgeSite(wans=2) as site:
        print(f"site {site.prefix}; load {os.getloadavg()}; {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}",
              flush=True)
        for n in sizes:
            last, rand, pos = sets[n]
            print(f"{n:>7}  (the replacing set has the measured rule at #{pos + 1})", flush=True)
            peers_apply(site, n, last, args.reps)
            for b in builds:
                for o in args.outputs.split(","):
                    clovis_apply(site, n, last, rand, b, args.reps, o)
        print(f"load {os.getloadavg()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
