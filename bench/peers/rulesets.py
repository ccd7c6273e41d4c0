"""What the peer benchmarks compare (bench/peers/run.py): the measured flow, the rule
sets of every peer (clovis mapping, iptables-restore script, nft map) and the peers'
policy routing. Python 3 stdlib only."""
import time

SERVER = "203.0.113.10"
UDP_PORT, CONN_PORT, IPERF_PORT = 9000, 9001, 5201
MARKS = {0: 0x100, 1: 0x200}   # per-link mark of the iptables/nft peers (mwan3 style, mask 0xff00)
TABLES = {0: 100, 1: 101}
TARGET_WAN = 1                 # the measured flow's rule sends it out wan1; the default is wan0
SEED = 0x636c7673


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ----- rule sets --------------------------------------------------------------------------
def filler_dst(i):
    """Distinct /32s outside every prefix of the site: rules that never match."""
    return f"10.{128 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}"


def rule_list(n, where, rng):
    """[(dst, wan)] of n rules; the measured flow's rule (dst SERVER -> wan1) is last
    (where='last') or at a random position (where='random')."""
    rules = [(filler_dst(i), i % 2) for i in range(n - 1)]
    pos = n - 1 if where == "last" else rng.randrange(n)
    rules.insert(pos, (SERVER, TARGET_WAN))
    return rules, pos


def clovis_mapping(rules, mode):
    """mode: route, redirect, or snat (redirect with clovis's own masquerade)."""
    out = ["version: 1", "links:"]
    for i in (0, 1):
        out += [f"  - name: l{i}", f"    interface: wan{i}", f"    gateway: 100.64.{i}.1",
                f"    mode: {'redirect' if mode == 'snat' else mode}"]
        if mode == "snat":
            out.append("    snat: masquerade")
    out.append("rules:")
    for k, (dst, wan) in enumerate(rules):
        out.append(f"  - {{name: r{k}, priority: {k + 1}, match: {{dst: {dst}/32}}, link: l{wan}}}")
    out += ["default:", "  link: l0", ""]
    return "\n".join(out)


def iptables_script(rules, conntrack):
    """One mangle MARK rule per mapping rule, as mwan3 generates them (each guarded by
    `-m mark --mark 0/MASK`, so MARK, which does not stop the walk, keeps the first
    match). conntrack=True is mwan3's default: restore the connection's mark first and
    walk the rules only for a packet without one (a flow's first packet)."""
    out = ["*mangle", ":clvrules - [0:0]"]
    if conntrack:
        out += ["-A PREROUTING -i lan0 -j CONNMARK --restore-mark --nfmask 0xff00 --ctmask 0xff00",
                "-A PREROUTING -i lan0 -m mark --mark 0x0/0xff00 -j clvrules",
                "-A PREROUTING -i lan0 -j CONNMARK --save-mark --nfmask 0xff00 --ctmask 0xff00"]
    else:
        out.append("-A PREROUTING -i lan0 -j clvrules")
    out += [f"-A clvrules -d {dst}/32 -m mark --mark 0x0/0xff00 -j MARK --set-xmark {MARKS[w]:#x}/0xff00"
            for dst, w in rules]
    out += ["COMMIT", ""]
    return "\n".join(out)


def nft_script(rules):
    elems = ",\n".join(f"    {dst} : {MARKS[w]:#x}" for dst, w in rules)
    return ("table ip clvbench {\n  map m {\n    type ipv4_addr : mark\n    elements = {\n" + elems +
            "\n    }\n  }\n  chain pre {\n    type filter hook prerouting priority mangle; policy accept;\n"
            "    iifname \"lan0\" meta mark set ip daddr map @m\n  }\n}\n")


def peer_routing(site, on):
    """The policy routing of the iptables/nft peers: one fwmark rule and table per link."""
    e = site.ns_edge
    for w in (0, 1):
        verb = "add" if on else "del"
        site.run(e, "ip", "rule", verb, "fwmark", f"{MARKS[w]:#x}/0xff00", "table", TABLES[w], "pref", 100 + w,
                 check=on)
        if on:
            site.run(e, "ip", "route", "replace", "default", "via", f"100.64.{w}.1", "dev", f"wan{w}",
                     "table", TABLES[w])
        else:
            site.run(e, "ip", "route", "flush", "table", TABLES[w], check=False)
