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

SERVER = "203.0.113.10"
UDP_PORT, CONN_PORT, IPERF_PORT = 9000, 9001, 5201
MARKS = {0: 0x100, 1: 0x200}   # per-link mark of the iptables/nft peers (mwan3 style, mask 0xff00)
TABLES = {0: 100, 1: 101}
TARGET_WAN = 1                 # the measured flow's rule sends it out wan1; the default is wan0
SEED = 0x636c7673
EDGE_VARIANTS = ("rx-floor", "plain", "plain+rules", "nft-map", "clovis-route", "clovis-redirect")
WORKLOADS = ("udp_pps", "tcp_mbps", "conn_per_s", "udp_pps_edge")


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


def peer_routing(site, on):
    """The policy routing of the iptables/nft peers: one fwmark rule and table per link."""
    e = site.ns_edge
    for w in (0, 1):
        verb = "add" if on else "del"
        site.run(e, "ip", "rule", verb, "fwmark", f"{MARKS[w]:#x}/0xff00", "table", TABLES[w], "pref", 100 + w,
                 check=on)
        if on:
            site.run(e, "ip", "route", "replace", "default", "via", f"100.64.{w}.1", "dev", f"wan{w}",
                     "table", TABLES[w])
        else:
            site.run(e, "ip", "route", "flush", "table", TABLES[w], check=False)


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
                cp = c.ctl("apply", "-f", path, "-o", "json", timeout=600)
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

# ----- the isolated edge (udp_pps_edge) --------------------------------------------------
class OtherClovisd(Clovisd):
    """The same harness around another clovisd binary (--edge-compare)."""

    def __init__(self, site, binary):
        super().__init__(site, lan=("lan0",))
        self.binary = binary

    def base_args(self):
        return [self.binary] + super().base_args()[1:]


class EdgeBench:
    """Measures the edge alone. xdpgen runs BPF_PROG_RUN in live-frame mode in the
    edge namespace: each frame (64-byte UDP payload, one of --ports source ports, to
    SERVER) is injected as if it had arrived on the edge's lan0 (skb built,
    netif_receive_skb_list in lists of --edge-batch, as a NIC driver hands packets
    up through GRO's normal list; then TC ingress, IP), so the sender costs ~30 ns a
    frame instead of a socket syscall and a veth hop. `xdpgen sink` on each WAN
    router's edge0 drops every IPv4 packet at TCX ingress (ARP passes), so the
    routers' forwarding and the cloud are out of the measurement.

    The generator is pinned to one CPU; the edge's receive and forward path, the
    WAN veth transmit and the sink's backlog softirq all run in its context (or in
    that CPU's ksoftirqd, which is counted too). The figure is CPU time per
    forwarded packet and its inverse, packets per CPU-second: what one core
    forwards when it is ours. On this shared machine the wall-clock rate depends on
    how much of the core other processes take, so it is recorded beside it, not
    used for ratios.

    Variants, one measurement each per round, interleaved:
    - rx-floor: the generator plus the edge's receive path, dropped at lan0's TC
      ingress (the sink program there, nothing else attached): what every variant
      pays before forwarding starts.
    - plain: kernel forwarding in a site (`pristine`) whose edge namespace never
      had a policy-routing rule. Once a namespace has had one, the kernel keeps
      walking the rule list (fib_has_custom_rules is never reset) and stops
      reusing a list neighbour's route (ip_route_use_hint).
    - plain+rules: the same forwarding in the other site (`site`) with the peers'
      two fwmark rules in place (unmarked packets fall through them to the main
      table).
    - nft-map, clovis-route, clovis-redirect: as in the other workloads, in `site`.
    Both sites are this workload's own: the other workloads' site stays as it was."""

    def __init__(self, bench, site, pristine, gen, cpu, batch, variants=EDGE_VARIANTS, clovisd=None):
        """clovisd: {name: path} of other clovisd builds, measured as variants
        "clovis-MODE@name" (a before/after of the data path in one run)."""
        self.b, self.site, self.pristine = bench, site, pristine
        self.gen, self.cpu, self.batch = gen, cpu, batch
        self.clovisd = dict(clovisd or {})
        for st in (site, pristine):
            self.pin_neighbours(st)
        self.variants = tuple(variants) + tuple(f"clovis-{m}@{name}" for name in self.clovisd
                                                for m in ("route", "redirect")
                                                if f"clovis-{m}" in variants)
        self.sinks = []
        out = subprocess.run(["pgrep", "-x", f"ksoftirqd/{cpu}"], capture_output=True, text=True).stdout.split()
        self.ksoftirqd = int(out[0]) if out else None

    @staticmethod
    def pin_neighbours(site):
        """The WAN gateways' neighbour entries made permanent. Nothing ever answers
        the edge here (the sinks drop all IPv4), so a learnt entry turns STALE
        every ~30 s and, until a probe confirms it, every packet takes the slow
        neigh_resolve_output (~7 ns more, in whichever variant is running then)."""
        for w in (0, 1):
            mac = site.link_info(site.ns_wan[w], site.ROUTER_EDGE_IF)["address"]
            site.run(site.ns_edge, "ip", "neigh", "replace", site.wan_gateway(w), "lladdr", mac, "nud", "permanent",
                     "dev", site.wan_ifname(w))

    def _ksoftirqd_ns(self):
        if self.ksoftirqd is None:
            return 0
        with open(f"/proc/{self.ksoftirqd}/schedstat") as f:
            return int(f.read().split()[0])

    def sink_on(self, site, ns, ifname):
        p = site.popen(ns, [self.gen, "sink", ifname], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
        line = p.stdout.readline()
        if "ready" not in line:
            raise RuntimeError(f"xdpgen sink on {ns}/{ifname} did not start: {line}{p.stderr.read()}")
        self.sinks.append((site, p))

    def sinks_off(self):
        for site, p in self.sinks:
            site.stop(p)
        self.sinks = []

    def sink_counts(self):
        out = []
        for _, p in self.sinks:
            p.stdin.write("count\n")
            p.stdin.flush()
            out.append(json.loads(p.stdout.readline())["dropped"])
        return out

    @staticmethod
    def wan_tx(site):
        return [site.counters(site.ns_edge, f"wan{w}")["tx_packets"] for w in (0, 1)]

    def gen_run(self, site, dur, wrap=()):
        argv = list(wrap) + ["taskset", "-c", self.cpu, self.gen, "gen", "lan0", site.client_v4, SERVER, UDP_PORT,
                             self.b.args.ports, dur, self.batch]
        cp = site.run(site.ns_edge, argv, timeout=dur + 60)
        g = json.loads(cp.stdout.strip().splitlines()[-1])
        g["stderr"] = cp.stderr
        return g

    def measure(self, site, dur, floor=False):
        self.gen_run(site, 0.05)  # neighbours resolved, flows pinned, caches warm
        before, sb, kb = self.wan_tx(site), self.sink_counts(), self._ksoftirqd_ns()
        g = self.gen_run(site, dur)
        after, sa, ka = self.wan_tx(site), self.sink_counts(), self._ksoftirqd_ns()
        delta = [a - b for a, b in zip(after, before)]
        sunk = sum(a - b for a, b in zip(sa, sb))
        cpu_s = g["cpu_seconds"] + (ka - kb) / 1e9
        # forwarded: what left the edge by a WAN (rx-floor: what the lan0 sink dropped)
        fwd = sunk if floor else sum(delta)
        if fwd < 0.99 * g["frames"] or (not floor and sunk < 0.99 * fwd):
            raise RuntimeError(f"only {fwd} of {g['frames']} frames " + ("dropped at lan0" if floor else
                               f"left the edge (wan tx {delta}), {sunk} reached the WAN routers"))
        r = {"rate": fwd / cpu_s, "ns_per_pkt": cpu_s / fwd * 1e9, "wall_pps": fwd / g["seconds"],
             "frames": g["frames"], "forwarded": fwd, "cpu_seconds": round(cpu_s, 6),
             "ksoftirqd_seconds": round((ka - kb) / 1e9, 6), "cpu": g["cpu"], "load1": os.getloadavg()[0]}
        if not floor:
            r["wan"] = delta.index(max(delta))
            r["sunk"] = sunk
        return r

    def profile(self, site, dur, floor, path):
        """perf stat (cycles, instructions per forwarded packet) and perf record -g
        (to `path`) of one more run each; the symbols' shares of the generator's
        samples, in ns per packet."""
        self.gen_run(site, 0.05)
        events = "cycles,instructions,cycles:k,instructions:k"
        before, sb = self.wan_tx(site), self.sink_counts()
        g = self.gen_run(site, dur, ["perf", "stat", "-x,", "-e", events, "--"])
        after, sa = self.wan_tx(site), self.sink_counts()
        fwd = sum(a - b for a, b in zip(sa, sb)) if floor else sum(a - b for a, b in zip(after, before))
        out = {"ns_per_pkt": g["cpu_seconds"] / max(fwd, 1) * 1e9, "per_pkt": {}}
        for line in g["stderr"].splitlines():
            f = line.split(",")
            if len(f) > 2 and f[2] in events.split(",") and f[0].replace(".", "").isdigit():
                out["per_pkt"][f[2]] = float(f[0]) / max(fwd, 1)
        self.gen_run(site, dur, ["perf", "record", "-q", "-g", "-F", "10000", "-C", self.cpu, "-o", path, "--"])
        rep = subprocess.run(["perf", "report", "-i", path, "--comm", "xdpgen", "--no-children", "--sort", "sym",
                              "--percentage", "relative", "--stdio", "-g", "none", "--percent-limit", "0.3"],
                             capture_output=True, text=True).stdout
        syms = []
        for line in rep.splitlines():
            f = line.split()
            if len(f) >= 3 and f[0].endswith("%") and f[1] == "[k]":
                name = f[2]
                if name.startswith("bpf_prog_"):  # bpf_prog_<tag>_<name>: the tag changes per load
                    name = "bpf_prog_" + name.split("_", 3)[-1]
                syms.append([name, round(float(f[0][:-1]) / 100 * out["ns_per_pkt"], 1)])
        out["symbols_ns"] = syms
        out["perf_data"] = path
        return out

    def run_variant(self, variant, rules, dur, profile_to=None):
        """Sets one variant up, measures it once (or profiles it into the
        directory profile_to), takes it down again."""
        site = self.pristine if variant in ("rx-floor", "plain") else self.site
        e = site.ns_edge
        if variant == "rx-floor":
            self.sink_on(site, e, "lan0")
        else:
            for w in (0, 1):
                self.sink_on(site, site.ns_wan[w], site.ROUTER_EDGE_IF)
        floor = variant == "rx-floor"

        def go():
            if profile_to:
                return self.profile(site, dur, floor, os.path.join(profile_to, f"{len(rules)}-{variant}.data"))
            return self.measure(site, dur, floor)

        try:
            if variant in ("rx-floor", "plain"):
                return go()
            if variant in ("plain+rules", "nft-map"):
                peer_routing(site, True)
                try:
                    if variant == "plain+rules":
                        return go()
                    site.run(e, "nft", "-f", "-", input=nft_script(rules), timeout=600)
                    try:
                        return go()
                    finally:
                        site.run(e, "nft", "delete", "table", "ip", "clvbench")
                finally:
                    peer_routing(site, False)
            mode, _, build = variant.split("-", 1)[1].partition("@")
            c = OtherClovisd(site, self.clovisd[build]) if build else Clovisd(site, lan=("lan0",))
            try:
                c.start(clovis_mapping(rules, mode))
                return go()
            finally:
                c.close()
        finally:
            self.sinks_off()

    def phase(self, n, rules, runs, dur):
        """runs rounds; each round measures every variant once, in the order
        A B C ..., then ... C B A in the next round, so slow drift of the machine's
        load weighs on every variant alike."""
        log(f"  udp_pps_edge: {runs} interleaved rounds of {', '.join(self.variants)}; CPU {self.cpu}, "
            f"lists of {self.batch}; load average {os.getloadavg()}")
        got = {v: [] for v in self.variants}
        for k in range(runs):
            for v in self.variants if k % 2 == 0 else tuple(reversed(self.variants)):
                if got[v] is None:
                    continue
                try:
                    got[v].append(self.run_variant(v, rules, dur))
                except Exception as e:  # noted; the variant leaves the phase
                    self.b.notes.append(f"{v} at {n} rules, udp_pps_edge: {e}")
                    log(f"  {v:22s} udp_pps_edge FAILED: {str(e)[:200]}")
                    got[v] = None
        for v in sorted(got, key=lambda x: x != "plain"):  # plain first: ratios
            if got[v]:
                self.b.record(n, v, "udp_pps_edge", got[v])
        self.summarize(n)
        if self.b.args.perf:
            os.makedirs(self.b.args.perf, exist_ok=True)
            for v in self.variants:
                pt = self.b.results.get(str(n), {}).get(v, {}).get("udp_pps_edge")
                if not pt:
                    continue
                try:
                    pt["perf"] = self.run_variant(v, rules, dur, profile_to=self.b.args.perf)
                except Exception as e:  # a profile is extra: note it, go on
                    self.b.notes.append(f"{v} at {n} rules, udp_pps_edge profile: {e}")
                    continue
                top = ", ".join(f"{s} {ns}" for s, ns in pt["perf"]["symbols_ns"][:4])
                per = pt["perf"]["per_pkt"]
                log(f"  {v:22s} perf: {per.get('cycles', 0):.0f} cycles, {per.get('instructions', 0):.0f} "
                    f"instructions per packet; top ns/pkt: {top}")

    def summarize(self, n):
        pts = {v: self.b.results.get(str(n), {}).get(v, {}).get("udp_pps_edge") for v in self.variants}
        floor, plain = pts.get("rx-floor"), pts.get("plain")
        for v, pt in pts.items():
            if not pt:
                continue
            ns = [d["ns_per_pkt"] for d in pt["detail"]]
            pt["ns_per_pkt"] = {"min": min(ns), "median": statistics.median(ns), "max": max(ns)}
            if floor and v != "rx-floor":
                pt["ns_over_floor"] = pt["ns_per_pkt"]["median"] - statistics.median(
                    d["ns_per_pkt"] for d in floor["detail"])
            wall = [d["wall_pps"] for d in pt["detail"]]
            log(f"  {v:22s} udp_pps_edge {pt['ns_per_pkt']['median']:6.1f} ns/pkt "
                f"[{pt['ns_per_pkt']['min']:.1f}-{pt['ns_per_pkt']['max']:.1f}]"
                + (f" ratio {pt['ratio']['median']:.3f}x" if "ratio" in pt else "")
                + (f", {pt['ns_over_floor']:.1f} ns over the floor" if "ns_over_floor" in pt else "")
                + f"; wall {statistics.median(wall) / 1e3:.0f}k pps"
                + (f" via wan{sorted({d['wan'] for d in pt['detail']})}" if "wan" in pt["detail"][0] else ""))
        if not plain:
            return
        for v, pt in pts.items():
            if not pt or v in ("plain", "rx-floor"):
                continue
            # Same-round pairs: each round measured every variant within seconds.
            paired = sorted(a / b for a, b in zip(pt["runs"], plain["runs"]))
            pt["paired_ratio"] = {"min": paired[0], "median": statistics.median(paired), "max": paired[-1]}
            if "ns_over_floor" in pt and "ns_over_floor" in plain:
                pt["forwarding_cost_ratio"] = pt["ns_over_floor"] / plain["ns_over_floor"]
            log(f"  {v:22s} udp_pps_edge paired ratio to plain (same round) {pt['paired_ratio']['median']:.3f}x "
                f"[{paired[0]:.3f}-{paired[-1]:.3f}]"
                + (f", forwarding cost {pt['forwarding_cost_ratio']:.2f}x plain's"
                   if "forwarding_cost_ratio" in pt else ""))


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
                    help="udp_pps_edge: comma-separated subset of " + ",".join(EDGE_VARIANTS))
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
    if set(args.edge_variants) - set(EDGE_VARIANTS):
        ap.error(f"unknown edge variants: {', '.join(sorted(set(args.edge_variants) - set(EDGE_VARIANTS)))}")
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
