"""clovisd in its container image (packaging/container/build.sh, docs/CONTAINER.md) on
the edge namespace of a site, under two runtimes (container_runtime.py): systemd-nspawn
running the image's unpacked OCI bundle root, and podman (with runc) running the OCI image
itself. Both give it the capabilities of packaging/systemd/clovisd.service and no others,
bpffs from the host, /run/clovis and /var/lib/clovis bound from host directories (so the
host's clovisctl works), /etc/clovis read-only.

Under each runtime it proves that clovisd is the container's PID 1 with exactly those
capabilities, that it steers and probes, that stopping the container stops it with status
0 and leaves the steering (pins), that the same image started again and then a newer image
adopt a flow that ran through both stops without loss, and that a start-up error is the
container's exit status. "Newer image" here is a second image built from the same .deb with
another version stamp: a different image (its own digest and /etc/clovis-image), the same
clovisd binary.

The .deb: CLOVIS_DEB, else the newest clovis_*.deb in CLOVIS_BUILD_DIR (cpack makes it
there when it is missing or older than clovisd). The base layer must be cached
(`packaging/container/build.sh base DEB`, run by scripts/test.sh): it needs the Debian
mirror, which this test never uses.

    python3 tests/integration/test_container.py [-k PATTERN]
"""
import glob
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from clovis_site import BUILD, CLOVISD, REPO, Clovisd, require_built  # noqa: E402
from container_runtime import Image, NspawnContainer, PodmanContainer, cap_mask  # noqa: E402
from edgesite import EdgeSite  # noqa: E402
from test_unit_capabilities import unit_capabilities  # noqa: E402
import privileged  # noqa: E402

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


def status_fields(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def setUpModule():
    privileged.require_root(("ip", "nft", "systemd-nspawn", "podman", "runc", "umoci", "dpkg-deb"))
    require_built()
    global DEB, WORK, IMAGE_A, IMAGE_B
    DEB = find_deb()
    # Hex only: podman names an image pulled from an OCI layout after the layout's path,
    # and mkdtemp's names may hold "__" or end in "_", which image references refuse
    # (seen: "invalid reference format" in about one run of three).
    WORK = os.path.join("/var/tmp", f"clovis-container-{secrets.token_hex(6)}")
    os.makedirs(WORK, mode=0o700)
    try:
        IMAGE_A = Image(DEB, os.path.join(WORK, "image-a"), "a")
    except RuntimeError as e:
        shutil.rmtree(WORK, ignore_errors=True)
        if "no base layer" in str(e) and os.environ.get("CLOVIS_REQUIRE_PRIVILEGED") != "1":
            raise unittest.SkipTest(str(e)) from e
        raise
    IMAGE_B = None


def tearDownModule():
    for image in (IMAGE_A, IMAGE_B):
        if image:
            image.close()
    shutil.rmtree(WORK, ignore_errors=True)


class ContainerChecks:
    """The checks; each runtime's TestCase below names its Container class."""
    RUNTIME = None

    def setUp(self):
        # Cleanups run last-in first-out: containers, then clovisd --uninstall with the
        # host's binary (pins and temp dirs removed), then the site.
        self.site = EdgeSite(wans=2).start()
        self.addCleanup(self.site.close)
        self.agent = Clovisd(self.site)
        self.addCleanup(self.agent.close)
        self.etc_dir = os.path.join(self.agent.tmp, "etc")
        os.makedirs(self.etc_dir)
        with open(os.path.join(self.etc_dir, "wan.yaml"), "w") as f:
            f.write(MAPPING)
        os.makedirs(os.path.dirname(self.agent.socket))
        os.makedirs(self.agent.state_dir)  # bind mount sources must exist

    def container(self, image, tag, **kw):
        c = self.RUNTIME(self.site, self.agent, image, f"{self.site.prefix}{tag}", self.etc_dir, **kw)
        self.addCleanup(c.close)
        return c

    def links(self):
        return {l["name"]: l for l in self.agent.ctl_json("links")["links"]}

    def test_steers_as_pid1_with_the_units_capabilities_and_the_hosts_clovisctl(self):
        c = self.container(IMAGE_A, "a")
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
        with open(os.path.join(IMAGE_A.rootfs, "etc", "group")) as f:
            gid = next(int(line.split(":")[2]) for line in f if line.startswith("clovis:"))
        self.assertEqual(os.stat(self.agent.socket).st_gid, gid)
        flows = self.agent.ctl_json("flows")["flows"]
        self.assertIn(("broadband", 400), {(f["link"], f["packets_out"]) for f in flows if f["sport"] == 31000})

    def test_restart_and_a_newer_image_keep_and_adopt_a_running_flow(self):
        global IMAGE_B
        if IMAGE_B is None:
            IMAGE_B = Image(DEB, os.path.join(WORK, "image-b"), "b")
        a = self.container(IMAGE_A, "a")
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
            again = self.container(IMAGE_A, "a2")
            again.start()  # the same image, started again
            self.assertEqual(again.stop(), 0, again.read_log())
            time.sleep(0.5)
            b = self.container(IMAGE_B, "b")
            b.start()  # the newer image
            running = t.is_alive()  # b came up while the flow was still sending
        finally:
            t.join(60)
        self.assertTrue(running, "the flow ended before the newer image was up: lengthen it")
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
        c = self.container(IMAGE_A, "bad")
        c.start(args=(), wait=False)  # no --lan: clovisd exits 2, as under systemd
        self.assertEqual(c.wait(), 2, c.read_log())
        self.assertIn("--lan", c.read_log())

    def test_the_daemonsets_start_script_runs_clovisd_with_the_nodes_keys(self):
        """packaging/kubernetes/daemonset.yaml's command, run in the image as the kubelet
        would: the node's own keys of the ConfigMap win over the shared ones, and the
        image's shell (busybox, nothing else linked) runs the script."""
        with open(os.path.join(self.etc_dir, "lan"), "w") as f:
            f.write("lan9\n")  # the shared key: an interface this node does not have
        with open(os.path.join(self.etc_dir, "edge-7.lan"), "w") as f:
            f.write("lan0\n")
        with open(os.path.join(self.etc_dir, "edge-7.wan.yaml"), "w") as f:
            f.write(MAPPING.replace("dport: 9001", "dport: 9007"))
        c = self.container(IMAGE_A, "k8s", entry=daemonset_command(),
                           env={"NODE_NAME": "edge-7", "CLOVIS_CONFIG_DIR": "/etc/clovis"})
        c.start(args=())
        self.assertIn("clovisd-start: node edge-7: LAN lan0, mapping /etc/clovis/edge-7.wan.yaml", c.read_log())
        self.assertEqual(self.site.udp_flow(33000, 9007, 200).by_wan, {1: 200})  # edge-7's mapping


def daemonset_command():
    """The clovisd container's command in packaging/kubernetes/daemonset.yaml: a list of
    plain items and one literal block (the script), read without a YAML library."""
    path = os.path.join(REPO, "packaging", "kubernetes", "daemonset.yaml")
    lines = open(path).read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "command:")
    item_indent = len(lines[start + 1]) - len(lines[start + 1].lstrip())
    out, i = [], start + 1
    while i < len(lines) and lines[i].startswith(" " * item_indent + "- "):
        value = lines[i].strip()[2:]
        i += 1
        if value == "|":
            block = []
            while i < len(lines) and (not lines[i].strip() or
                                      len(lines[i]) - len(lines[i].lstrip()) > item_indent):
                block.append(lines[i])
                i += 1
            indent = min(len(b) - len(b.lstrip()) for b in block if b.strip())
            value = "\n".join(b[indent:] for b in block).rstrip("\n") + "\n"
        out.append(value)
    if len(out) < 3 or out[0] != "/bin/sh":
        raise RuntimeError(f"{path}: the clovisd container's command is not /bin/sh -c SCRIPT: {out[:2]}")
    return out


class Nspawn(ContainerChecks, unittest.TestCase):
    RUNTIME = NspawnContainer


class Podman(ContainerChecks, unittest.TestCase):
    RUNTIME = PodmanContainer


if __name__ == "__main__":
    sys.exit(privileged.main(__name__))
