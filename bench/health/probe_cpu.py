#!/usr/bin/env python3
"""clovisd's CPU for health probing and SLA evaluation, on a namespace edge site (root).

Every link probes its gateway and the server (ICMP) every --interval; with
--classes K the mapping also has K SLA classes and K policies over all links
(half of them `strategy: best-quality`), so every probe round also evaluates
K policies over N links (core::sla_policies) and, when an order changes,
writes the kernel's policies again. One series of the load is measured with
the machine's own load beside it: the number is clovisd's CPU time (user +
system, /proc/PID/stat) over wall time, which is what a busy machine does not
inflate much.

Usage:
  python3 bench/health/probe_cpu.py                          # #5's shape: 4 links, 200 ms
  python3 bench/health/probe_cpu.py --links 16 --classes 8   # #17's shape
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "integration"))
from edgesite import EdgeSite  # noqa: E402
from clovis_site import Clovisd  # noqa: E402


def mapping(n_links: int, n_classes: int, interval_ms: int) -> str:
    out = ["version: 1"]
    if n_classes:
        out.append("sla:")
        for k in range(n_classes):
            # Namespace links measure tens of µs, so every link meets these
            # (limits are whole milliseconds); the best-quality policies
            # still reorder their members as the measurements jitter, which
            # is the costly path: the kernel's policies are written again.
            out.append(f"  c{k}: {{latency: {10 + 10 * k}ms, jitter: {5 + k}ms, loss: {1 + k % 3}%}}")
    out.append("links:")
    for i in range(n_links):
        out.append(f"""  - name: l{i}
    interface: wan{i}
    gateway: 100.64.{i}.1
    mode: redirect
    health:
      probes: [{{icmp: 100.64.{i}.1}}, {{icmp: 203.0.113.10}}]
      interval: {interval_ms}ms
      timeout: {max(interval_ms * 3 // 4, 50)}ms""")
    members = ", ".join(f"l{i}" for i in range(n_links))
    if n_classes:
        out.append("policies:")
        for k in range(n_classes):
            extra = "\n    strategy: best-quality" if k % 2 else ""
            out.append(f"  - name: p{k}\n    members: [{members}]\n    sla: c{k}{extra}")
        out.append("rules:")
        for k in range(n_classes):
            out.append(f"  - name: r{k}\n    priority: {10 + k}\n    match: {{proto: udp, dport: {5000 + k}}}\n    policy: p{k}")
        out.append("default: {policy: p0}")
    else:
        out.append("default: {link: l0}")
    return "\n".join(out) + "\n"


def cpu_ticks(pid: int) -> int:
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--links", type=int, default=4)
    ap.add_argument("--classes", type=int, default=0)
    ap.add_argument("--interval", type=int, default=200, help="probe interval, ms")
    ap.add_argument("--seconds", type=float, default=30)
    args = ap.parse_args()
    text = mapping(args.links, args.classes, args.interval)
    with EdgeSite(wans=args.links) as site, Clovisd(site) as agent:
        agent.start(text)
        time.sleep(3)  # first probe rounds, first SLA decisions
        pid = agent.proc.pid
        hz = os.sysconf("SC_CLK_TCK")
        load0 = os.getloadavg()[0]
        c0, t0 = cpu_ticks(pid), time.monotonic()
        time.sleep(args.seconds)
        c1, t1 = cpu_ticks(pid), time.monotonic()
        pct = (c1 - c0) / hz / (t1 - t0) * 100
        links = agent.ctl_json("links")["links"]
        up = sum(1 for link in links if link["state"] == "up")
        probes = args.links * 2 * 1000 / args.interval
        print(f"clovisd CPU with {args.links} links x 2 ICMP probes every {args.interval} ms "
              f"({probes:.0f} probes/s), {args.classes} SLA classes over {args.classes} policies: "
              f"{pct:.2f}% of one core over {t1 - t0:.0f} s")
        print(f"links up: {up}/{len(links)}; load average {load0:.1f} -> {os.getloadavg()[0]:.1f}")
        log = open(agent.log).read()
        print(f"policy reorders logged (SLA rewrites of the kernel's policies): {log.count('members reordered')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
