#!/usr/bin/env python3
"""clovisd under exactly the capabilities of the shipped systemd unit.

The capability set is parsed from packaging/systemd/clovisd.service
(CapabilityBoundingSet=, AmbientCapabilities=), so the unit and the code
cannot drift apart again: ICMP health probes must work under it (links up,
latency measured) and still see a gateway that stops answering. Without
CAP_NET_RAW clovisd falls back to ping sockets where
net.ipv4.ping_group_range allows its group, and where neither socket opens it
reports "cannot probe" and judges the link by carrier alone instead of
taking a working link down (issue #13, item 1). What else needs privileges
runs under the same set: adopting the flow tables an ABI 1 clovisd pinned,
expiring flows by --flow-timeout, attaching to a --lan interface that
appears after the start, and following the config file (--follow-config).

    python3 tests/integration/test_unit_capabilities.py [-k PATTERN]
"""
import contextlib
import ipaddress
import json
import os
import re
import struct
import subprocess
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

# http: and dns: probes (responders in the cloud, tests/integration/probe_responders.py)
# and an SLA class over them: loss beyond 1% moves new voice flows to `first`, a
# metered link (budget: its interface's counters, STATE_DIR/budget.json).
PROBE_PORTS = {"http": 8080, "dns": 5353}
CAPS_METRICS = "127.0.0.1:9465"
FETCH = "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())"
L7_MAPPING = f"""version: 1
sla:
  voice: {{loss: 1%}}
links:
  - name: first
    interface: wan0
    gateway: 100.64.0.1
    mode: redirect
    snat: masquerade
    budget: 1GiB per month
    health:
      probes: [{{http: "http://203.0.113.10:{PROBE_PORTS['http']}/health"}}]
      interval: 100ms
      timeout: 90ms
  - name: second
    interface: wan1
    gateway: 100.64.1.1
    mode: redirect
    snat: masquerade
    health:
      probes: [{{dns: "203.0.113.10:{PROBE_PORTS['dns']}", name: example.com}}]
      interval: 100ms
      timeout: 90ms
      down: 100
policies:
  - {{name: voice, failover: [second, first], sla: voice, fallback: keep}}
rules:
  - {{name: sip, priority: 10, match: {{proto: udp, dport: 5060}}, policy: voice}}
default: {{action: bypass}}
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

    def __init__(self, site, wrapper, lan=("lan0",)):
        super().__init__(site, lan)
        self.wrapper = list(wrapper)

    def base_args(self):
        return self.wrapper + super().base_args()


# ABI 1 flow tables as an older clovisd pinned them (agentd/kernel/map_migration.hpp):
# LRU hashes of clv_flow_key (40 bytes) -> the first 88 bytes of today's
# clv_flow, and clv_nat_key (40) -> clv_flow_key (40).
ABI1_ENTRIES = 1024
ABI1_MAPS = {"clv_flows": (40, 88), "clv_nat": (40, 40)}
CLV_AF_INET, CLV_MODE_ROUTE, CLV_ACT_STEER = 4, 1, 1


def flow_key_v4(src, dst, sport, dport, proto):
    """A clv_flow_key (bpf/include/clovis/abi.h): addresses in network order,
    ports in host order as the program's parser keeps them."""
    def addr(a):
        return ipaddress.IPv4Address(a).packed + bytes(12)
    return addr(src) + addr(dst) + struct.pack("=HHBBH", sport, dport, proto, CLV_AF_INET, 0)


def flow_abi1(now_ns, pkts_out, pkts_in):
    """An ABI 1 clv_flow (88 bytes): a route-mode flow on link slot 0, seen now."""
    v = struct.pack("=QQQQQQ", now_ns, now_ns, pkts_out, pkts_out * 100, pkts_in, pkts_in * 100)
    v += struct.pack("=IIII", 0, 1, 0, 0) + bytes(16)  # rule, generation, link epoch, lan ifindex; nat_addr
    v += struct.pack("=HHBBBB", 0, 0, 0, CLV_ACT_STEER, 0, CLV_MODE_ROUTE)
    assert len(v) == ABI1_MAPS["clv_flows"][1]
    return v


def bpftool(*args):
    out = subprocess.run(["bpftool", *map(str, args)], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise RuntimeError(f"bpftool {' '.join(map(str, args))}: {out.stderr.strip()}")
    return out.stdout


def setUpModule():
    privileged.require_root(("ip", "nft", "setpriv", "bpftool"))
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

    def start(self, without=(), extra=(), lan=("lan0",), before=None, mapping=MAPPING):
        """clovisd under the unit's capabilities less `without`; before(agent)
        runs first, when the pin directory is known but nothing is in it."""
        bounding = [c for c in self.caps["CapabilityBoundingSet"] if c not in without]
        ambient = [c for c in self.caps["AmbientCapabilities"] if c not in without]
        self.agent = CappedClovisd(self.site, setpriv_argv(bounding, ambient), lan)
        if before:
            before(self.agent)
        self.agent.start(mapping, extra=extra)
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

    def flows(self, proto, sport):
        return [f for f in self.agent.ctl_json("flows")["flows"]
                if f["proto"] == proto and f["src"] == self.site.client_v4 and f["sport"] == sport]

    def wait_flows(self, what, proto, sport, pred, timeout):
        deadline = time.monotonic() + timeout
        while True:
            got = self.flows(proto, sport)
            if pred(got) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertTrue(pred(got), f"{what} within {timeout}s: {got}\n{self.agent.read_log()}")
        return got

    def test_abi1_flow_tables_are_migrated_under_the_units_capabilities(self):
        """An older clovisd's pinned flow tables (ABI 1) are renamed aside,
        copied into today's layout and their old pins removed: bpffs renames,
        map creation and the copy all under the unit's capabilities."""
        sport = 40001
        key = flow_key_v4(self.site.client_v4, self.site.server_v4, sport, 443, 6)

        def pin_abi1(agent):
            maps = os.path.join(agent.pin_dir, "maps")
            os.makedirs(maps)
            for name, (k, v) in ABI1_MAPS.items():
                bpftool("map", "create", f"{maps}/{name}", "type", "lru_hash", "key", k, "value", v,
                        "entries", ABI1_ENTRIES, "name", name)
            # Replied both ways: an assured, established connection to keep.
            bpftool("map", "update", "pinned", f"{maps}/clv_flows", "key", "hex", *(f"{b:02x}" for b in key),
                    "value", "hex", *(f"{b:02x}" for b in flow_abi1(time.monotonic_ns(), 5, 4)))

        self.start(before=pin_abi1)
        log = self.agent.read_log()
        self.assertIn("adopted the ABI 1 flow tables", log)
        self.assertIn("ABI 1 flow tables migrated", log)
        maps = os.path.join(self.agent.pin_dir, "maps")
        for name in ABI1_MAPS:
            self.assertFalse(os.path.exists(f"{maps}/{name}_v1"), f"{name}_v1 left behind:\n{log}")
        info = json.loads(bpftool("map", "show", "pinned", f"{maps}/clv_flows", "-j"))
        self.assertEqual((info["bytes_value"], info["max_entries"]), (96, ABI1_ENTRIES), info)
        (flow,) = self.flows("tcp", sport)
        self.assertEqual((flow["dst"], flow["dport"], flow["state"], flow["assured"]),
                         (self.site.server_v4, 443, "established", True), flow)

    def test_flow_timeout_expires_flows_under_the_units_capabilities(self):
        """--flow-timeout udp=1: an unreplied UDP flow is gone within a few
        sweeps (the default, 30 s, would keep it) and status counts it."""
        self.start(extra=["--flow-timeout", "udp=1,udp-stream=1"])
        def expired():
            return sum(self.agent.ctl_json("status")["flow_table"]["expired"].values())
        before = expired()
        sport = 36501
        self.site.run(self.site.ns_lan, "python3", "-c",
                      "import socket,sys; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); "
                      "s.bind(('0.0.0.0',int(sys.argv[1]))); s.sendto(b'x',(sys.argv[2],39999))",
                      str(sport), self.site.server_v4)
        self.wait_flows("the UDP flow listed", "udp", sport, lambda fs: len(fs) == 1, 2)
        t0 = time.monotonic()
        self.wait_flows("the UDP flow expired (udp=1)", "udp", sport, lambda fs: not fs, 5)
        print(f"\nexpired {time.monotonic() - t0:.1f} s after it was listed")
        self.assertGreaterEqual(expired() - before, 1, self.agent.ctl("status").stdout)

    def pinned_lan_programs(self, ifname):
        links = os.path.join(self.agent.pin_dir, "links")
        names = os.listdir(links) if os.path.isdir(links) else []
        return sorted(n.split("-", 1)[1] for n in names if n.startswith(ifname + "@"))

    def test_a_lan_interface_that_appears_is_attached_under_the_units_capabilities(self):
        """--lan lan0,lan9 with lan9 missing: clovisd starts, hears lan9 appear
        (its netlink subscription works under the unit) and attaches to it."""
        self.start(lan=("lan0", "lan9"))
        self.assertEqual(self.pinned_lan_programs("lan9"), [])
        site = self.site
        site.run(site.ns_edge, "ip", "link", "add", "lan9", "type", "veth", "peer", "name", "lan9p")
        try:
            t0 = time.monotonic()
            while self.pinned_lan_programs("lan9") != ["lan_in", "lan_out"] and time.monotonic() - t0 < 5:
                time.sleep(0.02)
            self.assertEqual(self.pinned_lan_programs("lan9"), ["lan_in", "lan_out"], self.agent.read_log())
            print(f"\nlan9 attached {(time.monotonic() - t0) * 1000:.0f} ms after it appeared")
        finally:
            site.run(site.ns_edge, "ip", "link", "del", "lan9", check=False)
        log = self.agent.read_log()
        self.assertIn("lan9", log)
        # Attached on the netlink event, not by the once-a-second polling of a failed subscription.
        self.assertNotIn("interface changes are seen by polling", log)

    def test_metrics_http_dns_probes_and_an_sla_under_the_units_capabilities(self):
        """What #16 and #17 added, under the unit: the exporter listens and
        serves, http: and dns: probes bind to their links, and an SLA moves new
        flows off a link whose loss leaves the class (fallback order rewritten
        in the kernel by the capped process)."""
        site = self.site
        ctl = {k: os.path.join(site.logdir, f"caps-{k}.ctl") for k in ("http", "dns")}
        for kind, what in (("http", "200"), ("dns", "NOERROR")):
            with open(ctl[kind], "w") as f:
                f.write(what + "\n")
            p = site.popen(site.ns_cloud, [sys.executable, os.path.join(HERE, "probe_responders.py"), kind,
                                           site.server_v4, str(PROBE_PORTS[kind]), ctl[kind]])
            self.addCleanup(site.stop, p)
        self.start(extra=["--metrics-listen", CAPS_METRICS], mapping=L7_MAPPING)
        self.wait_for("both links measured", lambda ls: all(
            ls[n]["measured"] and ls[n]["state"] == "up" and ls[n]["loss_pct"] == 0 for n in ("first", "second")), 8)
        body = site.run(site.ns_edge, sys.executable, "-c", FETCH, f"http://{CAPS_METRICS}/metrics").stdout
        self.assertIn('clovis_link_state{link="first",state="up"} 1', body)
        self.assertIn('clovis_build_info{', body)
        before = site.udp_flow(41001, 5060, 5)
        self.assertEqual(set(before.by_wan), {1}, before)  # second (dns) is the first choice
        with open(ctl["dns"], "w") as f:
            f.write("drop\n")  # second stays up (down: 100) but loses every probe: out of voice
        self.wait_for("second out of the voice class", lambda ls: ls["second"]["loss_pct"] > 1, 8)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 5:
            after = site.udp_flow(41002 + int((time.monotonic() - t0) * 10), 5060, 5)
            if set(after.by_wan) == {0}:
                break
            time.sleep(0.2)
        self.assertEqual(set(after.by_wan), {0}, f"{after}\n{self.agent.read_log()[-2000:]}")
        self.assertIn("members reordered for its SLA", self.agent.read_log())
        # The metered link is counted from its interface and the count kept
        # in the state directory, by the capped process.
        links = self.wait_for("first's budget counted", lambda ls: ls["first"]["budget"]["used_bytes"] > 0, 5)
        self.assertEqual(links["first"]["budget"]["limit_bytes"], 1 << 30)
        path = os.path.join(self.agent.state_dir, "budget.json")
        deadline = time.monotonic() + 12  # written at most every 10 s
        saved = {}
        while time.monotonic() < deadline and not saved.get("links", {}).get("first", {}).get("used"):
            time.sleep(0.5)
            with contextlib.suppress(OSError, ValueError):
                with open(path) as f:
                    saved = json.load(f)
        self.assertGreater(saved.get("links", {}).get("first", {}).get("used", 0), 0, saved)

    def test_a_followed_config_file_is_applied_under_the_units_capabilities(self):
        """--follow-config: inotify and the apply it starts need nothing the
        unit does not give; a change (written and renamed) runs as generation 2."""
        self.start(extra=["--follow-config"])
        self.agent.write_mapping(MAPPING + "# changed\n")
        deadline = time.monotonic() + 5
        status = None
        while time.monotonic() < deadline:
            status = self.agent.ctl_json("status")
            if status["generation"] == 2:
                break
            time.sleep(0.05)
        self.assertEqual(status["generation"], 2, self.agent.read_log())
        self.assertEqual(status["config_file"]["result"], "applied")
        self.assertTrue(status["config_file"]["in_effect"])


if __name__ == "__main__":
    sys.exit(privileged.main(__name__))
