#!/usr/bin/env python3
"""Agent and CLI benchmark: the real clovisd on a throwaway edge site
(tests/integration/edgesite.py), 10k rules, a 1M-entry flow table filled
directly through the pinned map by fill_flows.cpp, measured from outside
with wall clock and /proc. Needs root. See docs/BENCHMARKS.md, "Agent and CLI".

    sudo python3 bench/agent/bench_agent.py [--flows-big 1000000] [--flows 100000]
         [--rules 10000] [--watch-seconds 20] [--reps 3] [--apply-reps 5] [--json]
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
# The build tree is shared and may be relinked mid-run: measure a snapshot of
# the two binaries, taken now (Clovisd reads CLOVIS_BUILD_DIR at import).
TMP = tempfile.mkdtemp(prefix="clovis-bench-agent-")
_SRC = os.environ.get("CLOVIS_BUILD_DIR", os.path.join(REPO, "build"))
for _sub, _bin in (("agentd", "clovisd"), ("cli", "clovisctl")):
    os.makedirs(os.path.join(TMP, "bin", _sub), exist_ok=True)
    shutil.copy2(os.path.join(_SRC, _sub, _bin), os.path.join(TMP, "bin", _sub, _bin))
os.environ["CLOVIS_BUILD_DIR"] = os.path.join(TMP, "bin")
from clovis_site import CLOVISCTL, CLOVISD, Clovisd  # noqa: E402
from edgesite import EdgeSite  # noqa: E402

HZ = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def mapping(n_rules, seed, wans=3):
    """n_rules rules: distinct /24 or /32 destinations, tcp or udp + one
    dport, each sent to one of the site's WAN links (bench/mapping_gen.cpp's
    'simple' mix, links named after the site's WANs)."""
    rng = random.Random(seed)
    ports = [80, 443, 53, 22, 25, 123, 389, 636, 993, 995, 1194, 1433, 3306, 3389, 5060, 5432, 8080, 8443]
    out = ["version: 1", "links:"]
    for i in range(wans):
        out.append(f"  - {{name: wan{i}, interface: wan{i}, gateway: 100.64.{i}.1, mode: route}}")
    out.append("rules:")
    seen = set()
    for i in range(n_rules):
        while True:
            plen = 24 if rng.random() < 0.5 else 32
            a = (rng.randint(1, 223) << 24) | rng.getrandbits(24)
            if plen == 24:
                a &= 0xffffff00
            if (a, plen) not in seen:
                seen.add((a, plen))
                break
        dst = f"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}/{plen}"
        proto = "udp" if rng.random() < 1 / 3 else "tcp"
        port = rng.choice(ports) if rng.random() < 0.75 else rng.randint(1024, 65535)
        out.append(f"  - {{name: r{i}, priority: {(i + 1) * 10}, match: {{dst: {dst}, proto: {proto}, "
                   f"dport: {port}}}, link: wan{rng.randrange(wans)}}}")
    out.append("default: {action: bypass}")
    return "\n".join(out) + "\n"


def agent_extra():
    """A 1M-entry flow table. (clovis_site gives each run its own sockets.)"""
    return ["--flow-table-size", "1048576"]


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)


def mem_kb(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[k] = int(v.split()[0])
    return out


def hwm_kb(pid):
    """VmHWM of a live process, None once it is gone (or a zombie)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def run_peak(argv):
    """Runs argv (stdout to /dev/null) and returns (wall s, rusage, peak RSS
    in KiB). The peak is polled from /proc: wait4's ru_maxrss of a child
    spawned from this process counts this process's own RSS too (the mm the
    child had before its exec), which after json.load of a 1M-flow listing
    is ~1.6 GB."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    peak = 0
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        h = hwm_kb(p.pid)
        if h:
            peak = max(peak, h)
        time.sleep(0.005)
    dt = time.monotonic() - t0
    if status != 0:
        raise RuntimeError(f"{argv} exited with status {status}")
    return dt, ru, peak


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def build_fill(tmp):
    exe = os.path.join(tmp, "fill_flows")
    subprocess.run(["c++", "-O2", "-std=c++20", os.path.join(HERE, "fill_flows.cpp"), "-lbpf",
                    "-I" + os.path.join(REPO, "bpf", "include"), "-o", exe], check=True)
    return exe


def fill(exe, agent, n, first=0):
    d = agent.dump_meta()
    link = d["link"]
    t = time.monotonic()
    subprocess.run([exe, agent.pin_dir, str(n), str(link["slot"]), str(link["epoch"]),
                    str(d["generation"]), str(first)], check=True, capture_output=True)
    return time.monotonic() - t


def timed(argv, stdout=subprocess.DEVNULL):
    t = time.monotonic()
    p = subprocess.run(argv, stdout=stdout, stderr=subprocess.PIPE, text=True)
    dt = time.monotonic() - t
    if p.returncode != 0:
        raise RuntimeError(f"{argv} exited {p.returncode}: {p.stderr}")
    return dt


def flow_count(agent):
    s = agent.ctl_json("status")
    for m in s.get("maps", []):
        if m.get("name") == "clv_flows":
            return m.get("entries", m.get("used"))
    return None


class Agent(Clovisd):
    def dump_meta(self):
        """generation + slot/epoch of link wan0, from the daemon's status."""
        s = self.ctl_json("status")
        gen = s["generation"]
        link = None
        for l in s.get("links", []):
            if l.get("name") == "wan0":
                link = l
        if link is None or "slot" not in link:
            # status does not show slots: --dump does
            for l in self.dump_links():
                if l["name"] == "wan0":
                    link = l
        return {"generation": gen, "link": {"slot": link["slot"], "epoch": link.get("epoch", 0)}}

    def dump_links(self):
        out = subprocess.run(self.base_args() + ["--dump"], capture_output=True, text=True, timeout=120)
        return json.loads(out.stdout)["links"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules", type=int, default=10000)
    ap.add_argument("--flows", type=int, default=100000)
    ap.add_argument("--flows-big", type=int, default=1000000)
    ap.add_argument("--watch-seconds", type=int, default=20)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--apply-reps", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    res = {"loadavg_start": loadavg(), "nproc": os.cpu_count()}
    tmp = TMP
    try:
        run(a, res, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res["loadavg_end"] = loadavg()
    print(json.dumps(res, indent=1))


def run(a, res, tmp):
    res["binaries"] = {b: time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.path.getmtime(
        os.path.join(_SRC, s_, b)))) for s_, b in (("agentd", "clovisd"), ("cli", "clovisctl"))}
    res["version"] = subprocess.run([CLOVISCTL, "--version"], capture_output=True, text=True).stdout.strip()
    exe = build_fill(tmp)
    map_a, map_b = mapping(a.rules, 1), mapping(a.rules, 2)
    fa, fb = os.path.join(tmp, "a.yaml"), os.path.join(tmp, "b.yaml")
    open(fa, "w").write(map_a)
    open(fb, "w").write(map_b)
    res["mapping_kib"] = len(map_a) // 1024

    def say(*x):
        print(*x, file=sys.stderr, flush=True)

    with EdgeSite(wans=3) as site, Agent(site) as agent:
        t = time.monotonic()
        agent.start(map_a, extra=agent_extra())
        res["start_s"] = time.monotonic() - t
        pid = agent.proc.pid
        sock = agent.socket
        res["idle_mem_kb"] = mem_kb(pid)
        say("started", res["start_s"], res["idle_mem_kb"])

        # (4) apply round trip, alternating two 10k-rule files.
        times = []
        for i in range(a.apply_reps):
            f = fb if i % 2 == 0 else fa
            times.append(timed([CLOVISCTL, "--socket", sock, "apply", "-f", f]))
        res["apply_s"] = times
        res["apply_median_s"] = statistics.median(times)
        # the --dry-run (validate + diff, no kernel write) for the split
        dry = [timed([CLOVISCTL, "--socket", sock, "apply", "--dry-run", "-f", fb if i % 2 == 0 else fa])
               for i in range(3)]
        res["apply_dry_run_s"] = dry
        res["validate_local_s"] = [timed([CLOVISCTL, "validate", "-f", fa]) for _ in range(3)]
        res["loadavg_apply"] = loadavg()
        say("apply", times, "dry", dry, "validate", res["validate_local_s"])

        # (3) memory at 10k rules + 100k flows, (2) watch CPU at 100k flows
        res["fill_100k_s"] = fill(exe, agent, a.flows)
        t = timed([CLOVISCTL, "--socket", sock, "flows", "-o", "json"])
        res["flows_json_100k_s"] = t
        time.sleep(1)
        res["mem_100k_kb"] = mem_kb(pid)
        say("mem 100k", res["mem_100k_kb"], "flows json 100k", t)

        # baseline CPU without a watch (the daemon's own tick + 10 s expiry sweep)
        c0, w0 = cpu_ticks(pid), time.monotonic()
        time.sleep(a.watch_seconds)
        res["idle_cpu_pct_100k"] = 100.0 * (cpu_ticks(pid) - c0) / HZ / (time.monotonic() - w0)
        res["loadavg_idle"] = loadavg()
        res["mem_100k_idle_kb"] = mem_kb(pid)  # 20 s on: past a periodic trim
        w = subprocess.Popen([CLOVISCTL, "--socket", sock, "flows", "--watch", "-o", "json", "--interval", "1000ms"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(3)  # past the first full snapshot
        c0, cw0, w0 = cpu_ticks(pid), cpu_ticks(w.pid), time.monotonic()
        time.sleep(a.watch_seconds)
        c1, cw1, w1 = cpu_ticks(pid), cpu_ticks(w.pid), time.monotonic()
        res["watch_cpu_pct_100k"] = 100.0 * (c1 - c0) / HZ / (w1 - w0)
        res["watch_ctl_cpu_pct_100k"] = 100.0 * (cw1 - cw0) / HZ / (w1 - w0)
        res["loadavg_watch"] = loadavg()
        res["mem_100k_watch_kb"] = mem_kb(pid)
        w.terminate()
        w.wait(10)
        if w.returncode not in (0, -15):
            res["watch_stderr"] = w.stderr.read().decode()[-500:]
        say("watch", res["watch_cpu_pct_100k"], res["watch_ctl_cpu_pct_100k"], "idle", res["idle_cpu_pct_100k"])

        # (1) flows -o json at 1M
        res["fill_1m_s"] = fill(exe, agent, a.flows_big - a.flows, first=a.flows)
        out = os.path.join(tmp, "flows.json")
        timed([CLOVISCTL, "--socket", sock, "flows", "-o", "json"], stdout=open(out, "w"))
        res["flows_json_1m_bytes"] = os.path.getsize(out)
        try:
            doc = json.load(open(out))
            res["flows_json_1m_count"] = len(doc["flows"] if isinstance(doc, dict) else doc)
            del doc
        except Exception as e:  # noqa: BLE001
            res["flows_json_1m_count"] = f"unparsed: {e}"
        os.unlink(out)
        big = []
        for _ in range(a.reps):
            c0 = cpu_ticks(pid)
            # clovisctl's own CPU from its rusage, clovisd's from /proc
            dt, ru, peak = run_peak([CLOVISCTL, "--socket", sock, "flows", "-o", "json"])
            big.append({"wall_s": dt, "clovisd_cpu_s": (cpu_ticks(pid) - c0) / HZ,
                        "clovisctl_cpu_s": ru.ru_utime + ru.ru_stime, "clovisctl_peak_rss_kb": peak,
                        "clovisd_hwm_kb": mem_kb(pid)["VmHWM"]})
        res["flows_json_1m"] = big
        res["flows_json_1m_median_s"] = statistics.median(b["wall_s"] for b in big)
        res["flows_table_1m_s"], _, res["flows_table_1m_ctl_peak_rss_kb"] = run_peak(
            [CLOVISCTL, "--socket", sock, "flows", "-o", "wide"])
        res["mem_1m_kb"] = mem_kb(pid)
        res["loadavg_1m"] = loadavg()
        say("1M", big)
        res["log_tail"] = agent.read_log()[-3000:]


if __name__ == "__main__":
    main()
