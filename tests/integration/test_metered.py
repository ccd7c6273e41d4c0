#!/usr/bin/env python3
"""Metered links (#17 items 4 and 7) with real traffic: a link with a 2 MiB
budget carries its policy's new flows until the traffic on its interface
(both directions) crosses the budget; then new flows of that policy go to
the other link, a `metered: allow` policy keeps using it, `clovisctl links`
and events say "over budget", and a restarted clovisd still has it over
budget (STATE_DIR/budget.json).

    python3 tests/integration/test_metered.py [-k PATTERN]
"""
import os
import signal
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from clovis_site import Clovisd  # noqa: E402
from edgesite import EdgeSite  # noqa: E402
import privileged  # noqa: E402

MAPPING = """version: 1
links:
  - name: fiber
    interface: wan0
    gateway: 100.64.0.1
    mode: redirect
    snat: masquerade
  - name: lte
    interface: wan1
    gateway: 100.64.1.1
    mode: redirect
    snat: masquerade
    budget: {limit: 2MiB, per: month, reset-day: 1}
policies:
  - {name: web, failover: [lte, fiber]}
  - {name: urgent, failover: [lte, fiber], metered: allow}
rules:
  - {name: web, priority: 10, match: {proto: udp, dport: 7000}, policy: web}
  - {name: urgent, priority: 20, match: {proto: udp, dport: 7001}, policy: urgent}
default: {action: bypass}
"""

BUDGET = 2 << 20
FIBER, LTE = 0, 1


def setUpModule():
    privileged.require_root(("ip", "nft"))


class Metered(unittest.TestCase):
    def setUp(self):
        self.site = EdgeSite(wans=2).start()
        self.agent = Clovisd(self.site)
        self.agent.start(MAPPING)
        self.sport = 40000

    def tearDown(self):
        self.agent.close()
        self.site.close()

    def new_flow(self, dport, count=20):
        """A new flow (a sport not used before): the WAN it left by."""
        self.sport += 1
        r = self.site.udp_flow(self.sport, dport, count, rate_pps=2000)
        self.assertEqual(len(r.by_wan), 1, f"one flow, one WAN: {r.by_wan}")
        return next(iter(r.by_wan))

    def lte(self):
        for l in self.agent.ctl_json("links")["links"]:
            if l["name"] == "lte":
                return l
        raise KeyError("lte")

    def wait_over(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            b = self.lte().get("budget")
            if b and b["over"]:
                return b
            time.sleep(0.2)
        self.fail(f"lte not over budget within {timeout}s: {self.lte()}\n{self.agent.read_log()}")

    def test_over_budget_link_leaves_its_policy_and_stays_over_after_restart(self):
        b = self.lte()["budget"]
        self.assertEqual(b["limit_bytes"], BUDGET)
        self.assertFalse(b["over"])
        self.assertEqual(self.new_flow(7000), LTE, "within budget, web prefers lte")

        # ~3 MB out of wan1 (one flow: it stays on lte while it lives).
        wan1_before = self.site.counters(self.site.ns_edge, "wan1")
        self.sport += 1
        self.site.udp_flow(self.sport, 7000, 2600, size=1200, rate_pps=8000)
        wan1_after = self.site.counters(self.site.ns_edge, "wan1")
        moved = (wan1_after.tx_bytes - wan1_before.tx_bytes) + (wan1_after.rx_bytes - wan1_before.rx_bytes)
        self.assertGreater(moved, BUDGET, "the test's traffic alone crosses the budget")
        b = self.wait_over(5)
        self.assertGreaterEqual(b["used_bytes"], BUDGET)

        self.assertEqual(self.new_flow(7000), FIBER, "over budget, web's new flows leave lte")
        self.assertEqual(self.new_flow(7001), LTE, "metered: allow keeps lte")
        table = self.agent.ctl("links", check=True).stdout
        self.assertIn("over budget (", table)
        self.assertIn("resets on", table)
        events = self.agent.ctl("events", check=True).stdout
        self.assertIn("over budget", events)

        # A restart keeps the count: budget.json in the state directory.
        self.agent.kill(signal.SIGTERM)
        self.agent.start()
        b = self.lte()["budget"]
        self.assertTrue(b["over"], b)
        self.assertGreaterEqual(b["used_bytes"], BUDGET)
        self.assertEqual(self.new_flow(7000), FIBER, "still over budget after a restart")
        self.assertEqual(self.new_flow(7001), LTE)


# Route mode, no translation: a live flow keeps its addresses on either link,
# so over budget it moves (CLV_MOVE_BUDGET), as an SLA move would.
ROUTE_MAPPING = MAPPING.replace("mode: redirect\n    snat: masquerade", "mode: route")


class MeteredLiveFlows(unittest.TestCase):
    def test_live_flows_leave_a_link_that_goes_over_budget(self):
        """One flow of web and one of urgent run on lte while web's flow
        itself pushes lte over its budget: web's moves to fiber mid-stream,
        urgent's (metered: allow) stays. Before the budget fed the kernel's
        leave masks, web's stayed on lte to its end."""
        with EdgeSite(wans=2) as site, Clovisd(site) as agent:
            agent.start(ROUTE_MAPPING)
            results = {}
            threads = [threading.Thread(target=lambda k=k, sport=sport, dport=dport, n=n: results.update(
                {k: site.udp_flow(sport, dport, n, size=1200, rate_pps=1500, timeout=30)}))
                for k, sport, dport, n in (("web", 41000, 7000, 7500), ("urgent", 41001, 7001, 1500))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            web, urgent = results["web"], results["urgent"]
            self.assertGreater(web.by_wan.get(LTE, 0), 0, web)
            self.assertGreater(web.by_wan.get(FIBER, 0), 1000, f"web's live flow did not leave lte: {web}\n"
                               f"{agent.read_log()[-2000:]}")
            self.assertEqual(urgent.by_wan, {LTE: 1500}, urgent)
            flows = {f["sport"]: f for f in agent.ctl_json("flows")["flows"]}
            self.assertEqual(flows[41000]["link"], "fiber", flows[41000])
            moved = agent.ctl("counters", check=True).stdout
            self.assertRegex(moved, r"lte +fiber +budget +1\n", moved)


if __name__ == "__main__":
    sys.exit(privileged.main(__name__))
