#!/usr/bin/env python3
"""A soak of the real clovisd (built with ASan+UBSan by default) on a
throwaway three-WAN edge site (tests/integration/edgesite.py), for --seconds:

- echoed UDP on three links: one flow per link (each link's policy's rule by
  dport), --pps datagrams/s each, every datagram's fate on one timeline;
- `clovisctl apply -f` every 2 s, alternating two mappings that differ in
  rules and in one link's settings;
- a link flap every 10 s (a WAN router's side down for 1 s: carrier loss),
  WANs in turn;
- kill -9 and restart every 60 s, the last lifetime lasting 240 s (a run too
  short for two kills: one, halfway);
- 100 `clovisctl flows|events --watch` connecting and leaving, ~15 at a time;
- ext_authz Checks at --checks/s (clovis-check-load) against an L7 rule.

Bars (exit 1 when one is missed): no sanitizer report (clovisd and the tools);
no clovisd exit but the kills, and a clean last exit (SIGTERM: LeakSanitizer
runs); RSS and open fds of the last clovisd lifetime back to their start
+-10% (quiet samples: no watchers connected, after a warm-up of 150 s or half
the lifetime, and just before the end); no datagram lost outside a failover window (flap, restart, apply);
every apply succeeded; no Check failed outside a restart; no watcher quit on
its own. Needs root.

    sudo python3 bench/soak/soak.py [--seconds 600] [--build-dir build-asan] [--out DIR]

See docs/SOAK.md.
"""
import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
sys.path.insert(0, HERE)

from mappings import MAP_A, MAP_B, PORTS  # noqa: E402
import load  # noqa: E402
import report  # noqa: E402

PRE_SAMPLE = 3.0  # s before a kill (and the end) when the watchers stop for the quiet sample


class Soak:
    def __init__(self, a, site, agent, clovisd_mod):
        self.a, self.site, self.agent, self.out = a, site, agent, a.out
        self.clovisctl, self.check_load = clovisd_mod.CLOVISCTL, os.path.join(a.build_dir, "bench", "clovis-check-load")
        self.tool_env = dict(os.environ, ASAN_OPTIONS=san_options(a.out, "tools"),
                             UBSAN_OPTIONS=san_options(a.out, "tools", ubsan=True))
        self.stop, self.agent_up = threading.Event(), threading.Event()
        self.apply_lock, self.flap_lock, self.proc_lock = threading.Lock(), threading.Lock(), threading.Lock()
        self.windows, self.lifetimes, self.restarts, self.failed_restarts = [], [], [], []
        self.t0 = time.monotonic()
        self.t_end = self.t0 + a.seconds

    def rel(self, t):
        return round(t - self.t0, 3)

    def window(self, kind, t0, t1):
        self.windows.append((kind, t0, t1))

    # ----- clovisd lifetimes -------------------------------------------------------------
    def quiet_sample(self, what):
        """Median RSS and fds over 5 samples, with no watcher connected."""
        self.watchers.pause()
        time.sleep(1.0)
        xs = []
        for _ in range(5):
            x = load.proc_sample(self.agent.proc.pid)
            if x:
                xs.append(x)
            time.sleep(0.4)
        if not xs:
            return None
        return {"what": what, "t": self.rel(time.monotonic()), "pid": self.agent.proc.pid,
                "rss_kb": statistics.median(x[0] for x in xs), "fds": statistics.median(x[1] for x in xs)}

    def begin_lifetime(self, until):
        """A warm-up with every load on (watchers too: their first
        connections allocate what later ones reuse), then the lifetime's
        start sample. The warm-up is --warmup s (clovisd under ASan climbs
        for about 2.5 minutes to a steady RSS; see docs/SOAK.md), or half
        of a lifetime too short for it."""
        self.watchers.resume()
        now = time.monotonic()
        warmup = min(self.a.warmup, max(0.0, (until - PRE_SAMPLE - now) / 2))
        load.sleep_until(now + warmup, self.stop)
        if self.stop.is_set():
            return
        self.lifetimes.append({"start": self.quiet_sample("start"), "warmup_s": round(warmup, 1)})
        self.watchers.resume()

    def end_lifetime(self):
        if self.lifetimes and not self.stop.is_set():
            self.lifetimes[-1]["end"] = self.quiet_sample("end")

    def kill_restart(self):
        with self.apply_lock, self.flap_lock, self.proc_lock:
            self.agent_up.clear()
            t0 = time.monotonic()
            old = self.agent.proc.pid
            self.agent.kill(signal.SIGKILL)
            try:
                self.agent.start()  # no -c: the persisted mapping, as a restarted service
            except RuntimeError as e:
                self.failed_restarts.append({"t": self.rel(t0), "error": str(e)[-2000:]})
                self.agent.proc = None
                self.stop.set()
                return
            t1 = time.monotonic()
            self.agent_up.set()
        self.window("restart", t0 - 0.25, t1 + 1.0)
        self.restarts.append({"t": self.rel(t0), "ready_s": round(t1 - t0, 2), "old_pid": old,
                              "new_pid": self.agent.proc.pid})

    def kill_times(self):
        """Every --kill-every s, leaving the last lifetime --last-lifetime s
        (at least --kill-every); a run too short for two: one, halfway."""
        every, secs = self.a.kill_every, self.a.seconds
        if every <= 0:
            return []
        last = max(every, self.a.last_lifetime)
        ts = [every * k for k in range(1, int(secs // every) + 1) if every * k <= secs - last]
        return [self.t0 + t for t in (ts or [secs / 2])]

    def run(self):
        self.agent_up.set()
        self.watchers = load.Watchers(self, total=self.a.watchers)
        self.sampler = load.Sampler(self)
        self.applier = load.Applier(self, [self.map_file("a", MAP_A), self.map_file("b", MAP_B)])
        self.flapper = load.Flapper(self)
        self.checker = load.Checker(self, rate=self.a.checks)
        threads = [self.watchers, self.sampler, self.applier, self.flapper, self.checker]
        if self.a.inject_loss is not None:
            threads.append(threading.Thread(target=self.inject_loss, daemon=True))
        for t in threads:
            t.start()
        kills = self.kill_times()
        self.begin_lifetime(kills[0] if kills else self.t_end)
        for i, t in enumerate(kills):
            if not load.sleep_until(t - PRE_SAMPLE, self.stop):
                break
            self.end_lifetime()
            load.sleep_until(t, self.stop)
            if self.stop.is_set():
                break
            self.kill_restart()
            self.begin_lifetime(kills[i + 1] if i + 1 < len(kills) else self.t_end)
        if load.sleep_until(self.t_end - PRE_SAMPLE, self.stop):
            self.end_lifetime()
        load.sleep_until(self.t_end, self.stop)
        self.stop.set()
        for t in threads:
            t.join(90)

    def inject_loss(self):
        """The soak's own check (--inject-loss T): 0.3 s of the flows'
        datagrams dropped by every WAN router at T s, in no failover window,
        must fail the run."""
        if load.sleep_until(self.t0 + self.a.inject_loss, self.stop):
            with contextlib.ExitStack() as drops:
                for i in range(self.site.wans):
                    drops.enter_context(self.site.drop_on_wan(i, "udp", direction="out"))
                time.sleep(0.3)

    def map_file(self, name, text):
        path = os.path.join(self.out, f"mapping-{name}.yaml")
        with open(path, "w") as f:
            f.write(text)
        return path


def san_options(out, who, ubsan=False, quarantine_mb=1):
    """Reports to files OUT/san/WHO.PID; print_stacktrace for UBSan. The build
    has -fno-sanitize-recover=all, so a UBSan report also ends the process.
    A small quarantine (ASan keeps freed memory there to catch use after free;
    256 MB by default) fills within the warm-up, so that it does not read as
    growth of RSS during a lifetime."""
    opts = [f"log_path={os.path.join(out, 'san', who)}", "print_stacktrace=1"]
    if ubsan:
        opts.append("halt_on_error=0")
    else:
        opts += ["detect_leaks=1", f"quarantine_size_mb={quarantine_mb:g}", "thread_local_quarantine_size_kb=64"]
    return ":".join(opts)


def start_traffic(site, out, pps):
    """The cloud's echo server and one client per flow (one per link)."""
    py = sys.executable
    tr = os.path.join(HERE, "traffic.py")
    err = open(os.path.join(out, "traffic.err"), "ab")
    echo = site.popen(site.ns_cloud, [py, tr, "echo", json.dumps({"bind": site.server_v4, "ports": PORTS})],
                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
    site._wait_ready(echo, 10)
    clients = []
    for i, port in enumerate(PORTS):
        c = site.popen(site.ns_lan, [py, tr, "client", json.dumps({
            "src": site.client_v4, "sport": 41000 + i, "dst": site.server_v4, "port": port, "rate": pps,
            "settle": 1.5})], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
        site._wait_ready(c, 10)
        clients.append(c)
    return echo, clients


def stop_traffic(site, echo, clients):
    """The clients first (each waits for its last echoes), then the echo."""
    def finish(p):
        p.stdin.close()
        p.stdin = None  # so that communicate() does not flush it
        out, _ = p.communicate(timeout=30)
        return json.loads(out.decode().strip().splitlines()[-1])
    for c in clients:
        c.stdin.close()
    results = []
    for c in clients:
        c.stdin = None
        out, _ = c.communicate(timeout=30)
        results.append(json.loads(out.decode().strip().splitlines()[-1]))
    return results, finish(echo)


def final_stop(soak):
    """SIGTERM, as the service stops: LeakSanitizer runs at this exit."""
    with soak.proc_lock:
        p = soak.agent.proc
        if p is None:
            return None
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = "did not exit within 60 s of SIGTERM"
        soak.agent.proc = None
        return rc


def soak_run(a, clovis_site, edgesite):
    with edgesite.EdgeSite(wans=3) as site, clovis_site.Clovisd(site) as agent:
        os.environ["ASAN_OPTIONS"] = san_options(a.out, "clovisd", quarantine_mb=a.asan_quarantine_mb)
        os.environ["UBSAN_OPTIONS"] = san_options(a.out, "clovisd", ubsan=True)
        print(f"== site {site.prefix}: clovisd from {a.build_dir}, {a.seconds:g} s, out {a.out}", file=sys.stderr)
        agent.start(MAP_A)
        echo, clients = start_traffic(site, a.out, a.pps)
        soak = Soak(a, site, agent, clovis_site)
        try:
            soak.run()
        except BaseException:  # e.g. SIGTERM: no report; the with blocks clean up
            soak.stop.set()
            for part in ("checker", "watchers"):
                if hasattr(soak, part):
                    getattr(soak, part).abort()
            shutil.copy(agent.log, os.path.join(a.out, "clovisd.log"))
            raise
        flows, echoed = stop_traffic(site, echo, clients)
        rc = final_stop(soak)
        shutil.copy(agent.log, os.path.join(a.out, "clovisd.log"))
        return report.build(soak, flows, echoed, rc)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--build-dir", default=os.path.join(REPO, "build-asan"))
    ap.add_argument("--out", help="directory for the summary, logs and sanitizer reports "
                                  "(default: a new one under /tmp)")
    ap.add_argument("--pps", type=float, default=500, help="datagrams/s of each of the three flows")
    ap.add_argument("--checks", type=float, default=500, help="ext_authz Checks/s")
    ap.add_argument("--watchers", type=int, default=100)
    ap.add_argument("--warmup", type=float, default=150,
                    help="s of load after each (re)start before its start sample (at most half the lifetime)")
    ap.add_argument("--last-lifetime", type=float, default=240,
                    help="s the last clovisd lifetime, the one the RSS/fd bar judges, lasts at least")
    ap.add_argument("--inject-loss", type=float, metavar="T",
                    help="self-check: drop 0.3 s of datagrams on every WAN at T s (the run must then fail)")
    ap.add_argument("--kill-every", type=float, default=60,
                    help="s between kill -9s (a shorter run: one, halfway); 0: none, one lifetime")
    ap.add_argument("--asan-quarantine-mb", type=float, default=1,
                    help="clovisd's ASan quarantine (ASan's default is 256 MB; see docs/SOAK.md)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("soak.py: needs root (network namespaces, the TC program)")
    a.build_dir = os.path.abspath(a.build_dir)
    for b in ("agentd/clovisd", "cli/clovisctl", "bench/clovis-check-load"):
        if not os.path.exists(os.path.join(a.build_dir, b)):
            sys.exit(f"soak.py: {a.build_dir}/{b} is missing: cmake --build --preset asan "
                     "--target clovisd clovisctl clovis-check-load")
    a.out = os.path.abspath(a.out or tempfile.mkdtemp(prefix="clovis-soak-"))
    for d in ("san", "watchers"):  # a reused --out: only this run's reports count
        shutil.rmtree(os.path.join(a.out, d), ignore_errors=True)
    os.makedirs(os.path.join(a.out, "san"))
    os.environ["CLOVIS_BUILD_DIR"] = a.build_dir  # read by clovis_site on import
    import clovis_site
    import edgesite
    # SIGTERM and SIGHUP unwind like Ctrl-C, so that clovisd's pins go too
    # (edgesite removes the namespaces first, then calls this).
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
    started = time.monotonic()
    summary = soak_run(a, clovis_site, edgesite)
    summary["wall_s"] = round(time.monotonic() - started, 1)
    summary["command"] = " ".join(sys.argv)
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    report.print_human(summary, a.out)
    return 0 if summary["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
