#!/usr/bin/env python3
"""End to end: requests through a proxy that behaves like Envoy leave the edge
site over the WAN link clovis picks for them, proven by the WAN interfaces'
counters.

The real clovisd runs on a throwaway edge site with two links: mpls (route
mode) and broadband (redirect mode with source NAT). `clovisctl envoy -o json`
renders the Envoy configuration from the mapping; mini_envoy.py (a test proxy
that does what Envoy does with that configuration: ext_authz Check per request
over clovisd's socket, route by x-clovis-link, upstream sockets with the
cluster's SO_MARK) runs on the edge host. A client on the LAN sends real HTTP
requests with `end-user: minions` and `end-user: boss`; the responses (256 KiB
each) come back over broadband for minions and over mpls for boss.

    python3 tests/integration/test_envoy.py [-k PATTERN]

The proxy needs a python3 with grpc (Debian's python3-grpcio).
"""
import json
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from clovis_site import Clovisd, require_built  # noqa: E402
from edgesite import EdgeSite  # noqa: E402
import privileged  # noqa: E402
from proxy_site import BODY, grpc_python, render, requests, start_proxy, start_upstream  # noqa: E402

MAPPING = """version: 1
links:
  - {name: mpls, interface: wan0, gateway: 100.64.0.1, mode: route}
  - {name: broadband, interface: wan1, gateway: 100.64.1.1, mode: redirect, snat: masquerade}
rules:
  - name: minions-video
    priority: 10
    match: {host: video.example.com, headers: {end-user: minions}}
    link: broadband
default: {link: mpls}
"""

PROXY_PORT = 10000


def setUpModule():
    privileged.require_root(("ip", "nft"))
    require_built()


class Envoy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.py = grpc_python()
        if cls.py is None:
            raise unittest.SkipTest("needs a python3 with grpc (Debian: python3-grpcio)")
        cls.site = EdgeSite(wans=2).start()
        cls.agent = Clovisd(cls.site)
        try:
            cls.agent.start(MAPPING)
            cls.config, path = render(cls.agent, PROXY_PORT)
            start_upstream(cls.site)
            start_proxy(cls.site, cls.py, path, PROXY_PORT)
        except Exception:
            cls.agent.close()
            cls.site.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.agent.close()
        cls.site.close()

    def requests(self, user, n, port=PROXY_PORT, forged="forged-by-client"):
        return requests(self.site, port, user, n, forged)

    def marks(self):
        """Link name -> the SO_MARK its cluster sets, as rendered."""
        out = {}
        routes = []
        for lst in self.config["static_resources"]["listeners"]:
            for chain in lst["filter_chains"]:
                for f in chain["filters"]:
                    for vh in f["typed_config"]["route_config"]["virtual_hosts"]:
                        routes += vh["routes"]
        clusters = {c["name"]: c for c in self.config["static_resources"]["clusters"]}
        for r in routes:
            for h in r["match"].get("headers", []):
                if h["name"] == "x-clovis-link":
                    link = h.get("string_match", {}).get("exact", h.get("exact_match"))
                    opts = clusters[r["route"]["cluster"]]["upstream_bind_config"]["socket_options"]
                    out[link] = [o["int_value"] for o in opts if o["level"] == 1 and o["name"] == 36][0]
        return out

    def test_the_rendered_config_marks_each_links_cluster(self):
        marks = self.marks()
        self.assertEqual(set(marks), {"mpls", "broadband"})
        self.assertNotEqual(marks["mpls"], marks["broadband"])
        # The marks are the ones clovisd routes by: its fwmark rules.
        rules = self.site.run(self.site.ns_edge, "ip", "-j", "rule", "show").stdout
        fwmarks = {int(str(r["fwmark"]), 0) for r in json.loads(rules) if "fwmark" in r}
        self.assertLessEqual(set(marks.values()), fwmarks, rules)

    def test_minions_leave_on_broadband_and_boss_on_mpls(self):
        n = 8
        for user, link, via, other in (("minions", "broadband", 1, 0), ("boss", "mpls", 0, 1)):
            with self.subTest(user=user):
                before = self.site.wan_counters_all()
                answers = self.requests(user, n)
                after = self.site.wan_counters_all()
                for a in answers:
                    self.assertEqual(a["status"], 200, answers)
                    self.assertEqual(a["bytes"], BODY, answers)
                    self.assertEqual(a["end_user"], user, answers)
                    self.assertEqual(a["link"], link, answers)  # the client's forged header was replaced
                got = (after[via] - before[via])["rx_bytes"]
                stray = (after[other] - before[other])["rx_bytes"]
                self.assertGreaterEqual(got, n * BODY, f"{user}: wan{via} received {got} bytes")
                self.assertLess(stray, n * BODY // 10, f"{user}: wan{other} received {stray} bytes")

    def test_without_clovisd_requests_go_on_unmarked_and_cannot_pick_a_link(self):
        # The same configuration, but clovisd's socket is missing: failure_mode_allow lets the
        # request through, to the unmarked cluster, and a client's own x-clovis-link is dropped
        # before routing (it would otherwise choose broadband).
        _, path = render(self.agent, PROXY_PORT + 1, authz_socket=os.path.join(self.agent.tmp, "no-such.sock"))
        proxy = start_proxy(self.site, self.py, path, PROXY_PORT + 1)
        try:
            n = 4
            before = self.site.wan_counters_all()
            answers = self.requests("minions", n, port=PROXY_PORT + 1, forged="broadband")
            after = self.site.wan_counters_all()
            for a in answers:
                self.assertEqual((a["status"], a["bytes"]), (200, BODY), answers)
                self.assertEqual(a["link"], "", answers)  # the forged header never reached the upstream
            self.assertLess((after[1] - before[1])["rx_bytes"], n * BODY // 10, "a client picked broadband")
            self.assertGreaterEqual((after[0] - before[0])["rx_bytes"], n * BODY)  # the edge's default route
        finally:
            self.site.stop(proxy)

    def test_flows_show_the_session_and_what_chose_its_link(self):
        self.requests("minions", 1)
        flows = self.agent.ctl_json("flows", "--dport", PROXY_PORT)["flows"]
        withl7 = [f for f in flows if f.get("l7", {}).get("headers") == {"end-user": "minions"}]
        self.assertTrue(withl7, flows)
        l7 = withl7[-1]["l7"]
        self.assertEqual(l7["rule"], "minions-video")
        self.assertTrue(l7["by_l7"])
        self.assertEqual(l7["host"], "video.example.com")
        self.assertTrue(l7["path"].startswith("/stream/"), l7)


if __name__ == "__main__":
    sys.exit(privileged.main(__name__))
