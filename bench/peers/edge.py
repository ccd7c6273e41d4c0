"""The isolated-edge workload of the peer benchmarks (udp_pps_edge; see run.py and the
"Isolated edge" subsection of docs/BENCHMARKS.md): xdpgen injects packets at the
edge's LAN interface and sinks them at the WAN routers, one pinned CPU does all the
work, and the figure is CPU time per forwarded packet."""
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "tests", "integration"))
from clovis_site import Clovisd  # noqa: E402
from rulesets import SERVER, UDP_PORT, clovis_mapping, log, nft_script, peer_routing  # noqa: E402

EDGE_VARIANTS = ("rx-floor", "plain", "plain+rules", "nft-map", "clovis-route", "clovis-redirect")
# Measured only when named in --edge-variants: clovis-snat is redirect mode with clovis's own
# source NAT (`snat: masquerade`), the NAT rewrite path.
EDGE_EXTRA_VARIANTS = ("clovis-snat",)


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
                                                for m in ("route", "redirect", "snat")
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
