"""The soak's load generators, each a thread over a shared Soak (soak.py):
applies, link flaps, ext_authz Check chunks, clovisctl watchers and the
RSS/fd sampler. Each records what it did, with CLOCK_MONOTONIC times, so that
soak.py can judge it against the failover windows."""
import json
import os
import random
import signal
import subprocess
import threading
import time


def sleep_until(t, stop):
    """Sleeps until monotonic time t; False when `stop` was set first."""
    return not stop.wait(max(0.0, t - time.monotonic()))


class Applier(threading.Thread):
    """`clovisctl apply -f` every `every` s, alternating two mapping files."""

    def __init__(self, soak, files, every=2.0):
        super().__init__(daemon=True)
        self.soak, self.files, self.every = soak, files, every
        self.done, self.failed, self.skipped = [], [], 0

    def run(self):
        s, k = self.soak, 0
        due = time.monotonic() + self.every
        while sleep_until(due, s.stop):
            due += self.every
            with s.apply_lock:
                if not s.agent_up.is_set():
                    self.skipped += 1
                    continue
                t0 = time.monotonic()
                out = subprocess.run([s.clovisctl, "--socket", s.agent.socket, "apply", "-f",
                                      self.files[k % 2], "-o", "json"],
                                     capture_output=True, text=True, timeout=60, env=s.tool_env)
                t1 = time.monotonic()
            s.window("apply", t0 - 0.1, t1 + 0.25)
            rec = {"t": s.rel(t0), "ms": round((t1 - t0) * 1000, 1), "rc": out.returncode}
            if out.returncode != 0:
                rec["err"] = (out.stderr or out.stdout)[-400:]
                self.failed.append(rec)
            self.done.append(rec)
            k += 1


class Flapper(threading.Thread):
    """Every `every` s (from `first`), WAN i's router side goes down for
    `down_s` and comes back: carrier loss at the edge; i cycles 0, 1, 2."""

    def __init__(self, soak, every=10.0, first=5.0, down_s=1.0):
        super().__init__(daemon=True)
        self.soak, self.every, self.first, self.down_s = soak, every, first, down_s
        self.flaps = []

    def run(self):
        s, k = self.soak, 0
        due = s.t0 + self.first
        while due < s.t_end - 3 and sleep_until(due, s.stop):
            wan = k % s.site.wans
            with s.flap_lock:
                t0 = time.monotonic()
                s.site.link_down(wan)
                time.sleep(self.down_s)
                s.site.link_up(wan)
                t1 = time.monotonic()
            s.window("flap", t0 - 0.25, t1 + 1.0)
            self.flaps.append({"t": s.rel(t0), "wan": wan, "s": round(t1 - t0, 2)})
            k += 1
            due += self.every


class Checker(threading.Thread):
    """ext_authz Checks at `rate`/s from clovis-check-load, in chunks of at
    most `chunk` s: each chunk is a new channel, so a restart costs the chunk
    it falls in, not gRPC's reconnect back-off for the rest of the run."""

    def __init__(self, soak, rate=500, chunk=10.0, streams=4):
        super().__init__(daemon=True)
        self.soak, self.rate, self.chunk, self.streams = soak, rate, chunk, streams
        self.chunks, self.proc = [], None

    def abort(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()

    def run(self):
        s = self.soak
        while not s.stop.is_set():
            if not s.agent_up.wait(0.2):
                continue
            secs = min(self.chunk, s.t_end - 1 - time.monotonic())
            if secs < 1:
                break
            t0 = time.monotonic()
            self.proc = subprocess.Popen([s.check_load, "--socket", s.agent.authz_socket, "--rate", str(self.rate),
                                          "--streams", str(self.streams), "--seconds", f"{secs:.2f}", "--warmup",
                                          "0", "--flows", "1000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True, env=s.tool_env)
            out, err = self.proc.communicate(timeout=secs + 60)
            t1 = time.monotonic()
            rec = {"t0": s.rel(t0), "t1": s.rel(t1), "rc": self.proc.returncode, "mono": (t0, t1)}
            try:
                r = json.loads(out)
                rec.update(requests=r["requests"], ok=r["ok"], errors=r["errors"], links=r["links"],
                           p99_us=r["latency_us"]["p99"], max_us=r["latency_us"]["max"])
            except (ValueError, KeyError):
                # No answer at all (e.g. it could not connect): every request
                # it was due to send failed.
                n = int(secs * self.rate)
                rec.update(requests=n, ok=0, errors={err.strip()[-200:] or f"exit {self.proc.returncode}": n})
            self.chunks.append(rec)


class Watchers(threading.Thread):
    """`total` clovisctl watchers (flows --watch and events --watch in turn)
    started evenly over the run, each living a random while around `alive`
    start intervals, so that about `alive` run at a time. While `paused`
    (around restarts, for the quiet RSS/fd samples) none run."""

    def __init__(self, soak, total=100, alive=15):
        super().__init__(daemon=True)
        self.soak, self.total, self.alive = soak, total, alive
        self.paused = threading.Event()
        self.paused.set()  # until the run begins
        self.running, self.records = [], []
        self.max_alive = 0

    def start_one(self, n, life):
        s = self.soak
        what = ["flows", "--watch", "-o", "json"] if n % 2 == 0 else ["events", "--watch"]
        log = os.path.join(s.out, "watchers", f"{n:03d}.log")
        with open(log, "wb") as f:
            p = subprocess.Popen([s.clovisctl, "--socket", s.agent.socket] + what, stdout=f,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=s.tool_env)
        self.running.append({"n": n, "p": p, "until": time.monotonic() + life, "log": log,
                             "t": s.rel(time.monotonic()), "what": what[0]})

    def reap(self, w, stopped):
        if stopped and w["p"].poll() is None:
            w["p"].send_signal(signal.SIGTERM)
            try:
                w["p"].wait(5)
            except subprocess.TimeoutExpired:
                w["p"].kill()
                w["p"].wait()
        self.running.remove(w)
        self.records.append({"n": w["n"], "what": w["what"], "t": w["t"], "end": self.soak.rel(time.monotonic()),
                             "rc": w["p"].returncode, "stopped": stopped,
                             "output_bytes": os.path.getsize(w["log"])})

    def run(self):
        s = self.soak
        os.makedirs(os.path.join(s.out, "watchers"), exist_ok=True)
        interval = max(0.1, (s.t_end - s.t0 - 5) / self.total)
        started, due = 0, time.monotonic()
        while not s.stop.wait(0.05):
            now = time.monotonic()
            for w in list(self.running):
                if w["p"].poll() is not None:
                    self.reap(w, stopped=False)  # it quit on its own
                elif now >= w["until"] or self.paused.is_set():
                    self.reap(w, stopped=True)
            if self.paused.is_set() or not s.agent_up.is_set():
                continue
            if started < self.total and now >= due and len(self.running) < self.alive + 5:
                self.start_one(started, random.uniform(0.5, 1.5) * self.alive * interval)
                started += 1
                due += interval  # after a pause: catch up, one per tick
            self.max_alive = max(self.max_alive, len(self.running))
        for w in list(self.running):
            self.reap(w, stopped=True)

    def abort(self):
        for w in list(self.running):
            if w["p"].poll() is None:
                w["p"].kill()

    def pause(self, timeout=15):
        """Stops every watcher and starts none until resume()."""
        self.paused.set()
        deadline = time.monotonic() + timeout
        while self.running and time.monotonic() < deadline:
            time.sleep(0.05)

    def resume(self):
        self.paused.clear()


def proc_sample(pid):
    """(VmRSS in kB, open fds) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        return rss, len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, StopIteration):
        return None


class Sampler(threading.Thread):
    """Once a second: clovisd's RSS and fds, and whether it died when nobody
    killed it."""

    def __init__(self, soak):
        super().__init__(daemon=True)
        self.soak = soak
        self.series, self.crashes = [], []

    def run(self):
        s = self.soak
        while not s.stop.wait(1.0):
            with s.proc_lock:
                proc = s.agent.proc
                if proc is None or not s.agent_up.is_set():
                    continue
                if proc.poll() is not None:
                    self.crashes.append({"t": s.rel(time.monotonic()), "pid": proc.pid, "rc": proc.returncode})
                    s.agent_up.clear()
                    s.stop.set()  # nothing left to soak
                    continue
                x = proc_sample(proc.pid)
            if x:
                self.series.append([round(s.rel(time.monotonic()), 1), proc.pid, x[0], x[1]])
