#!/usr/bin/env python3
"""The agent API with real traffic: a throwaway edge site, the real clovisd
serving its API on a socket in its temp dir, driven by the real clovisctl:
apply with a diff, flows on the right links with the right counters, a live
watch, simulate against the running mapping, rejected mappings, SIGHUP,
commit-confirm, permissions, one agent per socket, and a restart that keeps
the mapping and the flows. One test talks gRPC without clovisctl (python3-grpcio)
to hold the error contract itself: INVALID_ARGUMENT with the diagnostics trailer.

    python3 tests/integration/test_agent_api.py [-k PATTERN]
"""
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from clovis_site import CLOVISCTL, CLOVISD, REPO, Clovisd, require_built  # noqa: E402
from edgesite import EdgeSite  # noqa: E402
import privileged  # noqa: E402

MAPPING = """version: 1
links:
  - {name: primary, interface: wan0, gateway: 100.64.0.1, mode: route}
  - {name: broadband, interface: wan1, gateway: 100.64.1.1, mode: redirect, snat: masquerade}
  - {name: lte, interface: wan2, gateway: 100.64.2.1, mode: route}
rules:
  - {name: udp-bb, priority: 10, match: {proto: udp, dport: 9001}, link: broadband}
  - {name: udp-lte, priority: 20, match: {proto: udp, dport: 9002}, link: lte}
  - {name: tcp-bb, priority: 30, match: {proto: tcp, dport: 8001}, link: broadband}
default: {action: bypass}
"""

# 9001 moves to lte.
MAPPING_2 = MAPPING.replace("dport: 9001}, link: broadband", "dport: 9001}, link: lte")

# Line 4, a misspelt key.
BAD = MAPPING.replace("gateway: 100.64.1.1", "gatway: 100.64.1.1")


def setUpModule():
    privileged.require_root(("ip", "nft", "setpriv"))
    require_built()


def read_lines(proc, until, timeout):
    """JSON lines of proc's stdout until `until(obj)` is true; returns them."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if not ready:
            continue
        line = proc.stdout.readline()
        if not line:
            break
        obj = json.loads(line)
        seen.append(obj)
        if until(obj):
            return seen
    raise AssertionError(f"not seen within {timeout}s; got {seen[-5:]}")


class AgentApi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.site = EdgeSite(wans=3).start()
        cls.agent = Clovisd(cls.site)
        try:
            cls.agent.start(MAPPING)
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.agent.close()
        cls.site.close()

    def setUp(self):
        # Every test starts from a running agent with MAPPING and nothing to confirm.
        if self.agent.proc is None or self.agent.proc.poll() is not None:
            self.agent.start()
        self.agent.ctl("confirm")
        if self.mapping()["mapping_yaml"] != MAPPING:
            self.apply(MAPPING)
        self.agent.write_mapping(MAPPING)

    def mapping(self):
        return self.agent.ctl_json("get", "mapping")

    def apply(self, text, *extra):
        path = os.path.join(self.agent.tmp, "apply.yaml")
        with open(path, "w") as f:
            f.write(text)
        return self.agent.ctl_json("apply", "-f", path, *extra)

    def flows(self, *filters):
        return self.agent.ctl_json("flows", *filters)["flows"]

    def links(self):
        return {l["name"]: l for l in self.agent.ctl_json("links")["links"]}

    def test_apply_reports_the_diff_and_a_new_generation(self):
        gen = self.mapping()["generation"]
        dry = self.apply(MAPPING_2, "--dry-run")
        self.assertTrue(dry["dry_run"])
        self.assertEqual(dry["generation"], gen)
        self.assertEqual(self.mapping()["generation"], gen)  # nothing applied
        r = self.apply(MAPPING_2)
        self.assertEqual((r["generation"], r["previous_generation"]), (gen + 1, gen))
        self.assertEqual(r["diff"], [{"kind": "rule", "name": "udp-bb", "change": "changed",
                                      "detail": "target link broadband -> link lte"}])
        self.assertEqual(dry["diff"], r["diff"])
        self.assertEqual((r["diff_total"], r["diff_counts"]),
                         (1, [{"kind": "rule", "added": 0, "removed": 0, "changed": 1}]))
        # --diff summary: the counts only, the change itself not sent.
        summary = self.apply(MAPPING, "--dry-run", "--diff", "summary")
        self.assertEqual((summary["diff"], summary["diff_total"]), ([], 1))
        self.assertEqual(self.site.udp_flow(40000, 9001, 100).by_wan, {2: 100})
        self.assertEqual(self.mapping()["mapping_yaml"], MAPPING_2)

    def test_flows_show_the_traffic_on_its_links_with_its_counters(self):
        before = self.links()
        self.assertEqual(self.site.udp_flow(40100, 9001, 200, echo=True).echoed, 200)
        self.assertEqual(self.site.udp_flow(40101, 9002, 300).by_wan, {2: 300})
        bb = self.flows("--sport", "40100", "--dport", "9001")
        self.assertEqual(len(bb), 1, bb)
        f = bb[0]
        self.assertEqual((f["rule"], f["link"], f["action"], f["proto"]), ("udp-bb", "broadband", "steer", "udp"))
        self.assertEqual((f["packets_out"], f["packets_in"]), (200, 200))
        self.assertEqual(f["src"], self.site.client_v4)
        self.assertTrue(f["nat"].startswith(self.site.wan_address(1) + ":"), f)
        lte = self.flows("--link", "lte", "--proto", "udp", "--sport", "40101")
        self.assertEqual([(x["rule"], x["packets_out"], x["packets_in"]) for x in lte], [("udp-lte", 300, 0)])
        self.assertEqual(self.flows("--link", "primary", "--sport", "40101"), [])
        after = self.links()
        self.assertEqual(after["broadband"]["tx_packets"] - before["broadband"]["tx_packets"], 200)
        self.assertEqual(after["broadband"]["rx_packets"] - before["broadband"]["rx_packets"], 200)
        self.assertEqual(after["lte"]["tx_packets"] - before["lte"]["tx_packets"], 300)
        self.assertGreaterEqual(after["broadband"]["flows"], 1)
        self.assertEqual({l["state"] for l in after.values()}, {"up"})
        last = self.flows("--last", "1")
        self.assertEqual(len(last), 1)

    def test_watch_emits_events_for_a_flow_started_after_it(self):
        watch = subprocess.Popen([CLOVISCTL, "--socket", self.agent.socket, "flows", "--watch", "-o", "json",
                                  "--interval", "200ms", "--sport", "40200"], stdout=subprocess.PIPE, text=True)
        try:
            read_lines(watch, lambda e: e["kind"] == "counters", 10)
            self.site.udp_flow(40200, 9002, 50, settle=0.2)
            seen = read_lines(watch, lambda e: e["kind"] in ("added", "updated") and
                              e["flow"]["packets_out"] == 50, 10)
            added = [e for e in seen if e["kind"] == "added"]
            self.assertEqual(len(added), 1, seen)
            self.assertEqual((added[0]["flow"]["rule"], added[0]["flow"]["link"]), ("udp-lte", "lte"))
            counters = read_lines(watch, lambda e: e["kind"] == "counters", 10)[-1]
            self.assertEqual({l["name"] for l in counters["links"]}, {"primary", "broadband", "lte"})
            lte = [l for l in counters["links"] if l["name"] == "lte"][0]
            self.assertEqual((lte["state"], lte["flows"] >= 1), ("up", True))
        finally:
            watch.terminate()
            watch.wait(10)

    def test_simulate_predicts_what_the_traffic_does(self):
        for sport, dport, proto, wan in [(40300, 9002, "udp", 2), (40301, 8001, "tcp", 1), (40302, 9003, "udp", 0)]:
            with self.subTest(dport=dport):
                d = self.agent.ctl_json("simulate", "--src", self.site.client_v4, "--dst", self.site.server_v4,
                                        "--proto", proto, "--sport", sport, "--dport", dport)
                if proto == "udp":
                    seen = self.site.udp_flow(sport, dport, 50).by_wan
                else:
                    seen = {self.site.tcp_transfer(dport, 100_000, sport=sport).wan: 1}
                self.assertEqual(list(seen), [wan])
                if wan == 0:  # bypass: the host's own routing, out of wan0
                    self.assertEqual((d["verdict"], d["link"]), ("bypass", None))
                else:
                    self.assertEqual(d["link"]["interface"], self.site.wan_ifname(wan))
                # Offline, the same file gives the same decision.
                offline = self.agent.ctl_json("simulate", "-f", self.agent.config, "--src", self.site.client_v4,
                                              "--dst", self.site.server_v4, "--proto", proto, "--sport", sport,
                                              "--dport", dport)
                self.assertEqual(offline, d)

    def test_a_bad_mapping_is_rejected_with_located_errors_and_changes_nothing(self):
        gen = self.mapping()["generation"]
        path = os.path.join(self.agent.tmp, "bad.yaml")
        with open(path, "w") as f:
            f.write(BAD)
        out = self.agent.ctl("apply", "-f", path)
        self.assertEqual(out.returncode, 1, out)
        self.assertRegex(out.stderr, r"bad\.yaml:4:\d+: error: unknown key 'gatway'")
        self.assertIn("rejected by clovisd", out.stderr)  # from the diagnostics trailer
        self.assertEqual(self.mapping()["generation"], gen)
        self.assertEqual(self.site.udp_flow(40400, 9002, 100).by_wan, {2: 100})
        history = self.agent.ctl_json("history")["entries"]
        self.assertEqual(history[0]["generation"], gen)

    def test_the_grpc_contract_without_clovisctl(self):
        py = next((p for p in (sys.executable, "/usr/bin/python3") if subprocess.run(
            [p, "-c", "import grpc, google.protobuf"], capture_output=True).returncode == 0), None)
        if py is None or not shutil.which("protoc"):
            self.skipTest("needs python3-grpcio and protoc")
        out = subprocess.run([py, __file__, "_raw_apply", self.agent.socket], input=BAD, capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        r = json.loads(out.stdout)
        self.assertEqual(r["code"], "INVALID_ARGUMENT")
        self.assertIn("raw.yaml:4:", r["details"])
        self.assertEqual(r["diagnostics"][0]["line"], 4)
        self.assertGreater(r["diagnostics"][0]["col"], 0)
        self.assertEqual(r["diagnostics"][0]["message"], "unknown key 'gatway'")

    def test_sighup_reloads_through_the_same_apply(self):
        if "-c" not in self.agent.proc.args:  # restarted without it: SIGHUP would read /etc/clovis/wan.yaml
            self.agent.kill(signal.SIGTERM)
            self.agent.start(MAPPING)
        gen = self.mapping()["generation"]
        self.agent.write_mapping(MAPPING_2)
        self.agent.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while self.mapping()["generation"] == gen and time.monotonic() < deadline:
            time.sleep(0.1)
        m = self.mapping()
        self.assertEqual((m["generation"], m["mapping_yaml"]), (gen + 1, MAPPING_2))
        self.assertEqual(self.agent.ctl_json("history")["entries"][0]["source"], self.agent.config)
        self.assertEqual(self.site.udp_flow(40500, 9001, 100).by_wan, {2: 100})

    def test_an_unconfirmed_apply_reverts_and_a_confirmed_one_stays(self):
        gen = self.mapping()["generation"]
        r = self.apply(MAPPING_2, "--confirm", "2s")
        self.assertEqual(r["generation"], gen + 1)
        self.assertIn(r["confirm_deadline_s"], (1, 2))
        self.assertGreater(self.agent.ctl_json("status")["confirm_deadline_s"], 0)
        self.assertEqual(self.site.udp_flow(40600, 9001, 50).by_wan, {2: 50})
        time.sleep(3.5)
        m = self.mapping()
        self.assertEqual((m["generation"], m["mapping_yaml"]), (gen + 2, MAPPING))
        self.assertIn("not confirmed", self.agent.ctl_json("history")["entries"][0]["source"])
        self.assertEqual(self.site.udp_flow(40601, 9001, 50).by_wan, {1: 50})
        self.assertEqual(self.agent.ctl("confirm").returncode, 1)  # nothing to confirm
        self.apply(MAPPING_2, "--confirm", "2s")
        self.assertEqual(self.agent.ctl_json("confirm")["generation"], gen + 3)
        time.sleep(2.5)
        self.assertEqual(self.mapping()["mapping_yaml"], MAPPING_2)

    def test_rollback_reapplies_a_mapping_from_the_history(self):
        gen = self.mapping()["generation"]
        self.apply(MAPPING_2)
        r = self.agent.ctl_json("rollback")
        self.assertEqual(r["generation"], gen + 2)
        self.assertEqual(self.mapping()["mapping_yaml"], MAPPING)
        self.assertEqual(self.site.udp_flow(40700, 9001, 50).by_wan, {1: 50})
        self.assertEqual(self.agent.ctl("rollback", "999999").returncode, 1)

    def test_status_shows_what_runs(self):
        s = self.agent.ctl_json("status")
        self.assertEqual(s["generation"], self.mapping()["generation"])
        self.assertTrue(any(a.startswith("lan0@") for a in s["attachments"]), s["attachments"])
        self.assertIn("clv_flows", {m["name"] for m in s["maps"]})
        self.assertGreater(s["counters"]["packets"], 0)

    def test_users_outside_the_group_are_refused(self):
        st = os.stat(self.agent.socket)
        self.assertEqual(st.st_mode & 0o777, 0o660)
        out = self.agent.ctl("status", user="nobody", groups=[])
        self.assertEqual(out.returncode, 4, out)
        self.assertIn("permission denied", out.stderr)
        self.assertIn(self.agent.socket, out.stderr)
        ok = self.agent.ctl("get", "mapping", user="nobody", groups=[st.st_gid])  # a member of its group
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.assertEqual(ok.stdout, MAPPING)

    def test_a_second_agent_on_the_socket_is_refused(self):
        other = tempfile.mkdtemp(prefix="clovis-second-")
        try:
            out = subprocess.run([CLOVISD, "--netns", self.site.ns_edge, "--pin-dir", self.agent.pin_dir + "-2",
                                  "--state-dir", other, "--lan", "lan0", "--socket", self.agent.socket],
                                 capture_output=True, text=True, timeout=30)
        finally:
            shutil.rmtree(other, ignore_errors=True)
            shutil.rmtree(self.agent.pin_dir + "-2", ignore_errors=True)
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertIn(f"another clovisd (pid {self.agent.proc.pid}) serves this socket", out.stderr)
        self.assertEqual(self.agent.ctl("status").returncode, 0)  # the first one still serves
        self.assertEqual(self.site.udp_flow(40800, 9002, 50).by_wan, {2: 50})

    def test_a_restart_keeps_the_mapping_and_the_flows(self):
        self.assertEqual(self.site.udp_flow(40900, 9001, 100).by_wan, {1: 100})
        gen = self.mapping()["generation"]
        self.agent.kill(signal.SIGTERM)
        self.assertFalse(os.path.exists(self.agent.socket))  # removed on the way out
        self.agent.start()  # no -c: the persisted mapping
        m = self.mapping()
        # As the generation it was, with no history entry for the restart.
        self.assertEqual((m["generation"], m["mapping_yaml"]), (gen, MAPPING))
        f = self.flows("--sport", "40900")
        self.assertEqual([(x["rule"], x["link"], x["packets_out"]) for x in f], [("udp-bb", "broadband", 100)])
        self.assertEqual(self.site.udp_flow(40900, 9001, 50).by_wan, {1: 50})  # the same flow goes on
        self.assertEqual(self.flows("--sport", "40900")[0]["packets_out"], 150)
        newest = self.agent.ctl_json("history")["entries"][0]
        self.assertEqual((newest["generation"], newest["running"]), (gen, True))


def raw_apply(socket_path):
    """Apply stdin as 'raw.yaml' with plain grpcio; print code, details and the
    decoded diagnostics trailer as JSON. Run by a python3 that has grpc."""
    import grpc
    gen = tempfile.mkdtemp(prefix="clovis-pb-")
    try:
        subprocess.run(["protoc", f"--python_out={gen}", f"-I{REPO}/proto", f"{REPO}/proto/clovis/v1/agent.proto"],
                       check=True)
        sys.path.insert(0, gen)
        from clovis.v1 import agent_pb2
    finally:
        shutil.rmtree(gen, ignore_errors=True)
    channel = grpc.insecure_channel("unix:" + socket_path)
    apply = channel.unary_unary("/clovis.v1.Agent/Apply", request_serializer=agent_pb2.ApplyRequest.SerializeToString,
                                response_deserializer=agent_pb2.ApplyResponse.FromString)
    try:
        apply(agent_pb2.ApplyRequest(mapping_yaml=sys.stdin.read(), source="raw.yaml"), timeout=10)
        print(json.dumps({"code": "OK"}))
        return 0
    except grpc.RpcError as e:
        diags = agent_pb2.Diagnostics()
        for k, v in e.trailing_metadata() or ():
            if k == "clovis-diagnostics-bin":
                diags.ParseFromString(v)
        print(json.dumps({"code": e.code().name, "details": e.details(),
                          "diagnostics": [{"line": d.line, "col": d.col, "message": d.message, "file": d.file}
                                          for d in diags.items]}))
        return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "_raw_apply":
        sys.exit(raw_apply(sys.argv[2]))
    sys.exit(privileged.main(__name__))
