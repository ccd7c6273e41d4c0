#!/usr/bin/env python3
"""clovisd CPU with 4 links, 2 ICMP probes each every 200 ms, on a namespace edge site (root).
Usage: python3 bench/health/probe_cpu.py"""
import os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "integration"))
from edgesite import EdgeSite
from clovis_site import Clovisd
links = []
for i in range(4):
    links.append(f"""  - name: l{i}
    interface: wan{i}
    gateway: 100.64.{i}.1
    mode: redirect
    health:
      probes: [{{icmp: 100.64.{i}.1}}, {{icmp: 203.0.113.10}}]
      interval: 200ms
      timeout: 150ms""")
mapping = "version: 1\nlinks:\n" + "\n".join(links) + "\ndefault: {link: l0}\n"
def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])
with EdgeSite(wans=4) as site, Clovisd(site) as agent:
    agent.start(mapping)
    time.sleep(2)
    pid = agent.proc.pid
    hz = os.sysconf("SC_CLK_TCK")
    c0, t0 = cpu(pid), time.monotonic()
    time.sleep(30)
    c1, t1 = cpu(pid), time.monotonic()
    pct = (c1 - c0) / hz / (t1 - t0) * 100
    links = agent.ctl_json("links")["links"]
    print(f"clovisd CPU with 4 links x 2 probes every 200 ms: {pct:.2f}% of one core over {t1-t0:.0f} s")
    print("states:", [(l["name"], l["state"], round(l.get("latency_ms", 0), 3)) for l in links])
    print("load average:", os.getloadavg())
