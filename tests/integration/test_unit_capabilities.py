#!/usr/bin/env python3
"""clovisd under exactly the capabilities of the shipped systemd unit.

The capability set is parsed from packaging/systemd/clovisd.service
(CapabilityBoundingSet=, AmbientCapabilities=), so the unit and the code
cannot drift apart again: ICMP health probes must work under it (links up,
latency measured) and still see a gateway that stops answering. Without
CAP_NET_RAW clovisd falls back to ping sockets where
net.ipv4.ping_group_range allows its group, and where neither socket opens it
reports "cannot probe" and judges the link by carrier alone instead of
taking a working link down (issue #13, item 1).

    python3 tests/integration/test_unit_capabilities.py [-k PATTERN]
"""
import os
import re
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from clovis_site import REPO, Clovisd, require_built  # noqa: E402
from edgesite import EdgeSite  # noqa: E402
import privileged  # noqa: E402

UNIT = os.path.join(REPO, "packaging", "systemd", "clovisd.service")

MAPPING = """version: 1
links:
  - name: first
    interface: wan0
    gateway: [100.64.0.1, "2001:db8:100::1"]
    mode: route
    health:
      probes: [{icmp: 100.64.0.1}, {icmp: "2001:db8:100::1"}]
      interval: 200ms
      timeout: 150ms
      down: 3
      up: 2
      reliability: 2
  - name: second
    interface: wan1
    gateway: 100.64.1.1
    mode: redirect
    snat: masquerade
    health:
      probes: [{icmp: 100.64.1.1}]
      interval: 200ms
      timeout: 150ms
      down: 3
      up: 2
policies:
  - {name: fo, failover: [first, second]}
rules:
  - {name: all, priority: 10, match: {proto: udp}, policy: fo}
default: {action: bypass}
"""


def unit_capabilities(path=UNIT):
    """{directive: [cap, ...]} for CapabilityBoundingSet= and AmbientCapabilities=
    of the [Service] section, with systemd's rules: assignments accumulate, an
    empty one resets. '~' (a deny list) is refused rather than guessed at."""
    caps = {"CapabilityBoundingSet": None, "AmbientCapabilities": None}
    section = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line
                continue
            key, _, value = line.partition("=")
            if section != "[Service]" or key.strip() not in caps:
                continue
            value = value.strip()
            if value.startswith("~"):
                raise ValueError(f"{path}: {key}=~... (a deny list) is not supported by this test")
            if not value:
                caps[key.strip()] = []
                continue
            caps[key.strip()] = (caps[key.strip()] or []) + value.split()
    for key, value in caps.items():
        if value is None:
            raise ValueError(f"{path}: no {key}= in [Service]")
        for c in value:
            if not re.fullmatch(r"CAP_[A-Z_]+", c):
                raise ValueError(f"{path}: {key}: {c!r} is not a capability name")
    return caps


def setpriv_argv(bounding, ambient):
    """setpriv running a command as this root process would run under the unit:
    bounding set limited (root's permitted and effective sets follow it on
    exec), the ambient capabilities raised."""
    def names(caps):
        return ",".join("+" + c[len("CAP_"):].lower() for c in caps)
    argv = ["setpriv", "--bounding-set=-all" + ("," + names(bounding) if bounding else "")]
    argv += ["--inh-caps=-all" + ("," + names(ambient) if ambient else "")]
    if ambient:
        argv += ["--ambient-caps=-all," + names(ambient)]
    return argv


CAP_BITS = {"CAP_CHOWN": 0, "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_SYS_ADMIN": 21, "CAP_PERFMON": 38,
            "CAP_BPF": 39}


def effective_caps(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    raise RuntimeError(f"no CapEff for pid {pid}")


class CappedClovisd(Clovisd):
    """Every clovisd run of this site (start, --dump, --uninstall) under setpriv."""

    def __init__(self, site, wrapper):
        super().__init__(site)
        self.wrapper = list(wrapper)

    def base_args(self):
        return self.wrapper + super().base_args()


def setUpModule():
    privileged.require_root(("ip", "nft", "setpriv"))
    require_built()


class UnitCapabilities(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.caps = unit_capabilities()
        cls.site = EdgeSite(wans=2, ipv6=True).start()

    @classmethod
    def tearDownClass(cls):
        cls.site.close()

    def tearDown(self):
        self.site.run(self.site.ns_edge, "sysctl", "-qw", "net.ipv4.ping_group_range=1 0")
        if getattr(self, "agent", None):
            self.agent.close()

    def start(self, without=()):
        bounding = [c for c in self.caps["CapabilityBoundingSet"] if c not in without]
        ambient = [c for c in self.caps["AmbientCapabilities"] if c not in without]
        self.agent = CappedClovisd(self.site, setpriv_argv(bounding, ambient))
        self.agent.start(MAPPING)
        want = sum(1 << CAP_BITS[c] for c in bounding if c in CAP_BITS)
        unknown = [c for c in bounding if c not in CAP_BITS]
        self.assertEqual(unknown, [], "add the bit of each capability the unit names to CAP_BITS")
        # The test is only worth anything if clovisd really runs with exactly that set.
        self.assertEqual(effective_caps(self.agent.proc.pid), want)

    def links(self):
        return {l["name"]: l for l in self.agent.ctl_json("links")["links"]}

    def wait_for(self, what, pred, timeout):
        deadline = time.monotonic() + timeout
        links = None
        while time.monotonic() < deadline:
            links = self.links()
            if pred(links):
                return links
            time.sleep(0.1)
        self.fail(f"{what} within {timeout}s: {links}\n{self.agent.read_log()}")

    def check_probing(self):
        """Both links up with measured latency, and a gateway that stops
        answering takes its link down: the probes are real."""
        links = self.wait_for("links measured", lambda ls: all(
            ls[n]["measured"] and ls[n]["state"] == "up" and ls[n]["latency_ms"] > 0 for n in ("first", "second")),
            5)
        print(f"\nlatency first {links['first']['latency_ms']:.3f} ms, second {links['second']['latency_ms']:.3f} ms")
        self.assertEqual(links["first"]["loss_pct"], 0)
        with self.site.drop_on_wan(1, None):
            links = self.wait_for("second down", lambda ls: ls["second"]["state"] == "down", 5)
            self.assertIn("probe rounds failed", links["second"]["reason"])
            self.assertEqual(links["first"]["state"], "up")
        self.wait_for("second back up", lambda ls: ls["second"]["state"] == "up", 5)

    def test_icmp_probes_work_under_the_units_capabilities(self):
        self.assertIn("CAP_NET_RAW", self.caps["CapabilityBoundingSet"],
                      "icmp probes open raw sockets; the unit must grant CAP_NET_RAW")
        self.start()
        self.check_probing()
        self.assertNotIn("cannot probe", self.agent.read_log())

    def test_without_net_raw_ping_sockets_where_the_group_may(self):
        self.site.run(self.site.ns_edge, "sysctl", "-qw", "net.ipv4.ping_group_range=0 0")
        self.start(without=("CAP_NET_RAW",))
        self.check_probing()
        self.assertIn("probing by a ping socket instead", self.agent.read_log())

    def test_without_any_icmp_socket_the_link_is_judged_by_carrier(self):
        self.start(without=("CAP_NET_RAW",))  # and ping_group_range "1 0": no group may
        time.sleep(1.5)  # 7 probe rounds: more than down (3) would need
        links = self.links()
        for name in ("first", "second"):
            self.assertEqual(links[name]["state"], "up", links[name])
            self.assertIn("cannot probe", links[name]["reason"])
            self.assertIn("CAP_NET_RAW", links[name]["reason"])
            self.assertEqual(links[name]["loss_pct"], 0)
            self.assertEqual(links[name]["transitions"], 0)
        log = self.agent.read_log()
        self.assertIn("link second: cannot probe by ICMP echo on wan1", log)
        self.assertEqual(log.count("link second: cannot probe by ICMP echo"), 1, "warned once, not every round")
        # The carrier still counts.
        self.site.link_down(1)
        self.wait_for("second down on carrier loss", lambda ls: ls["second"]["state"] == "down", 5)
        self.site.link_up(1)
        self.wait_for("second up on carrier", lambda ls: ls["second"]["state"] == "up", 5)


if __name__ == "__main__":
    sys.exit(privileged.main(__name__))
