"""The two mappings the soak alternates between, on edgesite's three WANs.

Both carry the same three UDP flows, one per link: each flow's rule (by dport)
picks a failover policy whose first link is its own, so a flap of that link
moves it to the next one. They differ in rules (B adds one, and sends the L7
rule's Checks to `c` instead of `b`) and in one link's settings (`c`'s health
probing). Links `b` and `c` steer in redirect mode with clovis's own SNAT, `a`
in route mode (policy routing), so both data paths are soaked."""

PORTS = [5000, 5001, 5002]  # the flows' dports, on links a, b and c

_HEAD = """version: 1
links:
  - {name: a, interface: wan0, gateway: 100.64.0.1, mode: route}
  - {name: b, interface: wan1, gateway: 100.64.1.1, mode: redirect, snat: masquerade}
  - name: c
    interface: wan2
    gateway: 100.64.2.1
    mode: redirect
    snat: masquerade
    health:
      probes: [{icmp: 100.64.2.1}]
      interval: %s
      down: 3
      up: %d
policies:
  - {name: via-a, failover: [a, b]}
  - {name: via-b, failover: [b, c]}
  - {name: via-c, failover: [c, a]}
rules:
  - {name: flow-a, priority: 10, match: {proto: udp, dport: 5000}, policy: via-a}
  - {name: flow-b, priority: 11, match: {proto: udp, dport: 5001}, policy: via-b}
  - {name: flow-c, priority: 12, match: {proto: udp, dport: 5002}, policy: via-c}
  - name: minions-video
    priority: 20
    match: {dst: 203.0.113.0/24, dport: 8000, proto: tcp, headers: {end-user: minions}}
    link: %s
"""

MAP_A = _HEAD % ("500ms", 3, "b") + "default: {link: a}\n"

MAP_B = (_HEAD % ("300ms", 2, "c")
         + "  - {name: dns-b, priority: 30, match: {proto: udp, dport: 53}, policy: via-b}\n"
         + "default: {link: a}\n")
