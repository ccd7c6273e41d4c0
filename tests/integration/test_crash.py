#!/usr/bin/env python3
"""An apply killed at every step: clovisd --once applies mapping B over A
under strace, which sends SIGKILL on the K-th bpf() call (every one of the
apply itself, one in ten of the start-up) or the K-th netlink sendmsg()
(every one). After each kill:

- the kernel as the killed process left it never lets the active rule set
  steer to a link it doesn't know: every up link its policies can pick is
  that mapping's link in that slot;
- clovisd started again (no -c: the persisted mapping) restores A or B
  whole: the same link entries, link state, rule bank and policy routing as
  a clean apply of that mapping, and nothing of the other one.

    python3 tests/integration/test_crash.py [-k PATTERN]
"""
import json
import os
import shutil
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from clovis_site import Clovisd, require_built  # noqa: E402
from edgesite import EdgeSite  # noqa: E402
import privileged  # noqa: E402

# mpls stays as it is, bb goes, fiber comes (on bb's interface), lte changes
# mode and gets masquerade; the policy and the default change with them.
MAP_A = """version: 1
links:
  - {name: mpls, interface: wan0, gateway: 100.64.0.1, mode: route}
  - {name: bb, interface: wan1, gateway: 100.64.1.1, mode: redirect, snat: masquerade}
  - {name: lte, interface: wan2, gateway: 100.64.2.1, mode: route}
policies:
  - {name: fo, failover: [bb, lte, mpls]}
rules:
  - {name: a, priority: 10, match: {proto: udp, dport: 6001}, policy: fo}
default: {link: mpls}
"""
MAP_B = """version: 1
links:
  - {name: mpls, interface: wan0, gateway: 100.64.0.1, mode: route}
  - {name: fiber, interface: wan1, gateway: 100.64.1.1, mode: route, table: 250}
  - {name: lte, interface: wan2, gateway: 100.64.2.1, mode: redirect, snat: masquerade}
policies:
  - {name: fo, failover: [lte, fiber, mpls]}
rules:
  - {name: b, priority: 10, match: {proto: udp, dport: 6002}, policy: fo}
default: {link: fiber}
"""
MAX_POLICIES = 4096  # CLV_MAX_POLICIES (bpf/include/clovis/abi.h)
CALLS = "bpf,sendmsg,sendto"
WHOLE = ("state", "links", "meta", "rules", "policies", "routing")


def setUpModule():
    privileged.require_root(("ip", "nft", "strace", "bpftool"))
    require_built()


class KilledApply(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.site = EdgeSite(wans=3).start()
        cls.agent = Clovisd(cls.site)
        cls.files = {}
        for name, text in (("A", MAP_A), ("B", MAP_B)):
            cls.files[name] = os.path.join(cls.agent.tmp, name + ".yaml")
            with open(cls.files[name], "w") as f:
                f.write(text)

    @classmethod
    def tearDownClass(cls):
        cls.agent.close()
        cls.site.close()

    def once(self, mapping=None, prefix=()):
        args = list(prefix) + self.agent.base_args() + ["--lan", "lan0", "--once"]
        if mapping:
            args += ["-c", self.files[mapping]]
        return subprocess.run(args, capture_output=True, text=True, timeout=60)

    def bpf_maps(self, *names):
        """Each map's entries, as bpftool formats them with the maps' BTF. One
        bpftool for all of them: each one loads the kernel's BTF first (90 ms
        here), and the test reads the kernel ~170 times."""
        cmds = "".join(f"map dump pinned {self.agent.pin_dir}/maps/{n}\n" for n in names)
        out = subprocess.run(["bpftool", "-j", "batch", "file", "-"], input=cmds, capture_output=True, text=True,
                             check=True, timeout=30)
        return {n: [e["formatted"] for e in r["output"]] for n, r in zip(names, json.loads(out.stdout))}

    def policies(self, keys):
        """The clv_policies entries at `keys`, looked up one by one: the whole
        array dumps as 10 MB of JSON."""
        path = f"{self.agent.pin_dir}/maps/clv_policies"
        cmds = "".join(f"map lookup pinned {path} key {' '.join(str(b) for b in k.to_bytes(4, 'little'))}\n"
                       for k in keys)
        out = subprocess.run(["bpftool", "-j", "batch", "file", "-"], input=cmds, capture_output=True, text=True,
                             check=True, timeout=30)
        return [r["output"]["formatted"]["value"] for r in json.loads(out.stdout)]

    def kernel(self):
        """What the data path reads: active bank and generation, link state,
        every link entry (epochs aside: a new link's is its generation), the
        active bank's policies; and the policy routing in the edge."""
        maps = self.bpf_maps("clv_active", "clv_meta", "clv_links", "clv_rules", "clv_lstate")
        active = maps["clv_active"][0]["value"]
        meta = {e["key"]: e["value"] for e in maps["clv_meta"]}
        links = {}
        for e in maps["clv_links"]:
            v = dict(e["value"])
            v.pop("epoch")
            if v["ifindex"] or v["mark"]:
                links[e["key"]] = json.dumps(v, sort_keys=True)
        m = dict(meta[active])
        m.pop("generation")
        rules = sorted((json.dumps({**e["key"], "bank": 0}, sort_keys=True), json.dumps(e["value"], sort_keys=True))
                       for e in maps["clv_rules"] if e["key"]["bank"] == active)
        # The policies the active rules and default can pick (a bank may hold
        # stale ones past those of its mapping, unreferenced).
        used = {p % MAX_POLICIES for p in {m["default_policy"]} | {json.loads(v)["policy"] for _, v in rules}}
        policies = self.policies(active * MAX_POLICIES + p for p in sorted(used))
        ns = self.site.ns_edge
        ip_rules = self.site.run(ns, "ip", "rule", "show").stdout
        routes = self.site.run(ns, "ip", "route", "show", "table", "all").stdout
        routes = "\n".join(sorted(l for l in routes.splitlines() if "table local" not in l))
        return {"active": active, "generation": meta[active]["generation"],
                "state": maps["clv_lstate"][0]["value"], "links": links, "meta": m, "rules": rules,
                "policies": policies, "routing": ip_rules + routes}

    def whole(self, k):
        """The kernel as a clean apply of A or B leaves it: which one."""
        for name, ref in self.refs.items():
            if all(k[f] == ref[f] for f in WHOLE):
                return name
        return None

    def test_a_kill_at_every_step_restarts_into_one_mapping_whole(self):
        # Clean applies of each, twice (slots are stable, so these repeat).
        self.refs = {}
        for name in ("A", "B", "A"):
            r = self.once(name)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.refs[name] = self.kernel()
            with open(os.path.join(self.agent.state_dir, "state.json")) as f:
                self.refs[name]["names"] = {v["slot"]: n for n, v in json.load(f)["links"].items()}
        self.assertNotEqual(self.refs["A"]["routing"], self.refs["B"]["routing"])
        # How many of those calls an apply of B over A makes, start-up included
        # (strace counts each system call on its own: when=K is bpf's K-th,
        # or sendmsg's K-th).
        count = self.once("B", ["strace", "-f", "-c", "-U", "calls,name", "-e", f"trace={CALLS}"])
        self.assertEqual(count.returncode, 0, count.stderr)
        calls = {l.split()[-1]: int(l.split()[0]) for l in count.stderr.splitlines()
                 if l.split() and l.split()[0].isdigit() and l.split()[-1] in CALLS.split(",")}
        self.assertGreater(calls.get("bpf", 0), 20)
        self.assertGreater(calls.get("sendmsg", 0), 5)
        # Every map write of the apply itself (its last bpf() calls: the
        # start-up before it opens pins and reads), one in 10 of the start-up,
        # and every netlink request (routes, rules, neighbours, link queries).
        n = calls["bpf"]
        plan = [("bpf", k) for k in sorted(set(range(1, n + 1, 10)) | set(range(max(1, n - 30), n + 1)))]
        for name in ("sendmsg", "sendto"):
            plan += [(name, k) for k in range(1, calls.get(name, 0) + 1)]
        killed = 0
        outcomes = {"A": 0, "B": 0}
        running = None
        for call, k in plan:
            if running != "A":
                self.assertEqual(self.once("A").returncode, 0)
                gen_a = self.kernel()["generation"]
            r = self.once("B", ["strace", "-f", "-qq", "-o", "/dev/null", "-e", f"trace={call}",
                                "-e", f"inject={call}:signal=SIGKILL:when={k}"])
            k = f"{call} #{k}"
            if r.returncode == 0:
                running = "B"
                continue  # the apply finished before its K-th call
            killed += 1
            left = self.kernel()
            # The rule set that runs picks only links it knows, in their slots.
            self.assertIn(left["generation"], (gen_a, gen_a + 1), f"kill at {k}")
            mine, other = ("A", "B") if left["generation"] == gen_a else ("B", "A")
            ref, alt = self.refs[mine], self.refs[other]
            for pol in left["policies"]:
                for m in pol["members"][:pol["n_members"]]:
                    slot = m["link"]
                    if not left["state"]["up"] >> slot & 1:
                        continue
                    # Its link in that slot, or the same link with the other
                    # mapping's settings (one write changes them for both).
                    known = [ref["links"].get(slot)]
                    if alt["names"].get(slot) == ref["names"].get(slot):
                        known.append(alt["links"].get(slot))
                    self.assertIn(left["links"].get(slot), known,
                                  f"kill at call {k}: slot {slot} is up with a link mapping {mine} does not know")
            # Started again, it runs one of them, whole.
            r = self.once()
            self.assertEqual(r.returncode, 0, f"kill at {k}: restart failed: {r.stderr}")
            after = self.kernel()
            name = self.whole(after)
            if name is None:
                diff = {n: [f for f in WHOLE if after[f] != ref[f]]
                        for n, ref in self.refs.items()}
                self.fail(f"kill at call {k}: restarted into neither A nor B whole (differs in {diff}):\n"
                          f"{json.dumps(after, indent=1)}\n{r.stderr}")
            outcomes[name] += 1
            running = name
            gen_a = after["generation"]
        print(f"  calls: {calls}; killed at {killed} of {len(plan)} planned; restarted into A "
              f"{outcomes['A']} times, B {outcomes['B']} times")
        self.assertGreater(killed, 10)
        self.assertGreater(outcomes["A"], 0)
        self.assertGreater(outcomes["B"], 0)


if __name__ == "__main__":
    if shutil.which("strace") is None:
        print("strace not found (scripts/bootstrap.sh installs it)", file=sys.stderr)
    privileged.main(__name__)
