#!/usr/bin/env python3
"""clovisd in its container image (packaging/container/build.sh, docs/CONTAINER.md),
run by systemd-nspawn from the image's unpacked OCI bundle in the edge namespace of a
site: bpffs bound from the host, the capabilities of packaging/systemd/clovisd.service
and no others, /run/clovis and /var/lib/clovis bound from host directories so the
host's clovisctl works.

It proves that clovisd is the container's PID 1 with exactly those capabilities, that
it steers, that SIGTERM to the runtime stops it with status 0 and the steering stays
(pins), that the same image started again and then a newer image adopt a flow that ran
through both stops without loss, and that a start-up error reaches the runtime's exit
status. "Newer image" here is a second image built from the same .deb with another
version stamp: a different image (its own digest and /etc/clovis-image), the same
clovisd binary.

The .deb: CLOVIS_DEB, else the newest clovis_*.deb in CLOVIS_BUILD_DIR (cpack makes it
there when it is missing or older than clovisd). The base layer must be cached
(`packaging/container/build.sh base DEB`, run by scripts/test.sh): it needs the Debian
mirror, which this test never uses.

    python3 tests/integration/test_container.py [-k PATTERN]
"""
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from clovis_site import BUILD, CLOVISD, REPO, Clovisd, require_built  # noqa: E402
from edgesite import EdgeSite  # noqa: E402
from test_unit_capabilities import unit_capabilities  # noqa: E402
import privileged  # noqa: E402

BUILD_SH = os.path.join(REPO, "packaging", "container", "build.sh")

# Linux capability names by number (linux/capability.h), to drop every one the unit
# does not keep: systemd-nspawn keeps a default set (CAP_SYS_ADMIN, CAP_NET_RAW,
# CAP_CHOWN, CAP_SETUID, ...) unless told to drop it.
CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
        "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"]

MAPPING = """version: 1
links:
  - {name: primary, interface: wan0, gateway: 100.64.0.1, mode: route}
  - name: broadband
    interface: wan1
    gateway: 100.64.1.1
    mode: redirect
    snat: masquerade
    health: {probes: [{icmp: 100.64.1.1}], interval: 200ms, timeout: 150ms, down: 3, up: 2}
rules:
  - {name: udp-bb, priority: 10, match: {proto: udp, dport: 9001}, link: broadband}
default: {action: bypass}
"""


def find_deb():
    deb = os.environ.get("CLOVIS_DEB")
    if deb:
        return deb
    debs = sorted(glob.glob(os.path.join(BUILD, "clovis_*.deb")), key=os.path.getmtime)
    if not debs or os.path.getmtime(debs[-1]) < os.path.getmtime(CLOVISD):
        subprocess.run(["cpack", "-G", "DEB"], cwd=BUILD, check=True, capture_output=True, timeout=120)
        debs = sorted(glob.glob(os.path.join(BUILD, "clovis_*.deb")), key=os.path.getmtime)
    return debs[-1]


def build_image(deb, out, stamp):
    """Builds an image with build.sh (offline) and returns its unpacked bundle's rootfs."""
    bundle = out + "-bundle"
    r = subprocess.run(["bash", BUILD_SH, "image", deb, out, "--tag", stamp, "--stamp", stamp,
                        "--bundle", bundle], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"build.sh image failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    print(r.stdout.strip().splitlines()[-1], file=sys.stderr)
    return os.path.join(bundle, "rootfs")


class Container:
    """One systemd-nspawn run of an image's root file system as clovisd's container."""

    def __init__(self, site, agent, rootfs, name, etc_dir):
        self.site, self.agent, self.rootfs, self.name, self.etc_dir = site, agent, rootfs, name, etc_dir
        self.proc = None
        self.log = os.path.join(agent.tmp, f"{name}.log")

    def argv(self, args):
        unit = unit_capabilities()["CapabilityBoundingSet"]
        drop = [c for c in CAPS if c not in unit]
        return ["systemd-nspawn", "--quiet", "--register=no", "--keep-unit", f"--machine={self.name}",
                "-D", self.rootfs, "--read-only", "--console=pipe", "--notify-ready=yes",
                f"--network-namespace-path=/run/netns/{self.site.ns_edge}",
                "--capability=" + ",".join(unit), "--drop-capability=" + ",".join(drop),
                "--no-new-privileges=yes", "--kill-signal=SIGTERM", "--system-call-filter=bpf",
                "--resolv-conf=off", "--timezone=off", "--link-journal=no",
                "--bind=/sys/fs/bpf", f"--bind={os.path.dirname(self.agent.socket)}:/run/clovis",
                f"--bind={self.agent.state_dir}:/var/lib/clovis", f"--bind-ro={self.etc_dir}:/etc/clovis",
                "--", "/usr/sbin/clovisd", "--pin-dir", self.agent.pin_dir, *args]

    def start(self, args=("--lan", "lan0"), wait=True, timeout=20):
        notify_path = os.path.join(self.agent.tmp, f"{self.name}.notify")
        if os.path.exists(notify_path):
            os.unlink(notify_path)
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(notify_path)
        try:
            with open(self.log, "a") as logf:
                self.proc = subprocess.Popen(self.argv(args), stdin=subprocess.DEVNULL, stdout=logf,
                                             stderr=subprocess.STDOUT,
                                             env=dict(os.environ, NOTIFY_SOCKET=notify_path))
            if wait:
                self._wait_ready(notify, timeout)
        finally:
            notify.close()

    def _wait_ready(self, notify, timeout):
        # --notify-ready=yes: nspawn passes on READY=1 once clovisd (its PID 1) sent it.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"container exited with {self.proc.returncode}:\n{self.read_log()}")
            notify.settimeout(0.1)
            try:
                if b"READY=1" in notify.recv(4096):
                    return
            except socket.timeout:
                pass
        raise RuntimeError(f"container not ready within {timeout}s:\n{self.read_log()}")

    def clovisd_pid(self):
        """The host PID of the container's clovisd (found in the edge namespace)."""
        out = subprocess.run(["ip", "netns", "pids", self.site.ns_edge], capture_output=True, text=True).stdout
        for pid in out.split():
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() == "clovisd":
                        return int(pid)
            except OSError:
                continue
        raise RuntimeError("no clovisd in the edge namespace")

    def stop(self, timeout=15):
        """SIGTERM to the runtime, which passes it on (--kill-signal); returns the exit status."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def wait(self, timeout=20):
        return self.proc.wait(timeout)

    def read_log(self):
        try:
            with open(self.log) as f:
                return f.read()
        except OSError:
            return ""

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        # Left by nspawn when /run is not a tmpfs; named after this run's machine.
        shutil.rmtree(f"/run/systemd/nspawn/propagate/{self.name}", ignore_errors=True)


def cap_mask(names):
    return sum(1 << CAPS.index(c) for c in names)


def status_fields(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def setUpModule():
    privileged.require_root(("ip", "nft", "systemd-nspawn", "umoci", "dpkg-deb"))
    require_built()
    global DEB, WORK, ROOTFS_A, ROOTFS_B
    DEB = find_deb()
    WORK = tempfile.mkdtemp(prefix="clovis-container-", dir="/var/tmp")
    try:
        ROOTFS_A = build_image(DEB, os.path.join(WORK, "image-a"), "a")
    except RuntimeError as e:
        shutil.rmtree(WORK, ignore_errors=True)
        if "no base layer" in str(e) and os.environ.get("CLOVIS_REQUIRE_PRIVILEGED") != "1":
            raise unittest.SkipTest(str(e)) from e
        raise
    ROOTFS_B = None


def tearDownModule():
    shutil.rmtree(WORK, ignore_errors=True)


class ContainerTest(unittest.TestCase):
    def setUp(self):
        self.site = EdgeSite(wans=2).start()
        self.agent = Clovisd(self.site)
        self.containers = []
        self.etc_dir = os.path.join(self.agent.tmp, "etc")
        os.makedirs(self.etc_dir)
        with open(os.path.join(self.etc_dir, "wan.yaml"), "w") as f:
            f.write(MAPPING)
        os.makedirs(os.path.dirname(self.agent.socket))
        os.makedirs(self.agent.state_dir)  # bind mount sources must exist

    def tearDown(self):
        for c in self.containers:
            c.close()
        self.agent.close()  # --uninstall with the host's clovisd, pins and temp dirs removed
        self.site.close()

    def container(self, rootfs, tag):
        c = Container(self.site, self.agent, rootfs, f"{self.site.prefix}{tag}", self.etc_dir)
        self.containers.append(c)
        return c

    def links(self):
        return {l["name"]: l for l in self.agent.ctl_json("links")["links"]}

    def test_steers_as_pid1_with_the_units_capabilities_and_the_hosts_clovisctl(self):
        c = self.container(ROOTFS_A, "a")
        c.start()
        pid = c.clovisd_pid()
        st = status_fields(pid)
        self.assertEqual(st["NSpid"].split()[-1], "1")  # the container's main process
        unit = unit_capabilities()
        self.assertEqual(int(st["CapEff"], 16), cap_mask(unit["AmbientCapabilities"]))
        self.assertEqual(int(st["CapBnd"], 16), cap_mask(unit["CapabilityBoundingSet"]))
        self.assertEqual(st["NoNewPrivs"].strip(), "1")
        with open(f"/proc/{pid}/root/etc/clovis-image") as f:
            self.assertIn("image a", f.read())
        self.assertEqual(self.site.udp_flow(31000, 9001, 400).by_wan, {1: 400})
        self.assertEqual(self.site.udp_flow(31001, 9002, 400).by_wan, {0: 400})
        # The host's clovisctl, through the socket directory shared with the container.
        self.assertEqual(set(self.links()), {"primary", "broadband"})
        # CAP_NET_RAW: the ICMP probes measure the link (a raw socket).
        deadline = time.monotonic() + 5
        while not (self.links()["broadband"]["measured"] and self.links()["broadband"]["latency_ms"] > 0):
            self.assertLess(time.monotonic(), deadline, f"{self.links()}\n{c.read_log()}")
            time.sleep(0.1)
        self.assertNotIn("cannot probe", c.read_log())
        # CAP_CHOWN: the API socket belongs to the image's group clovis.
        with open(os.path.join(ROOTFS_A, "etc", "group")) as f:
            gid = next(int(line.split(":")[2]) for line in f if line.startswith("clovis:"))
        self.assertEqual(os.stat(self.agent.socket).st_gid, gid)
        flows = self.agent.ctl_json("flows")["flows"]
        self.assertIn(("broadband", 400), {(f["link"], f["packets_out"]) for f in flows if f["sport"] == 31000})

    def test_restart_and_a_newer_image_keep_and_adopt_a_running_flow(self):
        global ROOTFS_B
        if ROOTFS_B is None:
            ROOTFS_B = build_image(DEB, os.path.join(WORK, "image-b"), "b")
        a = self.container(ROOTFS_A, "a")
        a.start()
        gen = self.agent.dump()["generation"]
        result = {}
        t = threading.Thread(target=lambda: result.update(
            r=self.site.udp_flow(32000, 9001, 15000, rate_pps=2500, timeout=40)))
        t.start()
        try:
            time.sleep(0.5)
            self.assertEqual(a.stop(), 0, a.read_log())  # SIGTERM: clean stop, status 0
            self.assertTrue(os.path.isdir(os.path.join(self.agent.pin_dir, "maps")))
            time.sleep(0.5)  # no agent at all: the pinned program steers
            again = self.container(ROOTFS_A, "a2")
            again.start()  # the same image, started again
            self.assertEqual(again.stop(), 0, again.read_log())
            time.sleep(0.5)
            b = self.container(ROOTFS_B, "b")
            b.start()  # the newer image
        finally:
            t.join(60)
        r = result["r"]
        self.assertEqual((r.lost, r.by_wan), (0, {1: 15000}), r)
        with open(f"/proc/{b.clovisd_pid()}/root/etc/clovis-image") as f:
            self.assertIn("image b", f.read())
        d = self.agent.dump()
        self.assertEqual(d["generation"], gen)  # adopted, not re-applied as a new generation
        mine = [f for f in d["flows"] if f["sport"] == 32000]
        self.assertEqual([(f["link"], f["packets_out"]) for f in mine], [("broadband", 15000)])
        self.assertEqual(self.site.udp_flow(32001, 9001, 300).by_wan, {1: 300})

    def test_a_start_up_error_is_the_runtimes_exit_status(self):
        c = self.container(ROOTFS_A, "bad")
        c.start(args=(), wait=False)  # no --lan: clovisd exits 2, as under systemd
        self.assertEqual(c.wait(), 2, c.read_log())
        self.assertIn("--lan", c.read_log())


if __name__ == "__main__":
    sys.exit(privileged.main(__name__))
