#!/usr/bin/env python3
"""Prometheus metrics with real parts: clovisd serves /metrics on a loopback
address of the edge namespace (--metrics-listen), a real Prometheus (Debian
`prometheus`, its own config, storage and loopback address in that
namespace, scrape interval 1 s) scrapes it, real UDP traffic crosses one
link, and Prometheus's HTTP API (/api/v1/query) must show
rate(clovis_link_transmit_bytes_total) on that link agreeing with the
interface's own counters, and clovis_link_state{state="down"} flip to 1 when
the link loses carrier. A raw scrape passes `promtool check metrics`.

    python3 tests/integration/test_metrics.py [-k PATTERN]
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from clovis_site import REPO, Clovisd, require_built  # noqa: E402
from edgesite import CLIENT_V4, SERVER_V4, EdgeSite  # noqa: E402
from extauthz_wire import check_request  # noqa: E402
import privileged  # noqa: E402
from proxy_site import grpc_python  # noqa: E402

METRICS = "127.0.0.1:9464"
PROM = "127.0.0.1:19090"

MAPPING = """version: 1
links:
  - name: main
    interface: wan0
    gateway: 100.64.0.1
    mode: route
  - name: alt
    interface: wan1
    gateway: 100.64.1.1
    mode: redirect
    snat: masquerade
    health:
      probes: [{icmp: 100.64.1.1}]
      interval: 300ms
      timeout: 250ms
policies:
  - {name: alt-first, failover: [alt, main]}
rules:
  - {name: bulk, priority: 10, match: {proto: udp, dport: 7000}, policy: alt-first}
default: {action: bypass}
"""

RATE_PPS = 2000
SIZE = 1000           # UDP payload: ~2 MB/s on the link
SECONDS = 8
WINDOW = 4            # rate(...[4s]) evaluated inside the flow
TOLERANCE = 0.15      # Prometheus extrapolates over its scrapes; we sample the interface each 0.2 s

PROM_CONFIG = f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: clovis
    scrape_interval: 1s
    scrape_timeout: 900ms
    static_configs:
      - targets: ["{METRICS}"]
"""

# Runs in the edge namespace: an HTTP GET, the body on stdout.
FETCH = ("import sys, urllib.request;"
         "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())")


def setUpModule():
    privileged.require_root(("ip", "nft", "prometheus", "promtool"))
    require_built()


class Metrics(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="clovis-metrics-")
        self.site = EdgeSite(wans=2).start()
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.addCleanup(self.site.close)  # stops Prometheus and clovisd (popen'd or not) last
        self.agent = Clovisd(self.site)
        self.addCleanup(self.agent.close)
        self.agent.start(MAPPING, extra=["--metrics-listen", METRICS])
        with open(os.path.join(self.tmp, "prometheus.yml"), "w") as f:
            f.write(PROM_CONFIG)
        self.prom = self.site.popen(self.site.ns_edge, [
            "prometheus", f"--config.file={self.tmp}/prometheus.yml",
            f"--storage.tsdb.path={self.tmp}/tsdb", f"--web.listen-address={PROM}",
            "--log.level=warn"])
        self.wait_for(lambda: self.query("up") == 1.0, 20, "Prometheus never scraped clovisd (up != 1)")

    def get(self, url):
        return self.site.run(self.site.ns_edge, ["python3", "-c", FETCH, url], timeout=10).stdout

    def query(self, expr, at=None):
        """The single value of an instant query, or None (no series / not ready)."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        try:
            body = self.get(f"http://{PROM}/api/v1/query?" + urllib.parse.urlencode(params))
        except Exception:  # Prometheus still starting
            return None
        r = json.loads(body)
        self.assertEqual(r["status"], "success", body)
        res = r["data"]["result"]
        if not res:
            return None
        self.assertEqual(len(res), 1, f"{expr}: more than one series: {res}")
        return float(res[0]["value"][1])

    def wait_for(self, cond, timeout, msg):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return
            time.sleep(0.3)
        self.fail(msg + f"\nclovisd log:\n{self.agent.read_log()[-2000:]}")

    def test_rate_on_the_link_taken_and_state_flip(self):
        site = self.site
        samples = []  # (unix time, tx_bytes of the edge's wan1)
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                samples.append((time.time(), site.counters(site.ns_edge, "wan1")["tx_bytes"]))
                time.sleep(0.2)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            t0 = time.time()
            r = site.udp_flow(40000, 7000, RATE_PPS * SECONDS, size=SIZE, rate_pps=RATE_PPS, settle=0.5)
        finally:
            stop.set()
            sampler.join()
        self.assertEqual(r.by_wan.get(1, 0), r.received, f"the flow should take wan1 (alt): {r.by_wan}")
        self.assertGreater(r.received, RATE_PPS * SECONDS * 0.95)

        # Inside the flow, clear of its start and end.
        at = t0 + SECONDS - 2
        time.sleep(max(0.0, at + 2 - time.time()))  # Prometheus has scraped past `at`

        def iface_bytes(t):  # linear between our samples
            for (ta, a), (tb, b) in zip(samples, samples[1:]):
                if ta <= t <= tb:
                    return a + (b - a) * (t - ta) / (tb - ta)
            self.fail(f"no interface sample around {t}")

        iface_rate = (iface_bytes(at) - iface_bytes(at - WINDOW)) / WINDOW
        prom_rate = self.query(f'rate(clovis_link_transmit_bytes_total{{link="alt"}}[{WINDOW}s])', at)
        other = self.query(f'rate(clovis_link_transmit_bytes_total{{link="main"}}[{WINDOW}s])', at)
        print(f"alt: Prometheus {prom_rate:.0f} B/s, wan1 {iface_rate:.0f} B/s; main: {other} B/s")
        self.assertGreater(iface_rate, RATE_PPS * SIZE * 0.8)
        self.assertIsNotNone(prom_rate)
        self.assertLess(abs(prom_rate - iface_rate) / iface_rate, TOLERANCE,
                        f"Prometheus {prom_rate:.0f} B/s vs interface {iface_rate:.0f} B/s")
        self.assertLess(other or 0.0, iface_rate * 0.01, "the traffic did not take link main")
        self.assertGreater(self.query('clovis_link_probes_sent_total{link="alt",target="icmp 100.64.1.1"}'), 0)

        # The expiry sweep's per-link counts (no scrape walks the table): the
        # one UDP flow on alt, translated, so holding one NAT port.
        self.wait_for(lambda: self.query('clovis_link_flows{link="alt"}') == 1.0, 15,
                      "clovis_link_flows{link=alt} never showed the flow")
        self.assertEqual(self.query('clovis_link_nat_ports_in_use{link="alt"}'), 1.0)
        self.assertEqual(self.query('clovis_link_flows{link="main"}'), 0.0)
        self.assertEqual(self.query('clovis_link_drops_total{link="alt",reason="nat_refused"}'), 0.0)
        # Every name the operator kit's rules and dashboard use is served
        # (the other direction is checked in the promtool test), but the
        # migrations, which appear once a flow has moved: this flow is
        # translated, so it restarts on main instead of moving.
        text = self.get(f"http://{METRICS}/metrics")
        with open(os.path.join(REPO, "packaging", "prometheus", "metric-names.txt")) as f:
            known = set(f.read().split())
        served = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and line[0] != "#"}
        self.assertEqual(known - served, {"clovis_link_flows_migrated_total"},
                         "named in packaging/prometheus/metric-names.txt, not served")

        # Carrier loss on wan1: the down series goes 0 -> 1, up 1 -> 0.
        self.assertEqual(self.query('clovis_link_state{link="alt",state="down"}'), 0.0)
        site.link_down(1)
        self.wait_for(lambda: self.query('clovis_link_state{link="alt",state="down"}') == 1.0, 10,
                      "clovis_link_state{link=alt,state=down} never became 1 after carrier loss")
        self.assertEqual(self.query('clovis_link_state{link="alt",state="up"}'), 0.0)
        self.assertEqual(self.query('clovis_policy_links{policy="alt-first",state="down"}'), 1.0)
        self.assertGreaterEqual(self.query('clovis_link_state_changes_total{link="alt"}'), 1.0)

    def test_scrape_is_clean_for_promtool_and_status_says_where(self):
        text = self.get(f"http://{METRICS}/metrics")
        p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual((p.stdout + p.stderr).strip(), "", "promtool has remarks")
        for line in ('clovis_link_state{link="alt",state="up"} 1', 'clovis_mapping_generation 1',
                     '# TYPE clovis_link_probe_rtt_seconds histogram', 'clovis_build_info{version="'):
            self.assertIn(line, text)
        st = self.agent.ctl_json("status")
        self.assertEqual(st["metrics_url"], f"http://{METRICS}/metrics")
        # Every name served is one the operator kit's rules and dashboard may use.
        with open(os.path.join(REPO, "packaging", "prometheus", "metric-names.txt")) as f:
            known = set(f.read().split())
        served = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and line[0] != "#"}
        ours = {n for n in served if n.startswith("clovis_")}
        self.assertGreater(len(ours), 30)
        self.assertEqual(ours - known, set(), "served, not in packaging/prometheus/metric-names.txt")
        # The rest is prometheus-cpp's exposer describing itself (docs/METRICS.md).
        self.assertEqual({n for n in served - ours if not n.startswith("exposer_")}, set())

    def sample(self, text, series):
        for line in text.splitlines():
            if line.startswith(series + " "):
                return float(line.rsplit(" ", 1)[1])
        self.fail(f"no {series} in the scrape")

    def test_applies_and_checks_are_counted_where_they_happen(self):
        """The hooks, end to end: a rejected and a good apply over the API, and
        two ext_authz Checks from a real gRPC client (test_authz.py's)."""
        bad = os.path.join(self.tmp, "bad.yaml")
        with open(bad, "w") as f:
            f.write(MAPPING.replace("policy: alt-first", "policy: nowhere"))
        self.assertNotEqual(self.agent.ctl("apply", "-f", bad).returncode, 0)
        good = os.path.join(self.tmp, "good.yaml")
        with open(good, "w") as f:
            f.write(MAPPING.replace("priority: 10", "priority: 11"))
        self.agent.ctl("apply", "-f", good, check=True)
        text = self.get(f"http://{METRICS}/metrics")
        self.assertEqual(self.sample(text, 'clovis_applies_total{result="rejected"}'), 1)
        self.assertEqual(self.sample(text, 'clovis_applies_total{result="ok"}'), 1)
        self.assertEqual(self.sample(text, "clovis_mapping_generation"), 2)
        self.assertGreater(self.sample(text, "clovis_last_apply_timestamp_seconds"), time.time() - 60)

        py = grpc_python()
        if py is None:
            self.skipTest("needs a python3 with grpc (Debian: python3-grpcio)")
        bodies = [check_request(CLIENT_V4, 41000 + i, SERVER_V4, 8000).hex() for i in range(2)]
        out = subprocess.run([py, os.path.join(HERE, "test_authz.py"), "_client", self.agent.authz_socket],
                             input=json.dumps(bodies), capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        text = self.get(f"http://{METRICS}/metrics")
        self.assertEqual(self.sample(text, 'clovis_authz_checks_total{result="allowed"}'), 2)
        self.assertEqual(self.sample(text, "clovis_authz_check_duration_seconds_count"), 2)
        self.assertGreater(self.sample(text, "clovis_authz_check_duration_seconds_sum"), 0)


if __name__ == "__main__":
    sys.exit(privileged.main(__name__))
