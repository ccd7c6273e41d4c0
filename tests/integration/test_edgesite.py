#!/usr/bin/env python3
"""Self-test of edgesite.py with plain kernel forwarding (no clovis): the site is
reachable end to end, counters see real packets, links go down and up, rules drop,
and nothing outlives a run. Needs root; skips otherwise, unless
CLOVIS_REQUIRE_PRIVILEGED=1, which makes that a failure.

    python3 tests/integration/test_edgesite.py [-k PATTERN]
"""
import os
import select
import signal
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import edgesite  # noqa: E402
import privileged  # noqa: E402
from edgesite import EdgeSite, SiteError  # noqa: E402

# Packets a quiet WAN may still send during a flow (ARP only: IPv6 is off).
NOISE = 5


def setUpModule():
    privileged.require_root(("ip", "nft", "ping"))


def netns_with_prefix(prefix):
    return [n for n in edgesite._netns_list() if n.startswith(prefix)]


def child_site(extra=""):
    """A separate Python process that builds a 2-WAN site, prints its prefix, then waits."""
    # Default dispositions, even when this test was started with signals ignored.
    code = ("import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "signal.signal(signal.SIGTERM, signal.SIG_DFL); "
            f"import sys, time; sys.path.insert(0, {HERE!r}); import edgesite; "
            "s = edgesite.EdgeSite(wans=2).start(); " + extra +
            "print(s.prefix, flush=True); time.sleep(30)")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if not select.select([p.stdout], [], [], 15)[0]:
        p.kill()
        raise AssertionError("child site did not start within 15 s")
    prefix = p.stdout.readline().decode().strip()
    if not prefix:
        p.wait(5)
        raise AssertionError(f"child site failed: {p.stderr.read().decode()}")
    return p, prefix


class SiteTest(unittest.TestCase):
    """One IPv4 site with NAT on the WAN routers (the defaults), shared by the tests."""

    @classmethod
    def setUpClass(cls):
        cls.site = EdgeSite(wans=3).start()

    @classmethod
    def tearDownClass(cls):
        cls.site.close()

    def test_names_addresses(self):
        s = self.site
        self.assertEqual(sorted(s.namespaces), sorted(netns_with_prefix(s.prefix)))
        out = s.run(s.ns_edge, "ip", "-br", "addr").stdout
        for i in range(3):
            self.assertIn(s.wan_address(i) + "/24", out)
        self.assertIn(s.server_v4, s.run(s.ns_cloud, "ip", "-br", "addr", "show", "lo").stdout)
        self.assertEqual(s.run(s.ns_edge, "cat", "/proc/sys/net/ipv6/conf/all/disable_ipv6").stdout.strip(), "1")

    def test_ping_server_and_gateways(self):
        s = self.site
        self.assertTrue(s.ping(s.server_v4), "lan -> server")
        for i in range(s.wans):
            self.assertTrue(s.ping(s.wan_gateway(i), ns=s.ns_edge, count=1), f"edge -> wan{i} gateway")

    def test_udp_flow_leaves_by_default_wan(self):
        s = self.site
        lan_before = s.counters(s.ns_lan, "lan0")
        with s.measure() as m:
            r = s.udp_flow(40000, 5001, 1000, size=100)
        self.assertEqual((r.sent, r.received, r.lost), (1000, 1000, 0))
        self.assertEqual(r.by_wan, {0: 1000})
        self.assertEqual(r.bytes_received, 100_000)
        self.assertGreaterEqual(m.tx_packets[0], 1000)
        self.assertLessEqual(m.tx_packets[1], NOISE)
        self.assertLessEqual(m.tx_packets[2], NOISE)
        # wire bytes: 100 payload + 8 UDP + 20 IP + 14 Ethernet
        self.assertGreaterEqual(m.delta[0]["tx_bytes"], 1000 * 142)
        self.assertGreaterEqual((s.counters(s.ns_lan, "lan0") - lan_before).tx_packets, 1000)

    def test_wan_tx(self):
        s = self.site
        before = s.wan_tx(0)
        s.udp_flow(40001, 5001, 50)
        delta = s.wan_tx(0) - before
        self.assertEqual(set(delta), {"tx_packets", "tx_bytes"})
        self.assertGreaterEqual(delta.tx_packets, 50)

    def test_udp_echo_to_any_internet_address(self):
        r = self.site.udp_flow(40002, 5002, 300, dst="198.51.100.7", echo=True, rate_pps=20000)
        self.assertEqual((r.received, r.echoed), (300, 300))

    def test_default_route_decides_the_wan(self):
        s = self.site
        try:
            s.set_default_wan(2)
            with s.measure() as m:
                r = s.udp_flow(40003, 5003, 200, echo=True)
            self.assertEqual(r.by_wan, {2: 200})
            self.assertEqual(r.echoed, 200)
            self.assertGreaterEqual(m.tx_packets[2], 200)
            self.assertGreaterEqual(m.rx_packets[2], 200, "NAT: replies come back by the WAN they left by")
            self.assertLessEqual(m.tx_packets[0], NOISE)
        finally:
            s.set_default_wan(0)

    def test_tcp_transfer(self):
        s = self.site
        with s.measure() as m:
            up = s.tcp_transfer(5201, 4 << 20)
        self.assertEqual((up.bytes_sent, up.bytes_received), (4 << 20, 4 << 20))
        self.assertEqual((up.peer, up.wan), (s.egress_address(0), 0))
        self.assertGreaterEqual(m.tx_packets[0], 1)
        down = s.tcp_transfer(5202, 2 << 20, sport=41000, download=True)
        self.assertEqual(down.bytes_received, 2 << 20)

    def test_counters_count_wire_packets(self):
        if not edgesite.shutil.which("ethtool"):
            msg = "ethtool missing: offloads stay on (scripts/bootstrap.sh installs it)"
            if os.environ.get("CLOVIS_REQUIRE_PRIVILEGED") == "1":
                self.fail(msg)
            self.skipTest(msg)
        s = self.site
        with s.measure() as m:
            s.tcp_transfer(5203, 4 << 20)
        # With TSO/GSO on, a 64 KiB skb would count once.
        self.assertGreaterEqual(m.tx_packets[0], (4 << 20) // 1500)

    def test_link_down_up(self):
        s = self.site
        try:
            s.link_down(0)
            st = s.link_state(0)
            self.assertFalse(st["carrier"], st)
            self.assertNotEqual(st["operstate"], "UP", st)
            self.assertTrue(st["up"], "the edge's end stays administratively up")
            self.assertFalse(s.ping(count=1, timeout=1))
        finally:
            s.link_up(0)
        st = s.link_state(0)
        self.assertTrue(st["carrier"] and st["operstate"] == "UP", st)
        self.assertTrue(s.ping(), "traffic flows again after link_up")

    def test_drop_on_wan(self):
        s = self.site
        with s.drop_on_wan(0, "icmp") as rule:
            self.assertFalse(s.ping(count=2, timeout=1))
            self.assertGreater(rule.packets(), 0)
        self.assertTrue(s.ping())
        with s.drop_on_wan(0, "udp", dport=5004, direction="out"):
            self.assertEqual(s.udp_flow(40004, 5004, 100, settle=0.3).received, 0)
            self.assertEqual(s.udp_flow(40004, 5005, 100).received, 100)
        half = s.drop_on_wan(0, "udp", probability=0.5)
        try:
            r = s.udp_flow(40005, 5006, 1000, settle=0.3)
            self.assertTrue(300 < r.received < 700, r)
        finally:
            half.remove()

    def test_popen_and_run(self):
        s = self.site
        p = s.popen(s.ns_cloud, ["sh", "-c", "ip -br link; sleep 30"])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and "c2" not in open(p.log_path).read():
            time.sleep(0.02)
        self.assertIn("c2", open(p.log_path).read())
        s.stop(p)
        self.assertIsNotNone(p.poll())
        with self.assertRaises(SiteError) as ctx:
            s.run(s.ns_lan, "ip", "link", "show", "nosuchdev")
        self.assertIn("nosuchdev", str(ctx.exception))
        self.assertNotEqual(s.run(s.ns_lan, "false", check=False).returncode, 0)


class Ipv6NoNatTest(unittest.TestCase):
    """IPv6 on, WAN routers without NAT: the cloud returns each flow by the WAN it came in by."""

    @classmethod
    def setUpClass(cls):
        cls.site = EdgeSite(wans=2, ipv6=True, wan_nat=False).start()

    @classmethod
    def tearDownClass(cls):
        cls.site.close()

    def test_ping6(self):
        self.assertTrue(self.site.ping(self.site.server_v6))

    def test_return_path_follows_each_wan(self):
        s = self.site
        try:
            for i in range(s.wans):
                s.set_default_wan(i)
                for dst in (s.server_v4, s.server_v6):
                    with s.measure() as m:
                        r = s.udp_flow(40010 + i, 5010, 200, dst=dst, echo=True)
                    self.assertEqual((r.by_wan, r.echoed), ({i: 200}, 200), (i, dst))
                    self.assertGreaterEqual(m.rx_packets[i], 200, (i, dst))
                    self.assertLessEqual(m.rx_packets[1 - i], NOISE, (i, dst))
        finally:
            s.set_default_wan(0)

    def test_tcp_v6_sees_client_address(self):
        r = self.site.tcp_transfer(5210, 1 << 20, dst=self.site.server_v6)
        self.assertEqual((r.bytes_received, r.peer, r.wan), (1 << 20, self.site.client_v6, None))


class LifecycleTest(unittest.TestCase):
    def test_close_removes_everything(self):
        with EdgeSite(wans=2) as s:
            prefix = s.prefix
            tracked = s.popen(s.ns_edge, ["sleep", "60"])
            # Started behind the site's back: still ended, or it would pin the namespace.
            stray = subprocess.Popen(s.ns_argv(s.ns_cloud) + ["sleep", "60"])
            lock = s._lock_path()
            self.assertTrue(os.path.exists(lock))
        self.assertEqual(netns_with_prefix(prefix), [])
        self.assertIsNotNone(tracked.poll())
        self.assertIsNotNone(stray.wait(5))
        self.assertFalse(os.path.exists(lock))

    def test_close_after_failure_in_block(self):
        with self.assertRaises(ZeroDivisionError):
            with EdgeSite(wans=2) as s:
                prefix = s.prefix
                1 / 0
        self.assertEqual(netns_with_prefix(prefix), [])

    def test_leftovers_of_same_prefix_removed(self):
        prefix = f"clvt{os.getpid() % 100000}-"
        subprocess.run(["ip", "netns", "add", prefix + "edge"], check=True)
        subprocess.run(["ip", "netns", "add", prefix + "wan7"], check=True)
        with EdgeSite(wans=2, prefix=prefix) as s:
            self.assertNotIn(prefix + "wan7", edgesite._netns_list())
            self.assertTrue(s.ping())
        self.assertEqual(netns_with_prefix(prefix), [])

    def test_live_prefix_refused(self):
        with EdgeSite(wans=2) as a:
            with self.assertRaises(SiteError):
                EdgeSite(wans=2, prefix=a.prefix).start()
            self.assertTrue(a.ping(), "the refused second start left the first site alone")

    def test_sigterm_cleans_up(self):
        p, prefix = child_site()
        self.assertEqual(len(netns_with_prefix(prefix)), 5)
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(15), -signal.SIGTERM)
        self.assertEqual(netns_with_prefix(prefix), [])

    def test_sigint_cleans_up(self):
        p, prefix = child_site()
        p.send_signal(signal.SIGINT)
        self.assertNotEqual(p.wait(15), 0)
        self.assertIn(b"KeyboardInterrupt", p.stderr.read())
        self.assertEqual(netns_with_prefix(prefix), [])

    def test_crashed_run_reaped(self):
        p, prefix = child_site()
        p.kill()  # SIGKILL: no chance to clean up
        p.wait(5)
        self.assertTrue(os.path.exists(os.path.join(edgesite.STATE_DIR, prefix + ".lock")))
        edgesite.reap_stale()  # (a parallel run starting now may reap it first: also fine)
        self.assertEqual(netns_with_prefix(prefix), [])
        self.assertFalse(os.path.exists(os.path.join(edgesite.STATE_DIR, prefix + ".lock")))


if __name__ == "__main__":
    sys.exit(privileged.main(__name__))
