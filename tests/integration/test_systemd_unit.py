#!/usr/bin/env python3
"""The shipped systemd unit under a real systemd (PID 1).

systemd-nspawn boots this machine's own OS (`-D / --volatile=yes`, so
nothing of the host's /etc or /var is written) inside an EdgeSite's edge
namespace, with the build bound read-only at /opt/clovis and the host's bpffs
at /sys/fs/bpf. packaging/systemd/clovisd.service is installed unchanged but
for its ExecStart path, and then: `systemctl start` (Type=notify readiness),
ICMP probes measured under the unit's capabilities and sandboxing,
`systemctl reload`, `systemctl stop` (steering stays), `clovisd --uninstall`.

nspawn's own seccomp filter refuses bpf(2) with EPERM to every process under
the container's PID 1 (systemd's nspawn-seccomp.c leaves bpf out on purpose;
`nsenter`ed processes escape it, which is why clovisd run directly in such a
container worked and the same binary as a unit did not): the container is
started with --system-call-filter=bpf. See docs/DEPLOYMENT.md.

    python3 tests/integration/test_systemd_unit.py [-k PATTERN]
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from clovis_site import BUILD, REPO, require_built  # noqa: E402
from edgesite import EdgeSite  # noqa: E402
import privileged  # noqa: E402
from test_unit_capabilities import CAP_BITS, unit_capabilities  # noqa: E402

UNIT = os.path.join(REPO, "packaging", "systemd", "clovisd.service")

MAPPING = """version: 1
links:
  - name: w0
    interface: wan0
    gateway: 100.64.0.1
    mode: route
    health: {{probes: [{{icmp: 100.64.0.1}}], interval: 200ms, timeout: 150ms, down: 3, up: 2}}
  - name: w1
    interface: wan1
    gateway: 100.64.1.1
    mode: redirect
    snat: masquerade
    health: {{probes: [{{icmp: 100.64.1.1}}], interval: 200ms, timeout: 150ms, down: 3, up: 2}}
policies:
  - {{name: fo, failover: [{first}, {second}]}}
rules:
  - {{name: all, priority: 10, match: {{proto: udp}}, policy: fo}}
default: {{action: bypass}}
"""


def setUpModule():
    privileged.require_root(("ip", "nft", "systemd-nspawn"))
    require_built()


class Container:
    """This OS booted by systemd-nspawn in network namespace `netns`."""

    def __init__(self, netns, log_path):
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(
            ["systemd-nspawn", "-q", "-D", "/", "--volatile=yes", "--register=no", "--keep-unit",
             f"--network-namespace-path=/run/netns/{netns}", "--capability=all",
             "--system-call-filter=bpf", "--bind=/sys/fs/bpf", f"--bind-ro={BUILD}:/opt/clovis",
             # Up to basic.target only: no getty, dbus or iperf3 server in
             # the edge namespace; nothing here configures the network by
             # networkd, so network-online.target must not wait 2 minutes
             # for systemd-networkd-wait-online.
             "-b", "--", "systemd.firstboot=off", "systemd.unit=basic.target",
             "systemd.mask=systemd-networkd-wait-online.service",
             # It would load the host's /etc/nftables.conf into the edge namespace.
             "systemd.mask=nftables.service"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.leader = None
        try:
            self._wait_booted()
        except Exception:
            self.close()
            raise

    def _find_leader(self):
        """The container's PID 1 (systemd), a child of nspawn once nspawn's
        own intermediate process has gone; None until then."""
        kids = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout.split()
        for pid in kids:
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() == "systemd":
                        return pid
            except OSError:
                pass
        return None

    def _wait_booted(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited with {self.proc.returncode}: {self.read_log()}")
            if self.leader is None:
                self.leader = self._find_leader()
            if self.leader is not None:
                state = self.run("systemctl", "is-system-running", check=False).stdout.strip()
                if state in ("running", "degraded"):
                    return
            time.sleep(0.1)
        jobs = self.run("systemctl", "list-jobs", "--no-pager", check=False).stdout if self.leader else ""
        raise RuntimeError(f"the container did not boot within {timeout}s; jobs:\n{jobs}\n{self.read_log()}")

    def run(self, *argv, check=True, input=None, timeout=60):
        out = subprocess.run(["nsenter", "-t", self.leader, "-a", "--"] + list(argv), capture_output=True,
                             text=True, input=input, timeout=timeout)
        if check and out.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited with {out.returncode}: {out.stdout}{out.stderr}")
        return out

    def write(self, path, text):
        self.run("sh", "-c", f"mkdir -p {os.path.dirname(path)} && cat > {path}", input=text)

    def read_log(self):
        with open(self.log.name) as f:
            return f.read()[-4000:]

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # nspawn asks the container's systemd to power off
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close()


class SystemdUnit(unittest.TestCase):
    def setUp(self):
        self.site = EdgeSite(wans=2).start()
        self.pin_dir = f"/sys/fs/bpf/clovis-{self.site.prefix.rstrip('-')}"
        self.container = None
        try:
            self.container = Container(self.site.ns_edge, os.path.join(self.site.logdir, "nspawn.log"))
        except Exception:
            self.site.close()
            raise

    def tearDown(self):
        if self.container:
            self.container.run("systemctl", "stop", "clovisd", check=False)
            self.container.run("/opt/clovis/agentd/clovisd", "--uninstall", "--pin-dir", self.pin_dir, check=False)
            self.container.close()
        shutil.rmtree(self.pin_dir, ignore_errors=True)
        self.site.close()

    def ctl_json(self, *args):
        return json.loads(self.container.run("/opt/clovis/cli/clovisctl", *args, "-o", "json").stdout)

    def journal(self):
        return self.container.run("journalctl", "-u", "clovisd", "--no-pager", check=False).stdout

    def wait_for(self, what, pred, timeout):
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = pred()
            if value:
                return value
            time.sleep(0.1)
        self.fail(f"{what} within {timeout}s:\n{self.journal()}")

    def test_the_shipped_unit_runs_clovisd(self):
        c = self.container
        with open(UNIT) as f:
            unit = f.read()
        self.assertIn("ExecStart=/usr/sbin/clovisd ", unit)
        c.write("/etc/systemd/system/clovisd.service", unit.replace("/usr/sbin/clovisd", "/opt/clovis/agentd/clovisd"))
        c.write("/etc/default/clovisd", f"CLOVIS_LAN=lan0\nCLOVIS_OPTS=--pin-dir {self.pin_dir}\n")
        c.write("/etc/clovis/wan.yaml", MAPPING.format(first="w0", second="w1"))
        c.run("systemctl", "daemon-reload")
        started = time.monotonic()
        c.run("systemctl", "start", "clovisd")  # returns on READY=1 (Type=notify)
        print(f"\nsystemctl start took {time.monotonic() - started:.2f} s")
        self.assertEqual(c.run("systemctl", "is-active", "clovisd", check=False).stdout.strip(), "active",
                         self.journal())
        pid = c.run("systemctl", "show", "-p", "MainPID", "--value", "clovisd").stdout.strip()
        status = c.run("cat", f"/proc/{pid}/status").stdout
        cap_eff = int(next(l for l in status.splitlines() if l.startswith("CapEff:")).split()[1], 16)
        want = sum(1 << CAP_BITS[n] for n in unit_capabilities(UNIT)["CapabilityBoundingSet"])
        self.assertEqual(cap_eff, want, "clovisd runs with the unit's capabilities, as test_unit_capabilities assumes")

        def measured():
            links = {l["name"]: l for l in self.ctl_json("links")["links"]}
            ok = all(links[n]["state"] == "up" and links[n]["measured"] for n in ("w0", "w1"))
            return links if ok else None
        links = self.wait_for("both links up with measured latency", measured, 5)
        print(f"latency w0 {links['w0']['latency_ms']:.3f} ms, w1 {links['w1']['latency_ms']:.3f} ms")
        self.assertNotIn("cannot probe", self.journal())

        c.write("/etc/clovis/wan.yaml", MAPPING.format(first="w1", second="w0"))
        c.run("systemctl", "reload", "clovisd")
        self.wait_for("generation 2", lambda: self.ctl_json("status").get("generation") == 2, 5)

        c.run("systemctl", "stop", "clovisd")
        self.assertTrue(os.path.isdir(os.path.join(self.pin_dir, "maps")), "stopping keeps the steering")
        out = c.run("/opt/clovis/agentd/clovisd", "--uninstall", "--pin-dir", self.pin_dir)
        print(out.stderr.strip())
        self.assertFalse(os.path.exists(self.pin_dir))
        self.assertNotIn("proto 193", self.site.run(self.site.ns_edge, "ip", "rule", "show").stdout)


if __name__ == "__main__":
    sys.exit(privileged.main(__name__))
