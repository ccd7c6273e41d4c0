#!/usr/bin/env python3
"""Peer benchmarks (issue 6): clovis against plain kernel forwarding, mwan3-style
iptables marking and an nftables mark map, in one edge site (tests/integration/
edgesite.py) and one run. Root, Python 3 stdlib, cc, iproute2, iptables, nftables;
iperf3 optional. See the "Peers: forwarding and apply" section of docs/BENCHMARKS.md.

    sudo python3 bench/peers/run.py --out results.json           # full suite, minutes
    sudo python3 bench/peers/run.py --quick --out /tmp/q.json     # CI smoke, < 60 s

Every figure is a rate through the edge namespace (lan -> edge -> wan1 -> cloud);
ratios are to plain forwarding measured at the same size in the same run.
"""
import argparse
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

SERVER = "203.0.113.10"
UDP_PORT, CONN_PORT, IPERF_PORT = 9000, 9001, 5201
MARKS = {0: 0x100, 1: 0x200}   # per-link mark of the iptables/nft peers (mwan3 style, mask 0xff00)
TABLES = {0: 100, 1: 101}
TARGET_WAN = 1                 # the measured flow's rule sends it out wan1; the default is wan0
SEED = 0x636c7673


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ----- rule sets --------------------------------------------------------------------------
def filler_dst(i):
    """Distinct /32s outside every prefix of the site: rules that never match."""
    return f"10.{128 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}"


def rule_list(n, where, rng):
    """[(dst, wan)] of n rules; the measured flow's rule (dst SERVER -> wan1) is last
    (where='last') or at a random position (where='random')."""
    rules = [(filler_dst(i), i % 2) for i in range(n - 1)]
    pos = n - 1 if where == "last" else rng.randrange(n)
    rules.insert(pos, (SERVER, TARGET_WAN))
    return rules, pos


def clovis_mapping(rules, mode):
    out = ["version: 1", "links:"]
    for i in (0, 1):
        out += [f"  - name: l{i}", f"    interface: wan{i}", f"    gateway: 100.64.{i}.1", f"    mode: {mode}"]
    out.append("rules:")
    for k, (dst, wan) in enumerate(rules):
        out.append(f"  - {{name: r{k}, priority: {k + 1}, match: {{dst: {dst}/32}}, link: l{wan}}}")
    out += ["default:", "  link: l0", ""]
    return "\n".join(out)


def iptables_script(rules, conntrack):
    """One mangle MARK rule per mapping rule, as mwan3 generates them (each guarded by
    `-m mark --mark 0/MASK`, so MARK, which does not stop the walk, keeps the first
    match). conntrack=True is mwan3's default: restore the connection's mark first and
    walk the rules only for a packet without one (a flow's first packet)."""
    out = ["*mangle", ":clvrules - [0:0]"]
    if conntrack:
        out += ["-A PREROUTING -i lan0 -j CONNMARK --restore-mark --nfmask 0xff00 --ctmask 0xff00",
                "-A PREROUTING -i lan0 -m mark --mark 0x0/0xff00 -j clvrules",
                "-A PREROUTING -i lan0 -j CONNMARK --save-mark --nfmask 0xff00 --ctmask 0xff00"]
    else:
        out.append("-A PREROUTING -i lan0 -j clvrules")
    out += [f"-A clvrules -d {dst}/32 -m mark --mark 0x0/0xff00 -j MARK --set-xmark {MARKS[w]:#x}/0xff00"
            for dst, w in rules]
    out += ["COMMIT", ""]
    return "\n".join(out)


def nft_script(rules):
    elems = ",\n".join(f"    {dst} : {MARKS[w]:#x}" for dst, w in rules)
    return ("table ip clvbench {\n  map m {\n    type ipv4_addr : mark\n    elements = {\n" + elems +
            "\n    }\n  }\n  chain pre {\n    type filter hook prerouting priority mangle; policy accept;\n"
            "    iifname \"lan0\" meta mark set ip daddr map @m\n  }\n}\n")


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

    # policy routing of the iptables/nft peers
    def peer_routing(self, on):
        e = self.site.ns_edge
        for w in (0, 1):
            verb = "add" if on else "del"
            self.site.run(e, "ip", "rule", verb, "fwmark", f"{MARKS[w]:#x}/0xff00", "table", TABLES[w],
                          "pref", 100 + w, check=on)
            if on:
                self.site.run(e, "ip", "route", "replace", "default", "via", f"100.64.{w}.1", "dev", f"wan{w}",
                              "table", TABLES[w])
            else:
                self.site.run(e, "ip", "route", "flush", "table", TABLES[w], check=False)

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
            runs, extra = [], []
            try:
                for _ in range(self.args.runs):
                    r = self.WORKLOADS[wl](self, self.args.duration)
                    runs.append(r["rate"])
                    extra.append({k: v for k, v in r.items() if k != "rate"})
            except Exception as e:  # a peer that does not survive this size: note it, go on
                self.notes.append(f"{variant} at {n} rules, {wl}: {e}")
                log(f"  {variant:22s} {wl:10s} FAILED: {str(e)[:200]}")
                continue
            pt = {"runs": runs, "min": min(runs), "median": statistics.median(runs), "max": max(runs),
                  "detail": extra}
            base = self.results.get(str(n), {}).get("plain", {}).get(wl)
            if base and variant != "plain":
                pt["ratio"] = {k: pt[k] / base["median"] for k in ("min", "median", "max")}
            self.results.setdefault(str(n), {}).setdefault(variant, {})[wl] = pt
            wans = sorted({d.get("wan") for d in extra if d.get("wan") is not None})
            ratio = f" ratio {pt['ratio']['median']:.2f}x" if "ratio" in pt else ""
            log(f"  {variant:22s} {wl:10s} median {pt['median']:12.1f} [{pt['min']:.1f}-{pt['max']:.1f}]"
                f"{ratio} via wan{wans}")

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
        all_wl = list(self.WORKLOADS)
        pps = ["udp_pps"]
        log(f"== {n} rules ==")
        self.point(n, "plain", all_wl)
        last, _ = rule_list(n, "last", rng)
        rand, pos = rule_list(n, "random", rng)
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
                cp = c.ctl("apply", "-f", path, "-o", "json", timeout=600)
                ms = (time.monotonic() - t0) * 1000
                if name == "clovis-route/random":  # N rules replaced by N others, same links
                    self.record_apply(n, "clovisctl apply", ms if cp.returncode == 0 else None,
                                      cp.stderr.strip()[-300:])
                if cp.returncode != 0:
                    self.notes.append(f"{name} at {n} rules: clovisctl apply failed: {cp.stderr[-300:]}")
                    continue
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


def build_tool(tmp):
    out = os.path.join(tmp, "udpblast")
    subprocess.run(["cc", "-O2", "-Wall", "-o", out, os.path.join(HERE, "udpblast.c")], check=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10 rules, 1 run per point, short runs (< 60 s)")
    ap.add_argument("--sizes", default="10,1000,10000,100000")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--duration", type=float, default=1.0, help="seconds per run")
    ap.add_argument("--ports", type=int, default=16, help="UDP source ports (flows) of the sender")
    ap.add_argument("--no-iperf", action="store_true", help="use the harness's tcp_transfer")
    ap.add_argument("--out", required=True, help="JSON results file")
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.runs, args.duration = "10", 1, 0.3
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
    started = time.time()
    tmp = tempfile.mkdtemp(prefix="clovis-peers-")
    try:
        tool = build_tool(tmp)
        with EdgeSite(wans=2) as site:
            b = Bench(site, args, tool)
            log(f"site {site.prefix} up; load average {os.getloadavg()}; "
                f"iptables backend {'nf_tables' if b.iptables_nft else 'legacy'}; iperf3 {bool(b.iperf)}")
            for n in sizes:
                b.size(n, rng)
            doc = {"command": " ".join(sys.argv), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                   "seconds": round(time.time() - started, 1), "loadavg_end": os.getloadavg(),
                   "nproc": os.cpu_count(), "kernel": os.uname().release,
                   "iptables_backend": "nf_tables" if b.iptables_nft else "legacy",
                   "args": vars(args), "units": {"udp_pps": "packets/s forwarded (edge wan tx)",
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
