#!/usr/bin/env python3
"""The clovis demo: a throwaway edge site (network namespaces: LAN, edge host,
three WAN "ISPs", one cloud), the real clovisd steering real traffic on it,
what clovisctl and the counters show, a link failure, and cleanup."""
import os
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

from clovis_site import CLOVISCTL, Clovisd  # noqa: E402
from edgesite import EdgeSite  # noqa: E402
import proxy_site  # noqa: E402

MAPPING = os.path.join("examples", "demo-site.yaml")  # relative: the demo runs in the repo
BOLD, DIM, RESET = ("\033[1m", "\033[2m", "\033[0m") if sys.stdout.isatty() else ("", "", "")


def step(title):
    print(f"\n{BOLD}== {title}{RESET}", flush=True)


def sh(*argv):
    print(f"{DIM}$ {' '.join(os.path.relpath(a, REPO) if a.startswith(REPO) else a for a in argv)}{RESET}")
    out = subprocess.run(argv, capture_output=True, text=True)
    print((out.stdout + out.stderr).rstrip())


def ctl(agent, *args):
    """Runs clovisctl against the demo's clovisd and shows it like a terminal would."""
    print(f"{DIM}$ clovisctl {' '.join(args)}{RESET}")
    out = agent.ctl(*args)
    print("\n".join("  " + line for line in (out.stdout + out.stderr).rstrip().splitlines()))


def show_counters(site, agent, names):
    links = {l["name"]: l for l in agent.ctl_json("links")["links"]}
    print(f"  {'LINK':10} {'IFACE':6} {'CLOVIS TX PKTS':>14} {'INTERFACE TX PKTS':>17}")
    for i, name in enumerate(names):
        print(f"  {name:10} {links[name]['interface']:6} {links[name]['tx_packets']:>14} "
              f"{site.wan_counters(i).tx_packets:>17}")


def show_envoy(site, agent, names):
    py = proxy_site.grpc_python()
    if py is None:
        print("  skipped: needs python3-grpcio (scripts/bootstrap.sh installs it)")
        return
    port = 10000
    config, path = proxy_site.render(agent, port)
    print(f"{DIM}$ clovisctl envoy -o json --upstream video={site.server_v4}:8000 --listen "
          f"{site.lan_gateway_v4}:{port} > envoy.json{RESET}")
    for c in config["static_resources"]["clusters"]:
        opts = c.get("upstream_bind_config", {}).get("socket_options", [])
        marks = [o["int_value"] for o in opts if o["level"] == 1 and o["name"] == 36]
        if c["name"].startswith("video"):
            print(f"  cluster {c['name']:16} " + (f"SO_MARK {marks[0]:#x}" if marks else "unmarked (no answer)"))
    proxy_site.start_upstream(site)
    proxy_site.start_proxy(site, py, path, port)
    print("  mini_envoy.py (does what Envoy does with that file) listens on the LAN gateway; "
          "the LAN client sends 4 HTTP requests per user:")
    for user in ("minions", "boss"):
        before = site.wan_counters_all()
        answers = proxy_site.requests(site, port, user, 4)
        after = site.wan_counters_all()
        got = {names[i]: (after[i] - before[i])["rx_bytes"] for i in range(len(names))}
        links = sorted({a["link"] or "(none)" for a in answers})
        per_wan = ", ".join(f"{n} {b / 1e6:.1f} MB" for n, b in got.items() if b > 10000)
        print(f"  end-user: {user:8} -> x-clovis-link {', '.join(links):16} -> received over: {per_wan}")
    print("  (minions: rule minions-video sends them to lte; boss: the default policy bulk spreads sessions "
          "over mpls and broadband)")
    ctl(agent, "flows", "-o", "wide", "--dport", str(port), "--last", "8")


METRICS = "127.0.0.1:9464"  # inside the edge namespace
# A few series of each kind; the scrape has ~40 families (docs/METRICS.md).
METRIC_LINES = ('clovis_link_state{link="mpls",', 'clovis_link_transmit_bytes_total',
                'clovis_link_flows_migrated_total', 'clovis_link_latency_seconds', 'clovis_policy_links{policy="interactive"',
                'clovis_applies_total{result="ok"}', 'clovis_map_entries{map="clv_flows"}')


def show_metrics(site):
    fetch = ("import sys, urllib.request;"
             "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())")
    text = site.run(site.ns_edge, ["python3", "-c", fetch, f"http://{METRICS}/metrics"], timeout=10).stdout
    print(f"  $ curl http://{METRICS}/metrics   ({len(text.splitlines())} lines; a few of them)")
    for line in text.splitlines():
        if line.startswith(METRIC_LINES):
            print(f"    {line}")


def main():
    os.chdir(REPO)
    names = ["mpls", "broadband", "lte"]
    step("The mapping: validated and explained offline")
    sh(CLOVISCTL, "validate", "-f", MAPPING)
    sh(CLOVISCTL, "simulate", "-f", MAPPING, "--src", "10.1.0.2", "--dst", "203.0.113.10", "--proto", "udp",
       "--sport", "40000", "--dport", "5060")

    step("A throwaway edge site: LAN -> edge host -> 3 WAN routers -> cloud (network namespaces)")
    with EdgeSite(wans=3) as site, Clovisd(site) as agent:
        print(f"  namespaces {site.prefix}{{lan,edge,wan0,wan1,wan2,cloud}}; server {site.server_v4}")
        t0 = time.monotonic()
        agent.start(open(MAPPING).read(), extra=["--metrics-listen", METRICS])
        print(f"  clovisd attached to {site.ns_edge}:lan0, applied the mapping and serves its API, in "
              f"{(time.monotonic() - t0) * 1000:.0f} ms. Its log:")
        for line in agent.read_log().splitlines():
            print(f"    {line}")
        ctl(agent, "status")

        step("Real traffic: each flow leaves by the WAN its rule and policy choose")
        voice = site.udp_flow(40000, 5060, 2000, rate_pps=20000)
        print(f"  voice      udp :5060  -> WAN {sorted(voice.by_wan)}  ({voice.received}/{voice.sent} datagrams)")
        video = site.tcp_transfer(8000, 5_000_000)
        print(f"  video      tcp :8000  -> WAN [{video.wan}]  ({video.bytes_received / 1e6:.1f} MB, "
              f"{video.mbit_per_s:.0f} Mbit/s, NATed by clovis)")
        tele = site.udp_flow(40001, 7000, 1000, dst="198.51.100.5")
        print(f"  telemetry  udp 198.51.100.5 -> WAN {sorted(tele.by_wan)}  (no NAT: like a tunnel)")
        spread = {}
        for i in range(40):
            r = site.udp_flow(41000 + i, 443, 20)
            for w in r.by_wan:
                spread[w] = spread.get(w, 0) + 1
        print(f"  bulk       40 flows   -> WAN {dict(sorted(spread.items()))}  (policy bulk: mpls 1 : broadband 3)")

        step("What clovis counted, next to the interfaces' own counters (the difference is ARP)")
        show_counters(site, agent, names)
        step("The links and the live flow table, as clovisctl shows them")
        ctl(agent, "links")
        ctl(agent, "flows", "--last", "8")
        ctl(agent, "simulate", "--src", site.client_v4, "--dst", site.server_v4, "--proto", "tcp",
            "--sport", "45000", "--dport", "8000")

        step("L7: an Envoy-like proxy on the edge host asks clovisd which link, per request")
        show_envoy(site, agent, names)

        step("MPLS loses carrier: the live voice call fails over to broadband (policy interactive)")
        result = {}
        th = threading.Thread(target=lambda: result.update(r=site.udp_flow(40000, 5060, 9000, rate_pps=3000)))
        th.start()
        time.sleep(1.0)
        site.link_down(0)
        t_down = time.monotonic()
        th.join(30)
        r = result["r"]
        print(f"  voice datagrams per WAN: {dict(sorted(r.by_wan.items()))}; lost {r.lost} of {r.sent} "
              f"at 3000/s: a gap of about {r.lost / 3:.0f} ms")
        ctl(agent, "events")
        ctl(agent, "links")
        step(f"The same, as Prometheus scrapes it (clovisd --metrics-listen {METRICS}; docs/METRICS.md)")
        show_metrics(site)
        site.link_up(0)
        _ = t_down
    step("Cleaned up: namespaces, BPF pins and processes are gone")
    left = [n for n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
            if n.startswith(site.prefix)]
    print(f"  namespaces left: {left or 'none'}")


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("demo: needs root (network namespaces and BPF)")
    main()
