#!/usr/bin/env python3
"""Cost of the Prometheus exporter (issue #16): the real clovisd on a
throwaway edge site with 64 links and 10k rules, --metrics-listen on, the
flow table filled through its pinned map (bench/agent/fill_flows.cpp) to
100k and then 1M flows. Measures the wall time of GET /metrics from inside
the site's edge namespace (median and max of --scrapes), clovisd's CPU per
scrape, and its RSS with the exporter on (and, with --compare, the same
clovisd without it). Needs root and a built build/. See docs/BENCHMARKS.md,
"Metrics scrape".

    sudo python3 bench/metrics/scrape.py [--flows 100000] [--flows-big 1000000]
         [--rules 10000] [--scrapes 100] [--compare] > metrics.json
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "bench", "agent"))
import bench_agent as ba  # noqa: E402  (snapshots the binaries; its helpers)
from edgesite import EdgeSite  # noqa: E402

LINKS = 64
LISTEN = "127.0.0.1:9464"

# Runs in the edge namespace: N timed GETs, their wall times (s) and sizes as JSON.
SCRAPER = r"""
import json, sys, time, urllib.request
url, n = sys.argv[1], int(sys.argv[2])
out = []
for _ in range(n):
    t = time.monotonic()
    body = urllib.request.urlopen(url, timeout=10).read()
    out.append([time.monotonic() - t, len(body)])
print(json.dumps(out))
"""


def mapping(n_rules):
    """bench_agent's 10k-rule mapping with 64 links: wan0..2 are the site's,
    the other 61 name interfaces this host lacks (down, with a host reason),
    which costs the exporter the same per link."""
    text = ba.mapping(n_rules, 1)
    head, rules = text.split("rules:\n", 1)
    links = ["version: 1", "links:"]
    for i in range(LINKS):
        ifname = f"wan{i}" if i < 3 else f"nx{i}"
        links.append(f"  - {{name: wan{i}, interface: {ifname}, gateway: 100.64.{i}.1, mode: route}}")
    return "\n".join(links) + "\nrules:\n" + rules


def scrape(site, n):
    p = site.run(site.ns_edge, ["python3", "-c", SCRAPER, f"http://{LISTEN}/metrics", str(n)], timeout=300)
    return json.loads(p.stdout)


def measure(site, pid, n):
    c0 = ba.cpu_ticks(pid)
    runs = scrape(site, n)
    cpu_s = (ba.cpu_ticks(pid) - c0) / ba.HZ
    times = [t for t, _ in runs]
    ordered = sorted(times)
    return {"median_ms": statistics.median(times) * 1000, "max_ms": max(times) * 1000,
            "p95_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000,
            "min_ms": min(times) * 1000, "bytes": runs[-1][1], "clovisd_cpu_ms_per_scrape": cpu_s * 1000 / n,
            "scrapes": n}


def one_agent(a, exe, text, exporter, res, say):
    with EdgeSite(wans=3) as site, ba.Agent(site) as agent:
        extra = ba.agent_extra() + (["--metrics-listen", LISTEN] if exporter else [])
        agent.start(text, extra=extra)
        pid = agent.proc.pid
        res["start_mem_kb"] = ba.mem_kb(pid)
        if exporter:
            res["scrape_0_flows"] = measure(site, pid, a.scrapes)
            say("0 flows", res["scrape_0_flows"])
        ba.fill(exe, agent, a.flows)
        time.sleep(11)  # an expiry sweep (every 10 s) has counted the tables
        if exporter:
            res["scrape_flows"] = measure(site, pid, a.scrapes)
            say(a.flows, "flows", res["scrape_flows"])
        res["mem_kb_flows"] = ba.mem_kb(pid)
        say("memory at", a.flows, "flows", res["mem_kb_flows"])
        if not exporter:
            return
        ba.fill(exe, agent, a.flows_big - a.flows, first=a.flows)
        time.sleep(11)
        res["flows_big_counted"] = ba.flow_count(agent)
        res["scrape_flows_big"] = measure(site, pid, a.scrapes)
        say(a.flows_big, "flows", res["scrape_flows_big"])
        res["mem_kb_flows_big"] = ba.mem_kb(pid)
        res["loadavg"] = ba.loadavg()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rules", type=int, default=10000)
    ap.add_argument("--flows", type=int, default=100000)
    ap.add_argument("--flows-big", type=int, default=1000000)
    ap.add_argument("--scrapes", type=int, default=100)
    ap.add_argument("--compare", action="store_true", help="also measure clovisd's RSS without the exporter")
    a = ap.parse_args()

    def say(*x):
        print(*x, file=sys.stderr, flush=True)

    tmp = tempfile.mkdtemp(prefix="clovis-bench-metrics-")
    exe = ba.build_fill(tmp)
    text = mapping(a.rules)
    res = {"links": LINKS, "rules": a.rules, "with_exporter": {}, "without_exporter": {}}
    one_agent(a, exe, text, True, res["with_exporter"], say)
    if a.compare:
        one_agent(a, exe, text, False, res["without_exporter"], say)
    json.dump(res, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
