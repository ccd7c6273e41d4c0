#!/usr/bin/env python3
"""http: and dns: health probes through real links: a tiny HTTP server and a
tiny DNS responder in the cloud namespace (probe_responders.py), reached by
way of WAN 0 and WAN 1. Each link goes down when its target answers badly
(HTTP 503, no HTTP listener, no DNS answer, SERVFAIL), with the reason in
clovisctl links and events, and comes back when the answers do.

    python3 tests/integration/test_probes.py [-k PATTERN]
"""
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from clovis_site import Clovisd  # noqa: E402
from edgesite import EdgeSite  # noqa: E402
import privileged  # noqa: E402

HTTP_PORT, DNS_PORT = 8080, 5353
MAPPING = f"""version: 1
links:
  - name: web
    interface: wan0
    gateway: 100.64.0.1
    mode: redirect
    snat: masquerade
    health:
      probes: [{{http: "http://203.0.113.10:{HTTP_PORT}/health"}}]
      interval: 200ms
      timeout: 150ms
      down: 2
      up: 2
  - name: resolver
    interface: wan1
    gateway: 100.64.1.1
    mode: redirect
    snat: masquerade
    health:
      probes: [{{dns: "203.0.113.10:{DNS_PORT}", name: example.com}}]
      interval: 200ms
      timeout: 150ms
      down: 2
      up: 2
policies:
  - {{name: p, failover: [web, resolver]}}
default: {{policy: p}}
"""


def setUpModule():
    privileged.require_root(("ip", "nft", "ethtool"))


class Probes(unittest.TestCase):
    def setUp(self):
        self.site = EdgeSite(wans=2).start()
        self.addCleanup(self.site.close)
        self.http_ctl = os.path.join(self.site.logdir, "http.ctl")
        self.dns_ctl = os.path.join(self.site.logdir, "dns.ctl")
        self.answer("http", "200")
        self.answer("dns", "NOERROR")
        self.http = self.responder("http", HTTP_PORT, self.http_ctl)
        self.responder("dns", DNS_PORT, self.dns_ctl)
        self.agent = Clovisd(self.site)
        self.addCleanup(self.agent.close)
        self.agent.start(MAPPING)

    def answer(self, kind, what):
        with open(self.http_ctl if kind == "http" else self.dns_ctl, "w") as f:
            f.write(what + "\n")

    def responder(self, kind, port, ctl):
        p = self.site.popen(self.site.ns_cloud, [sys.executable, os.path.join(HERE, "probe_responders.py"),
                                                 kind, self.site.server, str(port), ctl])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with open(p.log_path) as f:
                if "ready" in f.read():
                    return p
            self.assertIsNone(p.poll(), f"{kind} responder exited")
            time.sleep(0.05)
        self.fail(f"{kind} responder not ready")

    def links(self):
        return {l["name"]: l for l in self.agent.ctl_json("links")["links"]}

    def wait_state(self, name, state, timeout=4.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            link = self.links()[name]
            if link["state"] == state:
                return link
            time.sleep(0.05)
        self.fail(f"link {name} not {state} within {timeout}s: {self.links()[name]}\n{self.agent.read_log()[-3000:]}")

    def last_event(self, name):
        events = [e for e in self.agent.ctl_json("events")["events"] if e["link"] == name]
        self.assertTrue(events, f"no event for {name}")
        return events[-1]

    def settle_up(self, name):
        """Up, and stays up over several rounds: the probes are being answered."""
        time.sleep(1.0)
        link = self.wait_state(name, "up", 0.1)
        self.assertEqual(link["loss_pct"], 0, link)
        return link

    def test_http_probe_follows_the_status_and_the_listener(self):
        self.settle_up("web")
        with open(self.http.log_path) as f:  # bound to wan0: NATed by WAN router 0 only
            peers = {line.split()[1] for line in f if line.startswith("from ")}
        self.assertEqual(peers, {self.site.egress_address(0)})
        self.answer("http", "503")
        link = self.wait_state("web", "down")
        self.assertIn("http 203.0.113.10:8080/health: http 503", link["reason"])
        self.assertEqual(self.last_event("web")["to"], "down")
        self.assertIn("http 503", self.last_event("web")["reason"])
        self.answer("http", "302")  # a redirect is an answer too
        self.wait_state("web", "up")
        self.assertEqual(self.last_event("web")["to"], "up")
        self.site.stop(self.http)  # nothing listens: the cloud resets the connection
        link = self.wait_state("web", "down")
        self.assertIn("connection refused", link["reason"])
        self.assertEqual(self.links()["resolver"]["state"], "up")  # the other link is not involved

    def test_dns_probe_follows_the_resolver(self):
        self.settle_up("resolver")
        self.answer("dns", "drop")
        link = self.wait_state("resolver", "down")
        self.assertIn("dns 203.0.113.10:5353 example.com: timeout", link["reason"])
        self.assertIn("timeout", self.last_event("resolver")["reason"])
        self.answer("dns", "NXDOMAIN")  # a resolver that answers "no such name" works
        self.wait_state("resolver", "up")
        self.answer("dns", "SERVFAIL")
        link = self.wait_state("resolver", "down")
        self.assertIn("dns SERVFAIL", link["reason"])
        self.assertEqual(self.links()["web"]["state"], "up")


ICMP_MAPPING = "version: 1\nlinks:\n" + "".join(f"""  - name: l{i}
    interface: wan{i}
    gateway: 100.64.{i}.1
    mode: redirect
    health:
      probes: [{{icmp: 100.64.{i}.1}}]
      interval: 100ms
      timeout: 90ms
""" for i in range(3)) + "default: {link: l0}\n"


class IcmpLatency(unittest.TestCase):
    def test_each_link_measures_its_own_round_trip(self):
        """Replies of every link arrive in one wake-up of the health thread;
        each RTT ends when the kernel received its reply (SO_TIMESTAMPNS), not
        at the wake-up. Timed by the wake-up, all three links measured the
        very same latency and jitter, to the last bit, and ~100 us of it was
        the thread's wake-up, not the link (seen failing so before the fix)."""
        with EdgeSite(wans=3) as site, Clovisd(site) as agent:
            agent.start(ICMP_MAPPING)
            time.sleep(2.0)
            links = agent.ctl_json("links")["links"]
            self.assertEqual([l["state"] for l in links], ["up"] * 3, links)
            latencies = [l["latency_ms"] for l in links]
            jitters = [l["jitter_ms"] for l in links]
            self.assertTrue(all(x > 0 for x in latencies), latencies)
            self.assertEqual(len(set(latencies)), 3, f"links share one latency: {latencies}")
            self.assertEqual(len(set(jitters)), 3, f"links share one jitter: {jitters}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
