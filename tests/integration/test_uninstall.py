#!/usr/bin/env python3
"""clovisd --uninstall leaves the host as it found it (issue #13, item 7).

The edge namespace's kernel state -- ip rules and routes of every table (IPv4
and IPv6), permanent neighbours, tc qdiscs and filters of every interface,
bpftool's view of its attachments, the pin directory -- is snapshotted before
clovisd starts and after `clovisd --uninstall`, and the two must be equal.
In between, clovisd runs a mapping with route- and redirect-mode links,
gateway-mac on both families, then a second mapping that frees and reuses
slots and drops a gateway-mac; and the kernel is given what an older release
left behind without the state directory knowing: a redirect link's fwmark
rule and table, a gateway-mac neighbour without clovis's protocol tag, and a
legacy tc filter of a clovis program with no record of it.
The administrator's own rule, table and permanent neighbour must survive.

    python3 tests/integration/test_uninstall.py [-k PATTERN]
"""
import json
import signal
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from clovis_site import Clovisd, require_built  # noqa: E402
from edgesite import EdgeSite  # noqa: E402
import privileged  # noqa: E402

FIRST = """version: 1
links:
  - name: a
    interface: wan0
    gateway: [100.64.0.1, "2001:db8:100::1"]
    mode: route
  - name: b
    interface: wan1
    gateway: [100.64.1.1, "2001:db8:101::1"]
    gateway-mac: {mac1}
    mode: redirect
    snat: masquerade
  - name: c
    interface: wan2
    gateway: 100.64.2.1
    gateway-mac: {mac2}
    mode: redirect
    snat: masquerade
policies:
  - {{name: p, failover: [a, b, c]}}
rules:
  - {{name: all, priority: 10, match: {{proto: udp}}, policy: p}}
default: {{action: bypass}}
"""

# a goes (its slot is freed), d takes wan0 with a table and mark of its own,
# c loses its gateway-mac (the agent leaves the neighbour: uninstall takes it).
SECOND = """version: 1
links:
  - name: c
    interface: wan2
    gateway: 100.64.2.1
    mode: redirect
    snat: masquerade
  - name: b
    interface: wan1
    gateway: [100.64.1.1, "2001:db8:101::1"]
    gateway-mac: {mac1}
    mode: redirect
    snat: masquerade
  - name: d
    interface: wan0
    gateway: [100.64.0.1, "2001:db8:100::1"]
    mode: route
    table: 177
    mark: 0x7700
policies:
  - {{name: p, failover: [d, b, c]}}
rules:
  - {{name: all, priority: 10, match: {{proto: udp}}, policy: p}}
default: {{action: bypass}}
"""


def setUpModule():
    privileged.require_root(("ip", "nft", "tc", "bpftool"))
    require_built()


class Uninstall(unittest.TestCase):
    def setUp(self):
        self.site = EdgeSite(wans=3, ipv6=True).start()
        self.agent = Clovisd(self.site)
        self.macs = {f"mac{i}": self.site.link_info(self.site.ns_wan[i], "edge0")["address"] for i in range(3)}

    def tearDown(self):
        self.agent.close()
        self.site.close()

    def ip(self, *args, check=True):
        return self.site.run(self.site.ns_edge, "ip", *args, check=check).stdout

    def snapshot(self):
        ns = self.site.ns_edge
        snap = {}
        for fam in ("-4", "-6"):
            snap[f"rules{fam}"] = self.ip(fam, "-d", "rule", "show")
            snap[f"routes{fam}"] = self.ip(fam, "-d", "route", "show", "table", "all")
            # Dynamic entries come and go with traffic; what a program or an
            # administrator makes is permanent.
            snap[f"neigh{fam}"] = self.ip(fam, "neigh", "show", "nud", "permanent")
        ifnames = [l["ifname"] for l in json.loads(self.ip("-j", "link", "show"))]
        snap["qdiscs"] = self.site.run(ns, "tc", "qdisc", "show").stdout
        for dev in ifnames:
            for where in ("ingress", "egress"):
                snap[f"tc {dev} {where}"] = self.site.run(ns, "tc", "-d", "filter", "show", "dev", dev, where).stdout
        snap["bpftool net"] = self.site.run(ns, "bpftool", "net", "show", host_sys=True).stdout
        snap["pin dir"] = os.path.exists(self.agent.pin_dir)
        return snap

    def pinned_link_ids(self):
        """(link id, prog id) of every TCX link clovisd pinned."""
        out = []
        links = os.path.join(self.agent.pin_dir, "links")
        for name in sorted(os.listdir(links)):
            j = json.loads(subprocess.run(["bpftool", "-j", "link", "show", "pinned", os.path.join(links, name)],
                                          capture_output=True, text=True, check=True).stdout)
            out.append((j["id"], j["prog_id"]))
        return out

    def leave_older_release_state(self):
        """What an older clovisd made and the state directory does not know."""
        # A redirect link's policy routing (redirect links got a table of
        # their own for marked local sockets, which the old uninstall never
        # removed) in slot 30 of the default --rule-pref, with the protocol
        # every clovis rule and route has carried.
        self.ip("rule", "add", "fwmark", "0x1f00", "table", "130", "pref", "10030", "proto", "0xc1")
        self.ip("route", "add", "default", "via", "100.64.2.1", "dev", "wan2", "table", "130", "proto", "0xc1")
        self.ip("-6", "rule", "add", "fwmark", "0x1f00", "table", "130", "pref", "10030", "proto", "0xc1")
        self.ip("-6", "route", "add", "default", "via", "2001:db8:102::1", "dev", "wan2", "table", "130",
                "proto", "0xc1")
        # c's gateway-mac neighbour (FIRST, now in the history only) as a
        # release before the protocol tag made it.
        self.ip("neigh", "del", "100.64.2.1", "dev", "wan2")
        self.ip("neigh", "add", "100.64.2.1", "lladdr", self.macs["mac2"], "dev", "wan2", "nud", "permanent")
        # A legacy cls_bpf filter (kernels before TCX) whose STATE-DIR/tc
        # record is gone: clovis's priority and handle, a clovis program.
        wan_in = next(n for n in os.listdir(os.path.join(self.agent.pin_dir, "links")) if n.startswith("wan2@"))
        prog = json.loads(subprocess.run(
            ["bpftool", "-j", "link", "show", "pinned", os.path.join(self.agent.pin_dir, "links", wan_in)],
            capture_output=True, text=True, check=True).stdout)["prog_id"]
        pinned = os.path.join(self.agent.pin_dir, "legacy-prog")
        subprocess.run(["bpftool", "prog", "pin", "id", str(prog), pinned], check=True)
        self.site.run(self.site.ns_edge, "tc", "filter", "add", "dev", "wan2", "egress", "prio", "193", "handle",
                      "0xc10", "bpf", "direct-action", "object-pinned", pinned, host_sys=True)
        os.unlink(pinned)
        self.assertIn("clv_", self.site.run(self.site.ns_edge, "tc", "filter", "show", "dev", "wan2", "egress").stdout)

    def add_admin_state(self):
        """The administrator's: in clovis's preference range, but not clovis's."""
        self.ip("rule", "add", "fwmark", "0x9900", "table", "199", "pref", "10005")
        self.ip("route", "add", "default", "via", "100.64.1.1", "dev", "wan1", "table", "199")
        self.ip("neigh", "add", "100.64.0.77", "lladdr", "02:00:00:00:00:77", "dev", "wan0", "nud", "permanent")
        self.ip("-6", "neigh", "add", "2001:db8:100::77", "lladdr", "02:00:00:00:00:77", "dev", "wan0",
                "nud", "permanent")
        # A clsact qdisc (which uninstall leaves: it may carry others' filters).
        self.site.run(self.site.ns_edge, "tc", "qdisc", "add", "dev", "wan2", "clsact")

    def test_uninstall_restores_the_snapshot(self):
        self.add_admin_state()
        before = self.snapshot()
        self.agent.start(FIRST.format(**self.macs))
        during = self.snapshot()
        # The test must see what clovis makes, or equality proves nothing.
        self.assertIn("proto 193", during["rules-4"])
        self.assertIn("proto 193", during["rules-6"])
        self.assertIn(self.macs["mac1"], during["neigh-6"])
        # bpftool 7.1's net listing predates TCX: the pinned links' ids are
        # checked instead (below).
        self.agent.reload(SECOND.format(**self.macs))
        self.assertIn("lookup 177", self.ip("rule", "show"))
        links = self.pinned_link_ids()
        self.assertGreaterEqual(len(links), 3)  # lan0 in and out, redirect links' wan_in
        self.agent.kill(signal.SIGTERM)
        self.leave_older_release_state()

        out = subprocess.run(self.agent.base_args() + ["--uninstall"], capture_output=True, text=True, timeout=30)
        print("\n" + out.stdout + out.stderr)
        self.assertEqual(out.returncode, 0, out.stderr)
        after = self.snapshot()
        for key in before:
            self.assertEqual(after[key], before[key], f"{key} differs after uninstall")
        for link_id, prog_id in links:
            self.assertNotEqual(subprocess.run(["bpftool", "link", "show", "id", str(link_id)],
                                               capture_output=True).returncode, 0, f"link {link_id} still exists")
            self.assertNotEqual(subprocess.run(["bpftool", "prog", "show", "id", str(prog_id)],
                                               capture_output=True).returncode, 0, f"prog {prog_id} still loaded")
        # Twice is harmless.
        again = subprocess.run(self.agent.base_args() + ["--uninstall"], capture_output=True, text=True, timeout=30)
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertEqual(self.snapshot(), before)


if __name__ == "__main__":
    sys.exit(privileged.main(__name__))
