#!/usr/bin/env python3
"""Forwarding duties clovis takes over from the kernel in redirect mode, with
real traffic: a WAN link whose MTU is smaller than the LAN's (both ends of the
hop, offloads off, as on PPPoE, LTE or a tunnel) answers too-big packets as the
kernel's forwarding would, so a client learns the path MTU and TCP gets
through to a server that advertises MSS 1460; fragmented datagrams cross the
NAT link both ways; and a destination the operator blackholed is not steered.

    python3 tests/integration/test_forwarding.py [-k PATTERN]
"""
import errno
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from clovis_site import Clovisd, require_built  # noqa: E402
from edgesite import EdgeSite  # noqa: E402
import privileged  # noqa: E402

# wan1 ("thin") is the redirect link with the smaller MTU; the main table's
# default route leaves by wan0 with 1,500, so a packet handed to the stack
# would leave there, untranslated: the answer must come from clovis.
MAPPING = """version: 1
links:
  - {name: main, interface: wan0, gateway: [100.64.0.1, "2001:db8:100::1"], mode: route}
  - {name: thin, interface: wan1, gateway: [100.64.1.1, "2001:db8:101::1"], mode: redirect,
     snat: masquerade}
rules:
  - {name: thin, priority: 10, match: {proto: [tcp, udp], dport: 8001-9001}, link: thin}
default: {link: main}
"""

THIN_MTU = 1400

# A connected UDP socket that forbids fragmentation and asks for ICMP errors;
# sends one datagram of argv[3] bytes and prints what the kernel learnt.
PMTU_CLIENT = r"""
import socket, struct, sys
dst, port, size, sport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
v6 = ":" in dst
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
if v6:
    s.setsockopt(socket.IPPROTO_IPV6, 25, 1)  # IPV6_RECVERR
    s.setsockopt(socket.IPPROTO_IPV6, 23, 2)  # IPV6_MTU_DISCOVER = IPV6_PMTUDISC_DO
else:
    s.setsockopt(socket.IPPROTO_IP, 11, 1)    # IP_RECVERR
    s.setsockopt(socket.IPPROTO_IP, 10, 2)    # IP_MTU_DISCOVER = IP_PMTUDISC_DO
s.bind(("::" if v6 else "0.0.0.0", sport))
s.connect((dst, port))
s.settimeout(3)
s.send(b"x" * (size - (48 if v6 else 28)))
try:
    s.recv(100)
    print("answer")
except socket.timeout:
    print("timeout")
except OSError as e:
    _, anc, _, _ = s.recvmsg(100, 512, socket.MSG_ERRQUEUE)
    ee = [d for lvl, typ, d in anc if typ in (11, 25)][0]
    _, origin, icmp_type, icmp_code, _, info = struct.unpack_from("=IBBBBI", ee)
    print(e.errno, icmp_type, icmp_code, info)
"""


def setUpModule():
    privileged.require_root(("ip", "nft", "ethtool"))
    require_built()


class Forwarding(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.site = EdgeSite(wans=2, ipv6=True).start()  # offloads off everywhere
        s = cls.site
        # The thin hop: the smaller MTU on both of its ends (a veth checks the receiver's).
        s.run(s.ns_edge, "ip", "link", "set", s.wan_ifname(1), "mtu", str(THIN_MTU))
        s.run(s.ns_wan[1], "ip", "link", "set", s.ROUTER_EDGE_IF, "mtu", str(THIN_MTU))
        cls.agent = Clovisd(s)
        try:
            cls.agent.start(MAPPING)
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.agent.close()
        cls.site.close()

    def tearDown(self):
        # The client's learnt path MTUs, so that every test starts from 1,500.
        self.site.run(self.site.ns_lan, "ip", "route", "flush", "cache")
        self.site.run(self.site.ns_lan, "ip", "-6", "route", "flush", "cache")

    def pmtu_client(self, dst, size, sport):
        return self.site.run(self.site.ns_lan, "python3", "-c", PMTU_CLIENT, dst, "9001", str(size), str(sport),
                             timeout=15).stdout.split()

    def test_a_df_datagram_too_big_for_the_link_gets_fragmentation_needed(self):
        """1,500 bytes with DF over the 1,400-byte redirect link: the client's
        socket gets EMSGSIZE from ICMP fragmentation needed (type 3 code 4)
        carrying 1,400, as behind the kernel's forwarding; IPv6 the same with
        packet too big (type 2)."""
        before = self.agent.dump()["counters"]["too_big"]
        self.assertEqual(self.pmtu_client(self.site.server_v4, 1500, 35700),
                         [str(errno.EMSGSIZE), "3", "4", str(THIN_MTU)])
        self.assertEqual(self.pmtu_client(self.site.server_v6, 1500, 35701),
                         [str(errno.EMSGSIZE), "2", "0", str(THIN_MTU)])
        self.assertEqual(self.agent.dump()["counters"]["too_big"], before + 2)

    def test_tcp_gets_through_the_thin_link(self):
        """The server sits behind 1,500-byte links and advertises MSS 1460; the
        client's full-size segments are answered with the link's MTU, the
        client lowers its path MTU and the upload completes, both families."""
        for dst, sport in ((self.site.server_v4, 35710), (self.site.server_v6, 35711)):
            with self.subTest(dst=dst):
                t = self.site.tcp_transfer(8001, 300_000, sport=sport, dst=dst, timeout=10)
                self.assertEqual(t.bytes_received, 300_000, t)
                self.assertEqual(t.wan, 1)

    def test_fragmented_datagrams_through_the_nat_link_both_ways(self):
        """2,000-byte datagrams: the client fragments them (at the 1,400 it has
        learnt), the later fragments must follow the first one out of the thin
        link, translated, and the server's fragmented echoes must come back
        translated to the client. Before: they left by the main route,
        untranslated, and no datagram was ever reassembled."""
        s = self.site
        for dst, sport in ((s.server_v4, 35730), (s.server_v6, 35731)):
            with self.subTest(dst=dst):
                self.assertEqual(self.pmtu_client(dst, 1500, sport + 10)[0], str(errno.EMSGSIZE))  # learn 1,400
                # And the server: an IPv6 router never fragments, wan1's answers its
                # first 1,500-byte fragment with packet too big, and that echo is lost.
                s.udp_flow(sport + 20, 9001, 1, size=2000, dst=dst, echo=True, settle=0.3)
                before = self.agent.dump()["counters"]
                r = s.udp_flow(sport, 9001, 20, size=2000, dst=dst, echo=True, rate_pps=200)
                self.assertEqual((r.received, r.by_wan, r.echoed), (20, {1: 20}, 20), r)
                after = self.agent.dump()["counters"]
                self.assertGreaterEqual(after["fragment"] - before["fragment"], 20)
                self.assertEqual(after["frag_unknown"], before["frag_unknown"])

    def test_a_blackholed_destination_is_not_steered(self):
        """An operator's blackhole route wins: the flow is left to the host,
        whose route drops it, instead of leaving by a link."""
        s = self.site
        s.run(s.ns_edge, "ip", "route", "add", "blackhole", f"{s.server_v4}/32")
        try:
            r = s.udp_flow(35720, 9001, 20)
        finally:
            s.run(s.ns_edge, "ip", "route", "del", "blackhole", f"{s.server_v4}/32")
        self.assertEqual(r.by_wan, {})
        f = [f for f in self.agent.dump()["flows"] if f["sport"] == 35720][0]
        self.assertIn("local", f["flags"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
