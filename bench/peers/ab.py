#!/usr/bin/env python3
"""Before/after of a data-path change on the peer suite's socket workloads (udp_pps,
conn_per_s; see run.py): two clovisd builds, measured in interleaved rounds in one
site, so that the machine's drift weighs on both alike. Each round measures plain
forwarding, then every build in turn (A B, next round B A), and each build in every
--modes mode (clovisd started on the N-rule mapping, one run of each workload,
stopped). Root, Python 3 stdlib, cc. See docs/BENCHMARKS.md ("2026-12-07: connection
tracking, assured and unreplied tables").

    sudo python3 bench/peers/ab.py --build before=/tmp/old/clovisd \\
        --build after=build/agentd/clovisd --rounds 7 --out /tmp/ab.json

Reported per workload and mode: each build's median [min-max] and the median of the
same-round ratios of the second build to the first, with their range."""
import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from edge import OtherClovisd  # noqa: E402
from run import Bench, build_tool, EdgeSite  # noqa: E402
from rulesets import SEED, clovis_mapping, log, rule_list  # noqa: E402
import random  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", metavar="NAME=CLOVISD", action="append", required=True,
                    help="a clovisd binary (twice: the first is A, the second B)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--rules", type=int, default=10000)
    ap.add_argument("--modes", default="route,redirect,snat", help="clovis link modes (snat: redirect + masquerade)")
    ap.add_argument("--workloads", default="udp_pps,conn_per_s")
    ap.add_argument("--duration", type=float, default=1.0)
    ap.add_argument("--ports", type=int, default=16)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    builds = dict(b.split("=", 1) for b in args.build)
    if len(builds) != 2:
        ap.error("give exactly two --build NAME=CLOVISD")
    if os.geteuid() != 0:
        print("skipped: needs root (network namespaces)", file=sys.stderr)
        return 77
    args.runs, args.no_iperf = 1, True
    names = list(builds)
    modes = [m for m in args.modes.split(",") if m]
    wls = [w for w in args.workloads.split(",") if w]
    rules, _ = rule_list(args.rules, "last", random.Random(SEED))
    got = {}  # (variant, workload) -> [rate per round]
    tmp = tempfile.mkdtemp(prefix="clovis-ab-")
    started = time.time()
    try:
        tool = build_tool(tmp, "udpblast")
        with EdgeSite(wans=2) as site:
            b = Bench(site, args, tool)
            log(f"site {site.prefix} up; {args.rounds} rounds; load average {os.getloadavg()}")
            for k in range(args.rounds):
                for w in wls:
                    got.setdefault(("plain", w), []).append(b.WORKLOADS[w](b, args.duration)["rate"])
                for name in names if k % 2 == 0 else reversed(names):
                    for mode in modes:
                        c = OtherClovisd(site, builds[name])
                        try:
                            c.start(clovis_mapping(rules, mode))
                            for w in wls:
                                r = b.WORKLOADS[w](b, args.duration)
                                if r.get("wan") != 1:
                                    raise RuntimeError(f"{mode}@{name}: {w} left by wan{r.get('wan')}, not wan1")
                                got.setdefault((f"{mode}@{name}", w), []).append(r["rate"])
                        finally:
                            c.close()
                log(f"  round {k + 1}: " + ", ".join(f"{v} {w} {r[-1]:.0f}" for (v, w), r in got.items()))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    summary = {}
    for w in wls:
        for mode in modes:
            a, bb = got[(f"{mode}@{names[0]}", w)], got[(f"{mode}@{names[1]}", w)]
            ratios = sorted(y / x for x, y in zip(a, bb))
            s = {names[0]: [statistics.median(a), min(a), max(a)], names[1]: [statistics.median(bb), min(bb), max(bb)],
                 "ratio_of_medians": statistics.median(bb) / statistics.median(a),
                 "same_round_ratio": [statistics.median(ratios), ratios[0], ratios[-1]]}
            summary[f"{mode} {w}"] = s
            log(f"{w:10s} {mode:8s} {names[0]} {s[names[0]][0]:10.0f} [{s[names[0]][1]:.0f}-{s[names[0]][2]:.0f}]  "
                f"{names[1]} {s[names[1]][0]:10.0f} [{s[names[1]][1]:.0f}-{s[names[1]][2]:.0f}]  "
                f"{names[1]}/{names[0]} {s['ratio_of_medians']:.3f} (same round {s['same_round_ratio'][0]:.3f} "
                f"[{s['same_round_ratio'][1]:.3f}-{s['same_round_ratio'][2]:.3f}])")
        p = got[("plain", w)]
        log(f"{w:10s} plain    {statistics.median(p):10.0f} [{min(p):.0f}-{max(p):.0f}]")
    with open(args.out, "w") as f:
        json.dump({"command": " ".join(sys.argv), "seconds": round(time.time() - started, 1),
                   "kernel": os.uname().release, "builds": builds,
                   "runs": {f"{v} {w}": r for (v, w), r in got.items()}, "summary": summary}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
