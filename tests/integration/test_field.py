#!/usr/bin/env python3
"""Links that come and go, as on an edge host after a reboot: clovisd starts
while one WAN has no address yet (DHCP) and another's interface does not
exist (an LTE modem still attaching); the other links steer, and each link
starts steering once the host can use it (netlink events, not the periodic
look), also when its interface is deleted and re-created with a new index.
Real clovisd, real traffic, on a namespace edge site.

    python3 tests/integration/test_field.py [-k PATTERN]
"""
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from clovis_site import Clovisd, require_built  # noqa: E402
from edgesite import EdgeSite  # noqa: E402
import privileged  # noqa: E402

# Every link is in the policy of its port; mpls is each one's fallback.
MAPPING = """version: 1
links:
  - {name: mpls, interface: wan0, gateway: 100.64.0.1, mode: route}
  - {name: bb, interface: wan1, gateway: 100.64.1.1, mode: redirect, snat: masquerade}
  - {name: lte, interface: wan2, gateway: 100.64.2.1, mode: route}
policies:
  - {name: via-bb, failover: [bb, mpls]}
  - {name: via-lte, failover: [lte, mpls]}
rules:
  - {name: bb, priority: 10, match: {proto: udp, dport: 6001}, policy: via-bb}
  - {name: lte, priority: 20, match: {proto: udp, dport: 6002}, policy: via-lte}
default: {link: mpls}
"""


def setUpModule():
    privileged.require_root(("ip", "nft"))
    require_built()


class LinksThatComeAndGo(unittest.TestCase):
    def setUp(self):
        self.site = EdgeSite(wans=3).start()
        self.agent = Clovisd(self.site)
        self.sport = 41000

    def tearDown(self):
        self.agent.close()
        self.site.close()

    def links(self):
        return {l["name"]: l for l in self.agent.ctl_json("links")["links"]}

    def wait_state(self, name, state, timeout=5.0):
        """Seconds until the link is in `state` (clovisctl links)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.links()[name]["state"] == state:
                return time.monotonic() - t0
            time.sleep(0.02)
        self.fail(f"link {name} not {state} within {timeout}s: {self.links()[name]}\n{self.agent.read_log()}")

    def wan_taken(self, dport):
        """The WAN a new UDP flow to dport leaves by."""
        self.sport += 1
        r = self.site.udp_flow(self.sport, dport, 20, settle=0.3)
        self.assertEqual(r.received, 20, r)
        (wan,) = r.by_wan.keys()
        return wan

    def delete_wan2(self):
        self.site.run(self.site.ns_edge, "ip", "link", "del", "wan2")

    def create_wan2(self):
        """wan2 and its router side as EdgeSite made them (a new ifindex)."""
        s = self.site
        s.run(s.ns_edge, "ip", "link", "add", "wan2", "type", "veth", "peer", "name", s.ROUTER_EDGE_IF,
              "netns", s.ns_wan[2])
        s.run(s.ns_wan[2], "sh", "-ec", f"ip addr add {s.wan_gateway(2)}/24 dev {s.ROUTER_EDGE_IF}; "
              f"ip link set {s.ROUTER_EDGE_IF} up")
        s.run(s.ns_edge, "sh", "-ec", f"ip addr add {s.wan_address(2)}/24 dev wan2; ip link set wan2 up")

    def test_start_with_links_missing_then_each_steers_when_usable(self):
        site = self.site
        # After a reboot: wan1 waits for its lease, wan2's modem is not there.
        site.run(site.ns_edge, "ip", "addr", "flush", "dev", "wan1")
        self.delete_wan2()
        self.agent.start(MAPPING)  # before: clovisd exited 1 (Nexthop has invalid gateway)
        links = self.links()
        self.assertEqual(links["mpls"]["state"], "up")
        self.assertEqual(links["bb"]["state"], "down")
        self.assertIn("wan1 has no IPv4 address", links["bb"]["reason"])
        self.assertEqual(links["lte"]["state"], "down")
        self.assertIn("wan2 does not exist", links["lte"]["reason"])
        # The other links steer: both policies fall back to mpls.
        self.assertEqual(self.wan_taken(6001), 0)
        self.assertEqual(self.wan_taken(6002), 0)

        # The lease comes: bb is up at once (the periodic look is 10 s away).
        site.run(site.ns_edge, "ip", "addr", "add", f"{site.wan_address(1)}/24", "dev", "wan1")
        took = self.wait_state("bb", "up")
        print(f"  bb up {took * 1000:.0f} ms after its address appeared")
        self.assertEqual(self.wan_taken(6001), 1)

        # The modem attaches: lte's interface appears, its routing goes in.
        self.create_wan2()
        took = self.wait_state("lte", "up")
        print(f"  lte up {took * 1000:.0f} ms after its interface appeared")
        self.assertEqual(self.wan_taken(6002), 2)

        # Deleted and re-created with another index: down, then up again.
        self.delete_wan2()
        self.wait_state("lte", "down")
        self.assertIn("wan2 does not exist", self.links()["lte"]["reason"])
        self.assertEqual(self.wan_taken(6002), 0)
        self.create_wan2()
        self.wait_state("lte", "up")
        self.assertEqual(self.wan_taken(6002), 2)

        # All of it within the one applied mapping: no generation, no history.
        self.assertEqual(self.agent.dump()["generation"], 1)
        self.assertEqual(len(self.agent.ctl_json("history")["entries"]), 1)

    def lan_attached(self, ifname):
        """The programs clovisd attached to ifname (its pinned TCX links)."""
        links = os.path.join(self.agent.pin_dir, "links")
        names = os.listdir(links) if os.path.isdir(links) else []
        return sorted(n.split("-", 1)[1] for n in names if n.startswith(ifname + "@"))

    def test_lan_interface_missing_at_start_is_attached_when_it_appears(self):
        # A second LAN (a VLAN, a bridge still being set up) is not there
        # yet: lan0 is steered, and lan9 is once it appears (netlink), also
        # when it is re-created with a new index.
        self.agent = Clovisd(self.site, lan=("lan0", "lan9"))
        self.agent.start(MAPPING)  # before: clovisd exited 1 ("LAN interface lan9: ...")
        self.assertIn("lan9", self.agent.read_log())
        self.assertEqual(self.wan_taken(6001), 1)
        self.assertEqual(self.lan_attached("lan9"), [])
        site = self.site
        for _ in range(2):
            site.run(site.ns_edge, "ip", "link", "add", "lan9", "type", "veth", "peer", "name", "lan9p")
            t0 = time.monotonic()
            while self.lan_attached("lan9") != ["lan_in", "lan_out"] and time.monotonic() - t0 < 5:
                time.sleep(0.02)
            self.assertEqual(self.lan_attached("lan9"), ["lan_in", "lan_out"], self.agent.read_log())
            print(f"  lan9 attached {(time.monotonic() - t0) * 1000:.0f} ms after it appeared")
            site.run(site.ns_edge, "ip", "link", "del", "lan9")
            t0 = time.monotonic()
            while self.lan_attached("lan9") and time.monotonic() - t0 < 5:
                time.sleep(0.02)
            # A deleted interface takes its TCX links with it; clovisd drops their pins.
            self.assertEqual(self.lan_attached("lan9"), [])
        self.assertEqual(self.wan_taken(6001), 1)

    def test_apply_reload_and_rollback_with_a_link_missing(self):
        self.delete_wan2()
        self.agent.start(MAPPING)
        second = MAPPING.replace("dport: 6002", "dport: 6003")
        path = os.path.join(self.agent.tmp, "second.yaml")
        with open(path, "w") as f:
            f.write(second)
        self.agent.ctl("apply", "-f", path, check=True)
        self.agent.reload(MAPPING)
        self.agent.ctl("rollback", check=True)
        self.assertEqual(self.agent.dump()["generation"], 4)
        self.assertEqual(self.links()["lte"]["state"], "down")
        self.assertEqual(self.wan_taken(6001), 1)


if __name__ == "__main__":
    privileged.main(__name__)
