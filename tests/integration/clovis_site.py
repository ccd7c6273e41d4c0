"""clovisd on an edgesite.EdgeSite: start it on the edge namespace with a
mapping, reload it, kill it, read its kernel state (clovisd --dump), and talk
to it with clovisctl over its own API socket (--socket, in its temp dir).

Binaries come from CLOVIS_BUILD_DIR (default: <repo>/build)."""
import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("CLOVIS_BUILD_DIR", os.path.join(REPO, "build"))
CLOVISD = os.path.join(BUILD, "agentd", "clovisd")
CLOVISCTL = os.path.join(BUILD, "cli", "clovisctl")


def require_built():
    """For a test module's setUpModule: clovisd and clovisctl must exist."""
    for b in (CLOVISD, CLOVISCTL):
        if not os.path.exists(b):
            raise RuntimeError(f"{b} not built (cmake --build --preset default)")


def wait_notify_ready(notify, proc, read_log, what, timeout):
    """Waits for READY=1 on the bound NOTIFY_SOCKET `notify` (the systemd
    notification protocol) from `proc`, which must not exit meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{read_log()}")
        notify.settimeout(0.1)
        try:
            if b"READY=1" in notify.recv(4096):
                return
        except socket.timeout:
            pass
    raise RuntimeError(f"{what} not ready within {timeout}s:\n{read_log()}")


class Clovisd:
    """One clovisd for one site, with its own pin and state directories."""

    def __init__(self, site, lan=("lan0",)):
        self.site = site
        self.lan = list(lan)
        self.pin_dir = f"/sys/fs/bpf/clovis-{site.prefix.rstrip('-')}"
        self.tmp = tempfile.mkdtemp(prefix=f"clovis-{site.prefix}")
        self.state_dir = os.path.join(self.tmp, "state")
        self.config = os.path.join(self.tmp, "wan.yaml")
        self.log = os.path.join(self.tmp, "clovisd.log")
        self.socket = os.path.join(self.tmp, "run", "clovisd.sock")
        # Its own ext_authz socket, so that sites never share /run/clovis/authz.sock.
        self.authz_socket = os.path.join(self.tmp, "run", "authz.sock")
        # Traversable by anyone, so that the socket's own mode (0660) is what
        # keeps other users out.
        os.chmod(self.tmp, 0o711)
        self.proc = None

    def base_args(self):
        return [CLOVISD, "--netns", self.site.ns_edge, "--pin-dir", self.pin_dir,
                "--state-dir", self.state_dir]

    def write_mapping(self, text):
        with open(self.config + ".tmp", "w") as f:
            f.write(text)
        os.replace(self.config + ".tmp", self.config)

    def start(self, mapping=None, extra=(), wait=True):
        """Starts a resident clovisd; returns once it reports READY=1 over the
        systemd notification protocol (NOTIFY_SOCKET), as under systemd."""
        if mapping is not None:
            self.write_mapping(mapping)
        args = self.base_args() + ["--lan", ",".join(self.lan), "--socket", self.socket,
                                   "--authz-socket", self.authz_socket] + list(extra)
        if mapping is not None:
            args += ["-c", self.config]
        notify_path = os.path.join(self.tmp, "notify")
        if os.path.exists(notify_path):
            os.unlink(notify_path)
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(notify_path)
        env = dict(os.environ, NOTIFY_SOCKET=notify_path)
        with open(self.log, "a") as logf:  # the child holds its own copy
            self.proc = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT, env=env)
        try:
            if wait:
                self.wait_ready(notify)
        finally:
            notify.close()
        return self.proc

    def wait_ready(self, notify, timeout=15):
        wait_notify_ready(notify, self.proc, self.read_log, "clovisd", timeout)

    def reload(self, mapping, timeout=10):
        """Writes a new mapping and sends SIGHUP; waits for the new generation."""
        before = self.dump()["generation"]
        self.write_mapping(mapping)
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.dump()["generation"] > before:
                return
            time.sleep(0.05)
        raise RuntimeError(f"reload did not take effect:\n{self.read_log()}")

    def ctl(self, *args, check=False, timeout=30, user=None, groups=None):
        """Runs clovisctl against this agent's socket; user/groups run it as
        another user (setpriv), e.g. user="nobody", groups=[] for none."""
        argv = [CLOVISCTL, "--socket", self.socket] + [str(a) for a in args]
        if user is not None:
            grp = ["--clear-groups"] if not groups else ["--groups", ",".join(str(g) for g in groups)]
            argv = ["setpriv", f"--reuid={user}", f"--regid={user if user != 'nobody' else 'nogroup'}"] + grp + argv
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if check and out.returncode != 0:
            raise RuntimeError(f"clovisctl {' '.join(map(str, args))} exited with {out.returncode}:\n"
                               f"{out.stdout}{out.stderr}")
        return out

    def ctl_json(self, *args, timeout=30):
        """clovisctl ARGS -o json, parsed; raises on a non-zero exit."""
        return json.loads(self.ctl(*args, "-o", "json", check=True, timeout=timeout).stdout)

    def event_time(self, link, to=None, contains=None):
        """When clovisd recorded the last event of `link` (going `to` a
        state, or whose reason holds `contains`), in seconds since the epoch
        as time.time() counts them; None if there is none. Timing from this
        stamp leaves out how late a test's polling saw the event."""
        found = None
        for e in self.ctl_json("events")["events"]:
            if e["link"] == link and (to is None or e["to"] == to) and (contains is None or contains in e["reason"]):
                found = e
        if not found:
            return None
        t = datetime.datetime.strptime(found["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
        return t.replace(tzinfo=datetime.timezone.utc).timestamp()

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        self.proc = None

    def dump(self):
        out = subprocess.run(self.base_args() + ["--dump"], capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise RuntimeError(f"clovisd --dump failed: {out.stderr}")
        return json.loads(out.stdout)

    def link(self, name, dump=None):
        for l in (dump or self.dump())["links"]:
            if l["name"] == name:
                return l
        raise KeyError(name)

    def read_log(self):
        try:
            with open(self.log) as f:
                return f.read()
        except OSError:
            return ""

    def close(self):
        self.kill(signal.SIGTERM)
        subprocess.run(self.base_args() + ["--uninstall"], capture_output=True, timeout=30)
        shutil.rmtree(self.pin_dir, ignore_errors=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
