#!/usr/bin/env python3
"""Peer benchmarks (issue 6): clovis against plain kernel forwarding, mwan3-style
iptables marking and an nftables mark map, in one edge site (tests/integration/
edgesite.py) and one run. Root, Python 3 stdlib, cc, iproute2, iptables, nftables;
iperf3 optional. See the "Peers: forwarding and apply" section of docs/BENCHMARKS.md.

    sudo python3 bench/peers/run.py --out results.json           # full suite, minutes
    sudo python3 bench/peers/run.py --quick --out /tmp/q.json     # CI smoke, < 60 s

Every figure is a rate through the edge namespace (lan -> edge -> wan1 -> cloud);
ratios are to plain forwarding measured at the same size in the same run.

The udp_pps_edge workload isolates the edge: packets are injected at the edge's
LAN interface by xdpgen (BPF_PROG_RUN live frames, no socket), dropped at the WAN
routers' ingress (a TCX drop), and the whole path runs on one pinned CPU, whose
CPU time per forwarded packet is the figure; variants are interleaved round by
round (see EdgeBench).
"""
import argparse
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
from edgesite import EdgeSite  # noqa: E402
from clovis_site import Clovisd, CLOVISD, CLOVISCTL  # noqa: E402

from edge import EDGE_EXTRA_VARIANTS, EDGE_VARIANTS, EdgeBench  # noqa: E402
from rulesets import (SEED, SERVER, CONN_PORT, IPERF_PORT, UDP_PORT, clovis_mapping,  # noqa: E402
                      iptables_script, log, nft_script, peer_routing, rule_list)

WORKLOADS = ("udp_pps", "tcp_mbps", "conn_per_s", "udp_pps_edge")


# ----- the bench ------------------------------------------------------------------------
class Bench:
    def __init__(self, site, args, tool):
        self.site, self.args, self.tool = site, args, tool
        self.iperf = shutil.which("iperf3") if not args.no_iperf else None
        self.iptables_nft = "nf_tables" in subprocess.run(["iptables", "-V"], capture_output=True,
                                                           text=True).stdout
        self.results = {}
        self.apply = {}
        self.notes = []
        self.edge = None  # an EdgeBench when udp_pps_edge is measured

    def peer_routing(self, on):
        peer_routing(self.site, on)

    def wan_tx(self):
        return [self.site.counters(self.site.ns_edge, f"wan{w}")["tx_packets"] for w in (0, 1)]

    def _server(self, ns, argv):
        p = self.site.popen(ns, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = p.stdout.readline()
        if "ready" not in line:
            raise RuntimeError(f"{argv[1]} did not start: {line}{p.stderr.read()}")
        return p

    def _finish(self, p):
        out, err = p.communicate(timeout=30)
        self.site.stop(p)
        return json.loads(out.strip().splitlines()[-1])

    def udp_pps(self, dur):
        s = self.site
        rx = self._server(s.ns_cloud, [self.tool, "recv", UDP_PORT, dur + 1.5])
        before = self.wan_tx()
        out = s.run(s.ns_lan, self.tool, "send", SERVER, UDP_PORT, dur, 50_000_000, self.args.ports,
                    timeout=dur + 30)
        after = self.wan_tx()
        snd = json.loads(out.stdout)
        got = self._finish(rx)
        delta = [a - b for a, b in zip(after, before)]
        return {"rate": sum(delta) / snd["seconds"], "sent_pps": snd["sent"] / snd["seconds"],
                "recv": got["received"], "wan": delta.index(max(delta))}

    def tcp_mbps(self, dur):
        s = self.site
        if not self.iperf:
            t = s.tcp_transfer(IPERF_PORT, 64 << 20)
            return {"rate": t.mbit_per_s, "wan": t.wan}
        srv = s.popen(s.ns_cloud, ["iperf3", "-s", "-1", "-p", IPERF_PORT])
        out = None
        for _ in range(50):
            # iperf3 takes whole seconds only (-t 0 would mean "forever")
            cp = s.run(s.ns_lan, "iperf3", "-c", SERVER, "-p", IPERF_PORT, "-t", max(1, round(dur)), "-J",
                       check=False, timeout=dur + 30)
            if cp.returncode == 0 and "sum_received" in cp.stdout:
                out = json.loads(cp.stdout)
                break
            time.sleep(0.05)
        s.stop(srv)
        if out is None:
            raise RuntimeError(f"iperf3 failed: {cp.stdout[-400:]}{cp.stderr[-400:]}")
        return {"rate": out["end"]["sum_received"]["bits_per_second"] / 1e6}

    def conn_rate(self, dur):
        s = self.site
        srv = self._server(s.ns_cloud, [self.tool, "accept", CONN_PORT, dur + 1.5])
        before = self.wan_tx()
        out = json.loads(s.run(s.ns_lan, self.tool, "conn", SERVER, CONN_PORT, dur, 2_000_000,
                               timeout=dur + 30).stdout)
        after = self.wan_tx()
        self._finish(srv)
        delta = [a - b for a, b in zip(after, before)]
        return {"rate": out["connections"] / out["seconds"], "failed": out["failed"],
                "wan": delta.index(max(delta))}

    WORKLOADS = {"udp_pps": udp_pps, "tcp_mbps": tcp_mbps, "conn_per_s": conn_rate}

    def point(self, n, variant, workloads):
        for wl in workloads:
            got = []
            try:
                for _ in range(self.args.runs):
                    got.append(self.WORKLOADS[wl](self, self.args.duration))
            except Exception as e:  # a peer that does not survive this size: note it, go on
                self.notes.append(f"{variant} at {n} rules, {wl}: {e}")
                log(f"  {variant:22s} {wl:10s} FAILED: {str(e)[:200]}")
                continue
            pt = self.record(n, variant, wl, got)
            wans = sorted({d.get("wan") for d in pt["detail"] if d.get("wan") is not None})
            ratio = f" ratio {pt['ratio']['median']:.2f}x" if "ratio" in pt else ""
            log(f"  {variant:22s} {wl:10s} median {pt['median']:12.1f} [{pt['min']:.1f}-{pt['max']:.1f}]"
                f"{ratio} via wan{wans}")

    def record(self, n, variant, wl, got):
        """Stores the runs of one point (each a dict with "rate" and details) with
        min/median/max and the ratios to plain's median at the same size."""
        runs = [r["rate"] for r in got]
        pt = {"runs": runs, "min": min(runs), "median": statistics.median(runs), "max": max(runs),
              "detail": [{k: v for k, v in r.items() if k != "rate"} for r in got]}
        base = self.results.get(str(n), {}).get("plain", {}).get(wl)
        if base and variant not in ("plain", "rx-floor"):
            pt["ratio"] = {k: pt[k] / base["median"] for k in ("min", "median", "max")}
        self.results.setdefault(str(n), {}).setdefault(variant, {})[wl] = pt
        return pt

    def timed(self, argv, input=None, ns=None):
        t0 = time.monotonic()
        cp = self.site.run(ns or self.site.ns_edge, argv, input=input, check=False, timeout=600)
        dt = time.monotonic() - t0
        if cp.returncode != 0:
            return None, cp.stderr.strip()[-300:]
        return dt * 1000, None

    def record_apply(self, n, peer, ms, err):
        self.apply.setdefault(str(n), {})[peer] = ms if ms is not None else f"failed: {err}"
        log(f"  apply {peer:18s} {n:>6} rules: " + (f"{ms:.1f} ms" if ms is not None else f"FAILED {err}"))

    def size(self, n, rng):
        all_wl = [w for w in self.WORKLOADS if w in self.args.workloads]
        pps = [w for w in ("udp_pps",) if w in all_wl]
        log(f"== {n} rules ==")
        last, _ = rule_list(n, "last", rng)
        rand, pos = rule_list(n, "random", rng)
        if self.edge:
            self.edge.phase(n, last, self.args.runs, self.args.duration)
        if not all_wl:
            return
        self.point(n, "plain", all_wl)
        log(f"  random variant: the measured flow's rule is #{pos + 1} of {n}")
        e = self.site.ns_edge

        # (c) nftables mark map
        self.peer_routing(True)
        for name, rules, wls in (("nft-map", last, all_wl), ("nft-map/random", rand, pps)):
            ms, err = self.timed(["nft", "-f", "-"], input=nft_script(rules))
            if name == "nft-map":
                self.record_apply(n, "nft -f", ms, err)
            if ms is None:
                self.notes.append(f"{name} at {n} rules: nft -f failed: {err}")
                continue
            if wls:
                self.point(n, name, wls)
            self.site.run(e, "nft", "delete", "table", "ip", "clvbench")

        # (b) iptables, mwan3 style, with and without the conntrack mark restore
        for name, rules, ct, wls in (("iptables", last, False, all_wl), ("iptables/random", rand, False, pps),
                                     ("iptables+ct", last, True, all_wl)):
            ms, err = self.timed(["iptables-restore"], input=iptables_script(rules, ct))
            if name == "iptables":
                self.record_apply(n, "iptables-restore", ms, err)
            if ms is None:
                self.notes.append(f"{name} at {n} rules: iptables-restore failed: {err}")
                continue
            if wls:
                self.point(n, name, wls)
            self.iptables_clear()
        self.peer_routing(False)

        # (d), (e) clovis: route mode, then redirect mode, on one clovisd
        c = Clovisd(self.site, lan=("lan0",))
        try:
            t0 = time.monotonic()
            c.start(clovis_mapping(last, "route"))
            self.record_apply(n, "clovisd start", (time.monotonic() - t0) * 1000, None)
            self.point(n, "clovis-route", all_wl)
            for name, mapping, wls in (("clovis-route/random", clovis_mapping(rand, "route"), pps),
                                       ("clovis-redirect", clovis_mapping(last, "redirect"), all_wl),
                                       ("clovis-redirect/random", clovis_mapping(rand, "redirect"), pps)):
                path = os.path.join(c.tmp, "apply.yaml")
                with open(path, "w") as f:
                    f.write(mapping)
                t0 = time.monotonic()
                cp = c.ctl("apply", "-f", path, timeout=600)  # as people run it
                ms = (time.monotonic() - t0) * 1000
                if name == "clovis-route/random":  # N rules replaced by N others, same links
                    self.record_apply(n, "clovisctl apply", ms if cp.returncode == 0 else None,
                                      cp.stderr.strip()[-300:])
                if cp.returncode != 0:
                    self.notes.append(f"{name} at {n} rules: clovisctl apply failed: {cp.stderr[-300:]}")
                    continue
                if wls:
                    self.point(n, name, wls)
        finally:
            c.close()

    def iptables_clear(self):
        e = self.site.ns_edge
        if self.iptables_nft:  # also unhooks the table, so later peers do not pay for it
            self.site.run(e, "nft", "delete", "table", "ip", "mangle", check=False)
        else:
            self.site.run(e, "iptables", "-t", "mangle", "-F", check=False)
            self.site.run(e, "iptables", "-t", "mangle", "-X", check=False)


def build_tool(tmp, name):
    out = os.path.join(tmp, name)
    subprocess.run(["cc", "-O2", "-Wall", "-o", out, os.path.join(HERE, name + ".c")], check=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10 rules, 1 run per point, short runs (< 60 s)")
    ap.add_argument("--sizes", default="10,1000,10000,100000")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--duration", type=float, default=1.0, help="seconds per run")
    ap.add_argument("--ports", type=int, default=16, help="UDP source ports (flows) of the sender")
    ap.add_argument("--no-iperf", action="store_true", help="use the harness's tcp_transfer")
    ap.add_argument("--workloads", default=",".join(WORKLOADS),
                    help=f"comma-separated subset of {','.join(WORKLOADS)}")
    ap.add_argument("--edge-cpu", type=int, default=(os.cpu_count() or 1) - 1,
                    help="the CPU that udp_pps_edge pins its generator (and so the edge's path) to")
    ap.add_argument("--perf", metavar="DIR",
                    help="udp_pps_edge: also perf stat + perf record -g one more run of every variant "
                         "(DIR/<rules>-<variant>.data; per-symbol ns/packet in the JSON)")
    ap.add_argument("--edge-variants", default=",".join(EDGE_VARIANTS),
                    help="udp_pps_edge: comma-separated subset of " + ",".join(EDGE_VARIANTS + EDGE_EXTRA_VARIANTS)
                         + " (the default: all but " + ",".join(EDGE_EXTRA_VARIANTS) + ")")
    ap.add_argument("--edge-compare", metavar="NAME=CLOVISD", action="append", default=[],
                    help="udp_pps_edge: also measure this clovisd build as clovis-MODE@NAME (repeatable)")
    ap.add_argument("--edge-batch", type=int, default=8,
                    help="udp_pps_edge: packets per netif_receive_skb_list (8: a NIC's gro_normal_batch)")
    ap.add_argument("--out", required=True, help="JSON results file")
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.runs, args.duration = "10", 1, 0.3
    args.workloads = [w for w in args.workloads.split(",") if w]
    args.edge_variants = [v for v in args.edge_variants.split(",") if v]
    unknown = set(args.edge_variants) - set(EDGE_VARIANTS + EDGE_EXTRA_VARIANTS)
    if unknown:
        ap.error(f"unknown edge variants: {', '.join(sorted(unknown))}")
    try:
        args.edge_compare = dict(c.split("=", 1) for c in args.edge_compare)
    except ValueError:
        ap.error("--edge-compare takes NAME=PATH")
    bad = set(args.workloads) - set(WORKLOADS)
    if bad:
        ap.error(f"unknown workloads: {', '.join(sorted(bad))}")
    if os.geteuid() != 0:
        # 77: ctest's SKIP_RETURN_CODE; CI (CLOVIS_REQUIRE_PRIVILEGED=1) makes a skip a failure
        print("skipped: bench/peers/run.py needs root (network namespaces)", file=sys.stderr)
        return 1 if os.environ.get("CLOVIS_REQUIRE_PRIVILEGED") == "1" else 77
    for b in (CLOVISD, CLOVISCTL):
        if not os.access(b, os.X_OK):
            print(f"{b} missing: ninja -C build clovisd clovisctl", file=sys.stderr)
            return 2
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = random.Random(SEED)
    started, load0 = time.time(), os.getloadavg()
    tmp = tempfile.mkdtemp(prefix="clovis-peers-")
    try:
        tool = build_tool(tmp, "udpblast")
        gen = build_tool(tmp, "xdpgen")
        with contextlib.ExitStack() as stack:
            site = stack.enter_context(EdgeSite(wans=2))
            b = Bench(site, args, tool)
            if "udp_pps_edge" in args.workloads:
                b.edge = EdgeBench(b, stack.enter_context(EdgeSite(wans=2)), stack.enter_context(EdgeSite(wans=2)),
                                   gen, args.edge_cpu, args.edge_batch, args.edge_variants, args.edge_compare)
            log(f"site {site.prefix} up; load average {os.getloadavg()}; "
                f"iptables backend {'nf_tables' if b.iptables_nft else 'legacy'}; iperf3 {bool(b.iperf)}")
            for n in sizes:
                b.size(n, rng)
            doc = {"command": " ".join(sys.argv), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                   "seconds": round(time.time() - started, 1), "loadavg_start": load0,
                   "loadavg_end": os.getloadavg(),
                   "nproc": os.cpu_count(), "kernel": os.uname().release,
                   "iptables_backend": "nf_tables" if b.iptables_nft else "legacy",
                   "args": vars(args), "units": {"udp_pps": "packets/s forwarded (edge wan tx)",
                                                 "udp_pps_edge": "packets forwarded per CPU-second of the "
                                                                 "pinned CPU (isolated edge)",
                                                 "tcp_mbps": "Mbit/s (iperf3 receiver)",
                                                 "conn_per_s": "TCP connections/s"},
                   "results": b.results, "apply_ms": b.apply, "notes": b.notes}
        with open(args.out, "w") as f:
            json.dump(doc, f, indent=1)
        log(f"done in {doc['seconds']} s; results in {args.out}; notes: {len(b.notes)}")
        for note in b.notes:
            log(f"  note: {note}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
