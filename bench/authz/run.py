#!/usr/bin/env python3
"""Envoy Check latency: the real clovisd on a throwaway edge site
(tests/integration/edgesite.py) answers ext_authz v3 Check over its Unix
socket under open-loop load from check_load (bench/authz/check_load.cpp:
N streams, a fixed schedule, latency counted from when each request was due).
The peers, measured in the same run and interleaved with clovisd, are bare
gRPC Check servers in the same binary (check_load --serve-noop): what gRPC
over a Unix socket costs by itself on this machine, served as clovisd serves
it (the async API, --authz-threads threads answering inline: "noop"), the
same with an answer of the size and shape of clovisd's ("noop-answer": two
headers, a header to remove, six fields of metadata), and gRPC's sync server,
which clovisd used before ("noop-sync"). Needs root.

    sudo python3 bench/authz/run.py [--rate 5000] [--streams 8] [--seconds 10]
         [--reps 3] [--rules 1000] [--authz-threads 1] [--json FILE]

Prints progress to stderr and a markdown table; --json writes every run.
See docs/BENCHMARKS.md, "Envoy Check latency".
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
BUILD = os.environ.get("CLOVIS_BUILD_DIR", os.path.join(REPO, "build"))
from clovis_site import Clovisd  # noqa: E402
from edgesite import EdgeSite  # noqa: E402

LOAD = os.path.join(BUILD, "bench", "clovis-check-load")
HZ = os.sysconf("SC_CLK_TCK")


def mapping(n_rules):
    """The L7 rule the load's `end-user: minions` requests hit, behind
    n_rules L3/L4 rules that they do not (so the L3/L4 walk is realistic)."""
    out = ["version: 1", "links:",
           "  - {name: mpls, interface: wan0, gateway: 100.64.0.1, mode: route}",
           "  - {name: broadband, interface: wan1, gateway: 100.64.1.1, mode: route}",
           "rules:",
           "  - name: minions-video",
           "    priority: 10",
           "    match: {dst: 203.0.113.0/24, dport: 8000, proto: tcp, headers: {end-user: minions}}",
           "    link: broadband"]
    for i in range(n_rules):
        out.append(f"  - {{name: r{i}, priority: {100 + i}, match: {{dst: 198.18.{i // 250}.{i % 250 + 1}/32, "
                   f"proto: tcp, dport: 443}}, link: {'mpls' if i % 2 else 'broadband'}}}")
    out.append("default: {link: mpls}")
    return "\n".join(out) + "\n"


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def run_load(socket, pid, a):
    t0, c0 = time.monotonic(), cpu_ticks(pid)
    p = subprocess.run([LOAD, "--socket", socket, "--rate", str(a.rate), "--streams", str(a.streams),
                        "--seconds", str(a.seconds), "--warmup", str(a.warmup), "--flows", str(a.flows)],
                       capture_output=True, text=True, timeout=a.seconds + a.warmup + 60)
    wall, cpu = time.monotonic() - t0, (cpu_ticks(pid) - c0) / HZ
    if p.returncode not in (0, 1) or not p.stdout.strip():
        raise RuntimeError(f"check_load failed ({p.returncode}): {p.stderr.strip()}")
    r = json.loads(p.stdout)
    r["server_cpu_s"] = cpu
    r["server_cpu_pct"] = 100 * cpu / wall
    # Server CPU per 1,000 checks/s, as % of one core: the whole run's CPU
    # (warm-up included) over the whole run's requests.
    total_req = a.rate * (a.seconds + a.warmup)
    r["cpu_pct_per_1k_rps"] = 100 * cpu / wall / (total_req / wall / 1000)
    r["loadavg"] = loadavg()
    return r


def summary(runs, key, what="latency_us"):
    vals = [r[what][key] for r in runs]
    return min(vals), statistics.median(vals), max(vals)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=5000)
    ap.add_argument("--streams", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--flows", type=int, default=1000)
    ap.add_argument("--authz-threads", type=int, default=1, help="clovisd's and the async peer's threads")
    ap.add_argument("--json", help="write every run here")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run.py: needs root (it builds network namespaces and loads the TC program)")
    if not os.path.exists(LOAD):
        sys.exit(f"run.py: {LOAD} is missing: cmake --build build --target clovis-check-load")
    res = {"loadavg_start": loadavg(), "nproc": os.cpu_count(), "args": vars(a), "clovisd": [], "noop": [],
           "noop-answer": [], "noop-sync": []}
    tmp = tempfile.mkdtemp(prefix="clovis-bench-authz-")
    peers = {}
    try:
        with EdgeSite(wans=2) as site, Clovisd(site) as agent:
            print(f"== site {site.prefix}: clovisd with {a.rules} L3/L4 rules + 1 L7 rule", file=sys.stderr)
            agent.start(mapping(a.rules), extra=["--authz-threads", str(a.authz_threads)])
            for name, how in (("noop", ["--async", str(a.authz_threads)]),
                              ("noop-answer", ["--async", str(a.authz_threads), "--clovis-answer"]),
                              ("noop-sync", [])):
                sock = os.path.join(tmp, f"{name}.sock")
                peers[name] = (sock, subprocess.Popen([LOAD, "--serve-noop", sock] + how, stderr=subprocess.DEVNULL))
                for _ in range(100):
                    if os.path.exists(sock):
                        break
                    time.sleep(0.05)
            servers = [(n, sock, p.pid) for n, (sock, p) in peers.items()]
            servers.append(("clovisd", agent.authz_socket, agent.proc.pid))
            for rep in range(a.reps):
                for name, sock, pid in servers:
                    print(f"== rep {rep + 1}/{a.reps}: {name}, {a.rate:g} req/s, {a.streams} streams, "
                          f"{a.seconds:g} s", file=sys.stderr)
                    r = run_load(sock, pid, a)
                    res[name].append(r)
                    lat = r["latency_us"]
                    print(f"   p50 {lat['p50']:.0f} us  p99 {lat['p99']:.0f} us  max {lat['max']:.0f} us  "
                          f"{r['achieved_rps']:.0f} req/s  server CPU {r['server_cpu_pct']:.1f}%  "
                          f"links {r['links']}  errors {r['errors']}", file=sys.stderr)
            flows = json.loads(agent.ctl("flows", "-o", "json", check=True).stdout)["flows"]
            res["proxy_flows_in_table"] = sum(1 for f in flows if "proxy" in f["flags"])
    finally:
        for _, p in peers.values():
            p.terminate()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    res["loadavg_end"] = loadavg()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)

    print(f"\nCheck over a Unix socket, {a.rate:g} req/s offered from {a.streams} streams, {a.seconds:g} s x "
          f"{a.reps} runs; load average {res['loadavg_start']:.2f} -> {res['loadavg_end']:.2f}; "
          f"{res.get('proxy_flows_in_table', 0)} proxy flows pinned\n")
    print("| server | latency | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | achieved req/s | server CPU % | "
          "CPU % per 1k req/s | errors |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, what in [(n, w) for n in ("clovisd", "noop", "noop-answer", "noop-sync") for w in ("latency_us", "service_us")]:
        runs = [r for r in res[name] if what in r]
        if not runs:
            continue
        cells = ["from due" if what == "latency_us" else "from sent"]
        for k in ("p50", "p90", "p99", "p99.9", "max"):
            lo, med, hi = summary(runs, k, what)
            cells.append(f"{med:.0f} [{lo:.0f}-{hi:.0f}]")
        rps = statistics.median(r["achieved_rps"] for r in runs)
        cpu = statistics.median(r["server_cpu_pct"] for r in runs)
        per1k = statistics.median(r["cpu_pct_per_1k_rps"] for r in runs)
        errs = sum(sum(r["errors"].values()) for r in runs)
        print(f"| {name} | " + " | ".join(cells) + f" | {rps:.0f} | {cpu:.1f} | {per1k:.2f} | {errs} |")
    for what, label in (("latency_us", "from due"), ("service_us", "from sent")):
        c50 = statistics.median(r[what]["p50"] for r in res["clovisd"])
        n50 = statistics.median(r[what]["p50"] for r in res["noop"])
        c99 = statistics.median(r[what]["p99"] for r in res["clovisd"])
        n99 = statistics.median(r[what]["p99"] for r in res["noop"])
        print(f"\n{label}: clovisd / bare gRPC served alike: p50 {c50 / n50:.2f}x, p99 {c99 / n99:.2f}x. "
              f"Targets: p50 <= 100 µs ({'met' if c50 <= 100 else 'missed'}: {c50:.0f}), "
              f"p99 <= 1000 µs ({'met' if c99 <= 1000 else 'missed'}: {c99:.0f}).")


if __name__ == "__main__":
    main()
