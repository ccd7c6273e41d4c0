#!/usr/bin/env python3
"""The data path with real traffic: a throwaway edge site of namespaces, the
real clovisd on it, UDP and TCP flows that must leave by the WAN the mapping
names (route and redirect mode, with and without clovis's own NAT), return
traffic, counters that match the interfaces, atomic re-apply under traffic,
and steering that survives the agent being killed.

    python3 tests/integration/test_datapath.py [-k PATTERN]
"""
import os
import signal
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from clovis_site import CLOVISCTL, Clovisd, require_built  # noqa: E402
from edgesite import EdgeSite  # noqa: E402
import privileged  # noqa: E402

NOISE = 5  # ARP a WAN may send during a test

MAPPING = """version: 1
links:
  - {name: primary, interface: wan0, gateway: 100.64.0.1, mode: route}
  - {name: broadband, interface: wan1, gateway: 100.64.1.1, mode: redirect, snat: masquerade}
  - {name: lte, interface: wan2, gateway: 100.64.2.1, mode: route}
  - {name: tunnel, interface: wan3, gateway: 100.64.3.1, mode: redirect}
rules:
  - {name: udp-bb, priority: 10, match: {proto: udp, dport: 9001}, link: broadband}
  - {name: udp-lte, priority: 20, match: {proto: udp, dport: 9002}, link: lte}
  - {name: udp-tun, priority: 25, match: {proto: udp, dport: 9004}, link: tunnel}
  - {name: tcp-bb, priority: 30, match: {proto: tcp, dport: 8001}, link: broadband}
  - {name: tcp-lte, priority: 40, match: {proto: tcp, dport: 8002}, link: lte}
  - {name: tcp-tun, priority: 45, match: {proto: tcp, dport: 8004}, link: tunnel}
default: {action: bypass}
"""

# Same links; 9001 now goes to lte, and a new rule.
MAPPING_2 = MAPPING.replace("dport: 9001}, link: broadband", "dport: 9001}, link: lte").replace(
    "default: {action: bypass}", "  - {name: new, priority: 50, match: {proto: udp, dport: 9005}, link: tunnel}\n"
    "default: {action: bypass}")


def setUpModule():
    privileged.require_root(("ip", "nft", "ethtool"))
    require_built()


class Datapath(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.site = EdgeSite(wans=4).start()
        cls.agent = Clovisd(cls.site)
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
        # Tests that change the mapping put it back; a dead agent is restarted.
        if self.agent.proc is None or self.agent.proc.poll() is not None:
            self.agent.start()
        if open(self.agent.config).read() != MAPPING:
            self.agent.reload(MAPPING)

    def test_udp_flows_leave_by_the_wan_of_their_rule(self):
        for i, (dport, wan) in enumerate([(9001, 1), (9002, 2), (9004, 3), (9003, 0)]):
            with self.subTest(dport=dport):
                r = self.site.udp_flow(30000 + i, dport, 2000)
                self.assertEqual(r.received, 2000, r)
                self.assertEqual(r.by_wan, {wan: 2000})

    def test_tcp_both_modes_with_return_traffic(self):
        for dport, wan in [(8001, 1), (8002, 2), (8004, 3), (8003, 0)]:
            with self.subTest(dport=dport):
                for download in (False, True):
                    t = self.site.tcp_transfer(dport, 2_000_000, download=download)
                    self.assertEqual(t.bytes_received, 2_000_000)
                    self.assertEqual(t.wan, wan)

    def test_counters_match_the_interfaces(self):
        for name, wan, dport in [("broadband", 1, 9001), ("lte", 2, 9002), ("tunnel", 3, 9004)]:
            with self.subTest(link=name):
                before = self.agent.link(name)
                with self.site.measure() as m:
                    r = self.site.udp_flow(31000 + wan, dport, 5000, echo=True)
                after = self.agent.link(name)
                self.assertEqual(r.echoed, 5000, r)
                tx = after["tx_packets"] - before["tx_packets"]
                rx = after["rx_packets"] - before["rx_packets"]
                self.assertEqual(tx, 5000)
                self.assertEqual(rx, 5000)
                # The interface carries the same packets (+ a little ARP): within 1%.
                self.assertLessEqual(abs(m.tx_packets[wan] - tx), max(NOISE, tx // 100))
                self.assertLessEqual(abs(m.rx_packets[wan] - rx), max(NOISE, rx // 100))
                for other in {0, 1, 2, 3} - {wan}:
                    self.assertLessEqual(m.tx_packets[other], NOISE)

    def test_flows_are_visible_with_rule_link_and_nat(self):
        self.site.udp_flow(32000, 9001, 10)
        flows = self.agent.dump()["flows"]
        mine = [f for f in flows if f["sport"] == 32000 and f["dport"] == 9001]
        self.assertEqual(len(mine), 1, flows)
        f = mine[0]
        self.assertEqual((f["rule"], f["link"], f["action"]), ("udp-bb", "broadband", "steer"))
        self.assertIn("nat", f["flags"])
        self.assertTrue(f["nat"].startswith(self.site.wan_address(1) + ":"))
        self.assertEqual(f["packets_out"], 10)

    # A client that asks the kernel for ICMP errors (IP_RECVERR) on a connected
    # UDP socket, as traceroute and PMTU discovery do; prints what it learnt.
    ICMP_CLIENT = r"""
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 11, 1)  # IP_RECVERR
s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, int(sys.argv[3]))
s.bind(("0.0.0.0", int(sys.argv[4])))
s.connect((sys.argv[1], int(sys.argv[2])))
s.settimeout(3)
s.send(b"clovis")
try:
    s.recv(100)
    print("answer")
except socket.timeout:
    print("timeout")
except OSError as e:
    _, anc, _, _ = s.recvmsg(100, 512, socket.MSG_ERRQUEUE)
    ee = [d for lvl, typ, d in anc if lvl == socket.IPPROTO_IP and typ == 11][0]
    errno_, origin, icmp_type, icmp_code = struct.unpack_from("=IBBB", ee)
    print(e.errno, icmp_type, icmp_code, socket.inet_ntoa(ee[20:24]))
"""

    def icmp_client(self, ttl, sport):
        return self.site.run(self.site.ns_lan, "python3", "-c", self.ICMP_CLIENT, self.site.server_v4, "9001",
                             str(ttl), str(sport), timeout=15).stdout.split()

    def test_icmp_errors_about_translated_packets_reach_the_client(self):
        """UDP 9001 leaves by broadband, redirected and NATed by clovis. The
        cloud's port unreachable and the WAN router's time exceeded are
        addressed to the edge's broadband address; clovis hands them to the
        client, which sees them on its own socket (errno, ICMP type, sender)."""
        import errno
        before = self.agent.dump()["counters"]["icmp_err_in"]
        # Nothing listens on 9001 in the cloud: port unreachable, from the server.
        self.assertEqual(self.icmp_client(64, 35500),
                         [str(errno.ECONNREFUSED), "3", "3", self.site.server_v4])
        # TTL 2: the edge takes one, WAN router 1 the last; time exceeded, from it.
        self.assertEqual(self.icmp_client(2, 35501),
                         [str(errno.EHOSTUNREACH), "11", "0", self.site.wan_gateway(1)])
        flows = {f["sport"]: f for f in self.agent.dump()["flows"] if f["dport"] == 9001}
        for sport in (35500, 35501):
            self.assertEqual(flows[sport]["link"], "broadband")
            self.assertIn("nat", flows[sport]["flags"])
            self.assertEqual(flows[sport]["packets_in"], 1)  # the error, counted as the flow's return
        self.assertEqual(self.agent.dump()["counters"]["icmp_err_in"], before + 2)

    # A server that answers late, when the client has closed its socket; it
    # asks for ICMP errors and prints what it learnt about its answer.
    LATE_SERVER = r"""
import socket, struct, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 11, 1)  # IP_RECVERR
s.setsockopt(socket.SOL_IP, 15, 1)      # IP_FREEBIND
s.bind((sys.argv[1], 9001))
print("READY", flush=True)
s.settimeout(10)
data, peer = s.recvfrom(100)
s.connect(peer)
time.sleep(0.3)
s.send(b"late answer")
s.settimeout(3)
try:
    s.recv(100)
    print("answer", flush=True)
except socket.timeout:
    print("timeout", flush=True)
except OSError as e:
    _, anc, _, _ = s.recvmsg(100, 512, socket.MSG_ERRQUEUE)
    ee = [d for lvl, typ, d in anc if lvl == socket.IPPROTO_IP and typ == 11][0]
    print(e.errno, *struct.unpack_from("=IBBB", ee)[2:], flush=True)
"""

    def test_a_clients_icmp_error_reaches_the_remote_through_clovis_nat(self):
        """The other way: the client's port unreachable about the server's late
        answer quotes the client's own address and port; clovis sends it by
        broadband about the NAT address and port, and the server's socket
        learns of it (ECONNREFUSED)."""
        import errno
        s = self.site
        srv = s.popen(s.ns_cloud, ["python3", "-c", self.LATE_SERVER, s.server_v4], stdout=subprocess.PIPE,
                      stderr=subprocess.DEVNULL, text=True)
        try:
            self.assertEqual(srv.stdout.readline().strip(), "READY")
            s.run(s.ns_lan, "python3", "-c",
                  "import socket,sys; c=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
                  "c.bind(('0.0.0.0', 35800)); c.sendto(b'x', (sys.argv[1], 9001)); c.close()", s.server_v4)
            out, _ = srv.communicate(timeout=20)
        finally:
            s.stop(srv)
        self.assertEqual(out.split(), [str(errno.ECONNREFUSED), "3", "3"])
        d = self.agent.dump()
        f = [f for f in d["flows"] if f["sport"] == 35800 and f["dport"] == 9001][0]
        self.assertEqual((f["link"], f["packets_out"], f["packets_in"]), ("broadband", 2, 1))
        self.assertGreaterEqual(d["counters"]["icmp_err_out"], 1)

    def test_path_mtu_discovery_through_clovis_nat(self):
        """Broadband's router reaches the cloud over a 1,400-byte link; client
        and server both believe in 1,500. An upload (DF set) must learn the path
        MTU from the router's "fragmentation needed", which is addressed to the
        edge's NAT address: the transfer finishes only if clovis hands it on."""
        s = self.site
        s.run(s.ns_wan[1], "ip", "link", "set", s.ROUTER_CLOUD_IF, "mtu", "1400")
        try:
            t = s.tcp_transfer(8001, 1_000_000, sport=35600, timeout=10)
        finally:
            s.run(s.ns_wan[1], "ip", "link", "set", s.ROUTER_CLOUD_IF, "mtu", "1500")
            s.run(s.ns_lan, "ip", "route", "flush", "cache")  # the learnt MTU, for the next tests
        self.assertEqual(t.bytes_received, 1_000_000, t)
        self.assertEqual(t.wan, 1)

    def test_simulator_agrees_with_the_traffic(self):
        for sport, dport, proto, wan in [(33000, 9002, "udp", 2), (33001, 8001, "tcp", 1)]:
            out = subprocess.run([CLOVISCTL, "simulate", "-f", self.agent.config, "--src", self.site.client_v4,
                                  "--dst", self.site.server_v4, "--proto", proto, "--sport", str(sport),
                                  "--dport", str(dport), "-o", "json"], capture_output=True, text=True, check=True)
            import json
            predicted = json.loads(out.stdout)["link"]["interface"]
            if proto == "udp":
                seen = self.site.udp_flow(sport, dport, 50).by_wan
            else:
                seen = {self.site.tcp_transfer(dport, 100_000, sport=sport).wan: 1}
            self.assertEqual(list(seen), [wan])
            self.assertEqual(predicted, self.site.wan_ifname(wan))

    def test_atomic_reapply_under_traffic_moves_no_flow_and_drops_nothing(self):
        result = {}
        t = threading.Thread(target=lambda: result.update(
            r=self.site.udp_flow(34000, 9001, 16000, rate_pps=4000, timeout=30)))
        t.start()
        time.sleep(1.0)
        gen = self.agent.dump()["generation"]
        self.agent.reload(MAPPING_2)
        self.assertEqual(self.agent.dump()["generation"], gen + 1)
        t.join(40)
        r = result["r"]
        self.assertEqual(r.lost, 0, r)
        self.assertEqual(r.by_wan, {1: 16000})  # the live flow kept broadband
        n = self.site.udp_flow(34001, 9001, 500)  # a new flow takes the new rule
        self.assertEqual(n.by_wan, {2: 500})
        self.assertEqual(self.site.udp_flow(34002, 9005, 500).by_wan, {3: 500})

    def test_a_rejected_mapping_changes_nothing(self):
        gen = self.agent.dump()["generation"]
        self.agent.write_mapping(MAPPING.replace("gateway: 100.64.2.1", "gatway: 100.64.2.1"))
        self.agent.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        self.assertEqual(self.agent.dump()["generation"], gen)
        log = self.agent.read_log()
        self.assertIn("unknown key 'gatway'", log)
        self.assertRegex(log, r"wan\.yaml:5:\d+: error")
        self.assertIn("rejected; the running rule set is unchanged", log)
        self.assertEqual(self.site.udp_flow(35000, 9002, 200).by_wan, {2: 200})
        self.agent.write_mapping(MAPPING)

    def test_steering_survives_the_agent_and_a_restart_adopts_it(self):
        result = {}
        t = threading.Thread(target=lambda: result.update(
            r=self.site.udp_flow(36000, 9001, 12000, rate_pps=4000, timeout=30)))
        t.start()
        time.sleep(0.5)
        flows_before = {(f["sport"], f["dport"]) for f in self.agent.dump()["flows"]}
        self.agent.kill(signal.SIGKILL)
        t.join(40)
        r = result["r"]
        self.assertEqual(r.lost, 0, r)
        self.assertEqual(r.by_wan, {1: 12000})
        gen = self.agent.dump()["generation"]
        self.agent.start()  # no -c: comes back with the persisted mapping
        d = self.agent.dump()
        self.assertEqual(d["generation"], gen)  # re-applied as the generation it was
        self.assertTrue(flows_before <= {(f["sport"], f["dport"]) for f in d["flows"]})
        mine = [f for f in d["flows"] if f["sport"] == 36000][0]
        self.assertEqual((mine["link"], mine["packets_out"]), ("broadband", 12000))
        self.assertEqual(self.site.udp_flow(36001, 9002, 300).by_wan, {2: 300})


MAPPING_V6 = """version: 1
links:
  - {name: primary, interface: wan0, gateway: [100.64.0.1, "2001:db8:100::1"], mode: route}
  - {name: broadband, interface: wan1, gateway: [100.64.1.1, "2001:db8:101::1"], mode: redirect,
     snat: masquerade}
rules:
  - {name: bb, priority: 10, match: {proto: [tcp, udp], dport: 8001-9001}, link: broadband}
default: {action: bypass}
"""


class NatIcmpV6(unittest.TestCase):
    """IPv6 through clovis's NAT: ICMPv6 errors come back to the client. In
    IPv6 routers never fragment, so path MTU discovery by "packet too big" is
    the only way a large packet gets through a smaller hop."""

    @classmethod
    def setUpClass(cls):
        cls.site = EdgeSite(wans=2, ipv6=True).start()
        cls.agent = Clovisd(cls.site)
        try:
            cls.agent.start(MAPPING_V6)
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.agent.close()
        cls.site.close()

    def test_port_unreachable_reaches_the_client(self):
        import errno
        code = (
            "import socket, struct, sys\n"
            "s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n"
            "s.setsockopt(socket.IPPROTO_IPV6, 25, 1)  # IPV6_RECVERR\n"
            "s.bind(('::', 35900))\n"
            "s.connect((sys.argv[1], 9001))\n"
            "s.settimeout(3)\n"
            "s.send(b'clovis')\n"
            "try:\n"
            "    s.recv(100); print('answer')\n"
            "except socket.timeout:\n"
            "    print('timeout')\n"
            "except OSError as e:\n"
            "    _, anc, _, _ = s.recvmsg(100, 512, socket.MSG_ERRQUEUE)\n"
            "    ee = [d for lvl, typ, d in anc if lvl == socket.IPPROTO_IPV6 and typ == 25][0]\n"
            "    print(e.errno, *struct.unpack_from('=IBBB', ee)[2:], socket.inet_ntop(socket.AF_INET6, ee[24:40]))\n")
        out = self.site.run(self.site.ns_lan, "python3", "-c", code, self.site.server_v6, timeout=15).stdout.split()
        self.assertEqual(out, [str(errno.ECONNREFUSED), "1", "4", self.site.server_v6])
        f = [f for f in self.agent.dump()["flows"] if f["sport"] == 35900][0]
        self.assertEqual((f["link"], f["packets_in"]), ("broadband", 1))
        self.assertIn("nat", f["flags"])

    def test_path_mtu_discovery_by_packet_too_big(self):
        s = self.site
        s.run(s.ns_wan[1], "ip", "link", "set", s.ROUTER_CLOUD_IF, "mtu", "1400")
        try:
            t = s.tcp_transfer(8001, 1_000_000, sport=35901, dst=s.server_v6, timeout=10)
        finally:
            s.run(s.ns_wan[1], "ip", "link", "set", s.ROUTER_CLOUD_IF, "mtu", "1500")
            s.run(s.ns_lan, "ip", "-6", "route", "flush", "cache")
        self.assertEqual(t.bytes_received, 1_000_000, t)
        self.assertEqual(t.wan, 1)


class Uninstall(unittest.TestCase):
    def test_uninstall_removes_everything_clovis_installed(self):
        with EdgeSite(wans=3) as site, Clovisd(site) as agent:
            agent.start(MAPPING)
            agent.kill(signal.SIGTERM)  # steering stays after the agent exits
            self.assertEqual(site.udp_flow(37000, 9002, 100).by_wan, {2: 100})
            rules = site.run(site.ns_edge, "ip", "rule", "show").stdout
            self.assertIn("lookup 102", rules)  # lte: slot 2, table 100 + slot
            progs = lambda: subprocess.run(["bpftool", "prog", "show"], capture_output=True,  # noqa: E731
                                           text=True).stdout.count("name clv_lan_in")
            loaded = progs()
            out = subprocess.run(agent.base_args() + ["--uninstall"], capture_output=True, text=True)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertFalse(os.path.exists(agent.pin_dir))
            self.assertNotIn("lookup 102", site.run(site.ns_edge, "ip", "rule", "show").stdout)
            self.assertEqual(site.run(site.ns_edge, "ip", "route", "show", "table", "102", check=False).stdout, "")
            self.assertEqual(progs(), loaded - 1)  # detached: nothing holds the program any more
            # Back to the host's own routing: everything leaves by the default WAN.
            self.assertEqual(site.udp_flow(37001, 9002, 100).by_wan, {0: 100})


if __name__ == "__main__":
    sys.exit(privileged.main(__name__))
