#!/usr/bin/env python3
"""Session reports from a proxy: the real clovisd on a throwaway edge site
serves envoy.service.auth.v3.Authorization on its own socket, and a gRPC client
that is not clovis's code (python3-grpcio, with its own hand-written protobuf
encoder and decoder: the wire layout of Envoy's ext_authz v3) sends Check
requests. Header-matched requests get the mapping's link, others the default;
the reported connection shows up in the flow table with flag `proxy`; garbage
gets a clean error and clovisd carries on; a request a drop rule matches is
answered OK (fail-open), or PERMISSION_DENIED with a 403 once the mapping says
proxy: {on-drop: deny}.

    python3 tests/integration/test_authz.py [-k PATTERN]

The client runs under a python3 that has grpc (Debian's python3-grpcio is
/usr/bin/python3's); without one the tests skip.
"""
import json
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from clovis_site import Clovisd, require_built  # noqa: E402
from edgesite import CLIENT_V4, SERVER_V4, EdgeSite  # noqa: E402
import privileged  # noqa: E402
from proxy_site import grpc_python  # noqa: E402
from extauthz_wire import CHECK, check_request, check_response, field_bytes, peer  # noqa: E402

MAPPING = """version: 1
links:
  - {name: mpls, interface: wan0, gateway: 100.64.0.1, mode: route}
  - {name: broadband, interface: wan1, gateway: 100.64.1.1, mode: route}
rules:
  - name: minions-video
    priority: 10
    match: {dst: 203.0.113.0/24, dport: 8000, proto: tcp, headers: {end-user: minions}}
    link: broadband
  - {name: blocked, priority: 20, match: {headers: {end-user: mallory}}, action: drop}
default: {link: mpls}
"""

# The same, with drop verdicts denied to the proxy.
DENY = MAPPING + "proxy:\n  on-drop: deny   # allow (the default) | deny\n"

def client(socket_path):
    """Reads a JSON list of requests (hex bodies) on stdin; sends each as a
    Check with identity serializers; prints the decoded answers. Run by a
    python3 that has grpc."""
    import grpc
    channel = grpc.insecure_channel("unix:" + socket_path)
    call = channel.unary_unary(CHECK, request_serializer=lambda b: b, response_deserializer=lambda b: b)
    out = []
    for body in json.load(sys.stdin):
        try:
            out.append(check_response(call(bytes.fromhex(body), timeout=10)))
        except grpc.RpcError as e:
            out.append({"error": e.code().name, "details": e.details()})
    print(json.dumps(out))
    return 0


def setUpModule():
    privileged.require_root(("ip", "nft"))
    require_built()


class Authz(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.py = grpc_python()
        if cls.py is None:
            raise unittest.SkipTest("needs a python3 with grpc (Debian: python3-grpcio)")
        cls.site = EdgeSite(wans=2).start()
        cls.agent = Clovisd(cls.site)
        try:
            cls.agent.start(MAPPING)
        except Exception:
            cls.agent.close()
            cls.site.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.agent.close()
        cls.site.close()

    def check(self, *bodies):
        out = subprocess.run([self.py, __file__, "_client", self.agent.authz_socket],
                             input=json.dumps([b.hex() for b in bodies]), capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout)

    def assert_alive(self):
        self.assertIsNone(self.agent.proc.poll(), self.agent.read_log())
        self.assertEqual(self.agent.ctl("status").returncode, 0)

    def test_the_socket_is_the_admin_sockets_kind(self):
        st = os.stat(self.agent.authz_socket)
        self.assertEqual(st.st_mode & 0o777, 0o660)
        self.assertTrue(os.path.exists(self.agent.authz_socket + ".lock"))

    def test_a_header_picks_the_link_and_the_connection_is_pinned(self):
        minions, boss = self.check(
            check_request(CLIENT_V4, 41000, SERVER_V4, 8000, headers={"end-user": "minions"}),
            check_request(CLIENT_V4, 41001, SERVER_V4, 8000, headers={"end-user": "boss"}))
        self.assertEqual(minions["code"], 0)
        self.assertEqual(minions["headers"]["x-clovis-link"], "broadband")
        self.assertEqual(minions["headers"]["x-clovis-rule"], "minions-video")
        self.assertEqual(minions["metadata"]["clovis"]["link"], "broadband")
        self.assertEqual(minions["metadata"]["clovis"]["rule"], "minions-video")
        self.assertTrue(minions["metadata"]["clovis"]["pinned"])
        self.assertGreaterEqual(minions["metadata"]["clovis"]["generation"], 1)
        self.assertEqual(boss["code"], 0)
        self.assertEqual(boss["headers"]["x-clovis-link"], "mpls")
        self.assertNotIn("x-clovis-error", boss["headers"])
        self.assertIn("x-clovis-error", boss["remove"])

        for sport, link, rule in ((41000, "broadband", "minions-video"), (41001, "mpls", "default")):
            flows = self.agent.ctl_json("flows", "--sport", sport, "--dport", "8000")["flows"]
            self.assertEqual(len(flows), 1, flows)
            f = flows[0]
            self.assertEqual((f["src"], f["dst"], f["proto"]), (CLIENT_V4, SERVER_V4, "tcp"), f)
            self.assertEqual(f["link"], link, f)
            self.assertIn("proxy", f["flags"], f)
            # The L7 facts that chose the link, as the proxy reported them.
            self.assertEqual(f["l7"]["rule"], rule, f)
            self.assertEqual(f["l7"]["host"], "video.example.com:8000", f)
            self.assertEqual(f["l7"]["method"], "GET", f)
            self.assertEqual(f["l7"]["headers"], {"end-user": "minions"} if rule != "default" else {}, f)
        wide = self.agent.ctl("flows", "-o", "wide", "--sport", 41000, check=True).stdout
        self.assertIn("end-user=minions", wide)
        dumped = [f for f in self.agent.dump()["flows"] if f.get("sport") == 41000]
        self.assertEqual(len(dumped), 1, dumped)

    def apply(self, text):
        path = os.path.join(self.agent.tmp, "apply.yaml")
        with open(path, "w") as f:
            f.write(text)
        return self.agent.ctl("apply", "-f", path, check=True).stdout

    def test_a_drop_verdict_is_ok_by_default_and_denied_with_on_drop_deny(self):
        def mallory(sport):
            return check_request(CLIENT_V4, sport, SERVER_V4, 8000, headers={"end-user": "mallory"})

        fail_open, = self.check(mallory(41020))
        self.assertEqual(fail_open["code"], 0, fail_open)
        self.assertTrue(fail_open["ok"], fail_open)
        self.assertIsNone(fail_open["denied"], fail_open)
        self.assertNotIn("x-clovis-link", fail_open["headers"])
        self.assertEqual(fail_open["headers"]["x-clovis-rule"], "blocked")
        self.assertEqual(fail_open["metadata"]["clovis"]["action"], "drop")
        self.assertFalse(fail_open["metadata"]["clovis"]["pinned"])

        try:
            diff = self.apply(DENY)
            self.assertRegex(diff, r"~\s+proxy\s+proxy\s+on-drop allow -> deny")
            generation = self.agent.ctl_json("get", "mapping")["generation"]
            denied, minions = self.check(
                mallory(41021), check_request(CLIENT_V4, 41022, SERVER_V4, 8000, headers={"end-user": "minions"}))
            self.assertEqual(denied["code"], 7, denied)  # PERMISSION_DENIED
            self.assertFalse(denied["ok"], denied)
            self.assertEqual(denied["denied"]["status"], 403, denied)
            self.assertEqual(denied["denied"]["headers"], {"x-clovis-rule": "blocked"}, denied)
            md = denied["metadata"]["clovis"]
            self.assertEqual((md["action"], md["rule"], md["policy"], md["link"], md["pinned"]),
                             ("drop", "blocked", "", "", False), md)
            self.assertEqual(md["generation"], generation)
            # Only drop verdicts are denied.
            self.assertEqual(minions["code"], 0, minions)
            self.assertEqual(minions["headers"]["x-clovis-link"], "broadband", minions)
            for sport in (41020, 41021):  # a drop verdict pins nothing, denied or not
                self.assertEqual(self.agent.ctl_json("flows", "--sport", sport)["flows"], [])
            # The live simulation says what the proxy will be told.
            sim = self.agent.ctl_json("simulate", "--src", CLIENT_V4, "--dst", SERVER_V4, "--dport", "8000",
                                      "--header", "end-user=mallory")
            self.assertEqual((sim["verdict"], sim["proxy_answer"]), ("drop", "denied"), sim)
            text = self.agent.ctl("simulate", "--src", CLIENT_V4, "--dst", SERVER_V4, "--dport", "8000",
                                  "--header", "end-user=mallory", check=True).stdout
            self.assertIn("PERMISSION_DENIED, the client gets 403", text)
        finally:
            self.apply(MAPPING)
        again, = self.check(mallory(41023))
        self.assertEqual(again["code"], 0, again)
        self.assertIsNone(again["denied"], again)

    def test_raw_headers_of_envoy_1_30_are_read(self):
        # encode_raw_headers: true -> headers only in header_map, values as bytes, one per line.
        minions, repeated = self.check(
            check_request(CLIENT_V4, 41010, SERVER_V4, 8000, raw_headers=[("End-User", "minions")]),
            check_request(CLIENT_V4, 41011, SERVER_V4, 8000,
                          raw_headers=[("end-user", "minions"), ("end-user", "boss")]))
        self.assertEqual(minions["headers"]["x-clovis-link"], "broadband", minions)
        # Repeats are joined with ',' as Envoy does: "minions,boss" is not "minions".
        self.assertEqual(repeated["headers"]["x-clovis-link"], "mpls", repeated)

    def test_garbage_and_missing_facts_never_crash_clovisd(self):
        no_source = field_bytes(1, field_bytes(2, peer(SERVER_V4, 8000)))
        answers = self.check(b"\xff\xff\xff\xff\x0f garbage", b"", no_source,
                             check_request("not-an-ip", 1, SERVER_V4, 8000),
                             check_request(CLIENT_V4, 41002, SERVER_V4, 8000,
                                           headers={"x": "y" * (8 << 20)}))
        garbage, empty, missing, bad_ip, huge = answers
        self.assertIn("error", garbage)  # gRPC cannot parse it: a clean error status
        for a in (empty, missing, bad_ip):  # fail-open: OK, no link, the reason in a header
            self.assertEqual(a.get("code"), 0, a)
            self.assertIn("x-clovis-error", a["headers"], a)
            self.assertNotIn("x-clovis-link", a["headers"], a)
        self.assertEqual(huge.get("error"), "RESOURCE_EXHAUSTED", huge)
        self.assert_alive()
        again = self.check(check_request(CLIENT_V4, 41003, SERVER_V4, 8000, headers={"end-user": "minions"}))
        self.assertEqual(again[0]["headers"]["x-clovis-link"], "broadband")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "_client":
        sys.exit(client(sys.argv[2]))
    sys.exit(privileged.main(__name__))
