#!/usr/bin/env python3
"""clovisd's callers and what each may take: the real clovisd on a throwaway
edge site, driven by the real clovisctl and by python3-grpcio.

- Watchers do not lock operators out: with 500 watch streams open (WatchFlows
  and WatchEvents, as `clovisctl flows --watch` and `events --watch` open
  them), status, apply, confirm and rollback are still answered; past
  --max-watchers the next watch gets RESOURCE_EXHAUSTED saying so, and a
  closed watch makes room again.
- Requests are bounded: an oversized `source` is refused before it reaches
  the history.
- Least privilege: a member of the ext_authz socket's group (--authz-group)
  can Check and cannot Apply (the admin socket is not its group's).

    python3 tests/integration/test_callers.py [-k PATTERN]

Latency is printed (docs/BENCHMARKS.md), never asserted. The gRPC clients run
under a python3 that has grpc (Debian's python3-grpcio); without one the
tests skip.
"""
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from clovis_site import CLOVISCTL, REPO, Clovisd, require_built  # noqa: E402
from edgesite import CLIENT_V4, SERVER_V4, EdgeSite  # noqa: E402
import privileged  # noqa: E402
from proxy_site import grpc_python  # noqa: E402
from extauthz_wire import CHECK, check_request  # noqa: E402

MAPPING = """version: 1
links:
  - {name: primary, interface: wan0, gateway: 100.64.0.1, mode: route}
  - {name: backup, interface: wan1, gateway: 100.64.1.1, mode: route}
rules:
  - {name: udp-backup, priority: 10, match: {proto: udp, dport: 9001}, link: backup}
default: {link: primary}
"""
MAPPING_2 = MAPPING.replace("link: backup}", "link: primary}")

WATCHERS = 500  # the bar: #13, "with 500 watchers open"


def setUpModule():
    privileged.require_root(("ip", "nft", "setpriv", "groupadd", "useradd"))
    require_built()


class Watchers:
    """A python3-grpcio process holding watch streams open on one clovisd:
    opens `flows` WatchFlows and `events` WatchEvents, each seen live (a first
    event, or the initial metadata), then answers commands on stdin."""

    def __init__(self, py, socket_path, flows, events):
        self.proc = subprocess.Popen([py, __file__, "_watchers", socket_path, str(flows), str(events)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.opened = self.answer(timeout=120)

    def answer(self, timeout=30):
        import select
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise AssertionError(f"the watcher process did not answer within {timeout}s")
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"the watcher process exited with {self.proc.wait()}")
        return json.loads(line)

    def ask(self, command, timeout=30):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.answer(timeout)

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class ManyWatchers(unittest.TestCase):
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
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.agent.close()
        cls.site.close()

    def timed_ctl(self, *args):
        t = time.monotonic()
        out = self.agent.ctl(*args, timeout=30)
        ms = (time.monotonic() - t) * 1000
        self.assertEqual(out.returncode, 0, f"clovisctl {' '.join(args)}: {out.stderr}")
        return ms

    def test_500_watchers_leave_room_for_operators(self):
        for i in range(10):  # flows for the watches to follow
            self.site.udp_flow(43000 + i, 9001, 3, settle=0.05)
        w = Watchers(self.py, self.agent.socket, WATCHERS - 100, 100)
        try:
            self.assertEqual(w.opened["refused"], 0, w.opened)
            self.assertEqual(w.opened["open"], WATCHERS)
            path = os.path.join(self.agent.tmp, "m2.yaml")
            with open(path, "w") as f:
                f.write(MAPPING_2)
            ms = {"status": self.timed_ctl("status", "-o", "json"),
                  "apply --confirm": self.timed_ctl("apply", "-f", path, "--confirm", "60s"),
                  "confirm": self.timed_ctl("confirm"),
                  "rollback": self.timed_ctl("rollback")}
            grpc_ms = w.ask("time")
            self.assertEqual(self.agent.ctl_json("get", "mapping")["mapping_yaml"], MAPPING)
            alive = w.ask("alive")  # every stream still open and served
            self.assertEqual(alive["open"], WATCHERS, alive)
            self.assertEqual(alive["ended"], [], alive)
            print(f"\n  {WATCHERS} watchers open: clovisctl wall ms {json.dumps({k: round(v, 1) for k, v in ms.items()})}"
                  f"; Status over grpc ms {grpc_ms}; clovisd VmRSS {rss_kib(self.agent.proc.pid)} KiB",
                  file=sys.stderr)
        finally:
            w.close()

    def test_past_max_watchers_the_next_is_refused_with_a_reason(self):
        self.agent.kill()
        self.agent.start(extra=["--max-watchers", "20"])
        try:
            w = Watchers(self.py, self.agent.socket, 15, 5)
            try:
                self.assertEqual((w.opened["open"], w.opened["refused"]), (20, 0), w.opened)
                one = w.ask("one")
                self.assertEqual(one["code"], "RESOURCE_EXHAUSTED", one)
                self.assertIn("20 watch streams", one["details"])
                self.assertIn("--max-watchers", one["details"])
                out = self.agent.ctl("events", "--watch", timeout=30)  # the real client says why
                self.assertNotEqual(out.returncode, 0)
                self.assertIn("--max-watchers", out.stderr)
                self.assertEqual(self.agent.ctl("status").returncode, 0)
                # A watch that ends makes room for the next.
                self.assertEqual(w.ask("close-one")["open"], 19)
                again = {}
                for _ in range(50):  # the server sees the cancellation shortly after
                    again = w.ask("one")
                    if again["code"] == "OK":
                        break
                    time.sleep(0.1)
                self.assertEqual(again["code"], "OK", again)
            finally:
                w.close()
        finally:
            self.agent.kill()
            self.agent.start()

    def test_an_oversized_source_is_refused_and_not_kept(self):
        before = self.agent.ctl_json("history")["entries"]
        out = subprocess.run([self.py, __file__, "_apply_source", self.agent.socket, "x" * 5000],
                             input=MAPPING, capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        r = json.loads(out.stdout)
        self.assertEqual(r["code"], "INVALID_ARGUMENT", r)
        self.assertIn("source", r["details"])
        self.assertEqual(self.agent.ctl_json("history")["entries"], before)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class ProxyGroup(unittest.TestCase):
    """A throwaway system group and user: the proxy's, as packaging makes it."""

    @classmethod
    def setUpClass(cls):
        cls.py = grpc_python()
        if cls.py is None:
            raise unittest.SkipTest("needs a python3 with grpc (Debian: python3-grpcio)")
        tag = secrets.token_hex(3)
        cls.group, cls.user = f"clvp-{tag}", f"clvu-{tag}"
        cls.site = cls.agent = None
        subprocess.run(["groupadd", "--system", cls.group], check=True)
        try:
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                            "--gid", cls.group, cls.user], check=True)
            cls.site = EdgeSite(wans=2).start()
            cls.agent = Clovisd(cls.site)
            cls.agent.start(MAPPING, extra=["--authz-group", cls.group])
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.agent:
            cls.agent.close()
        if cls.site:
            cls.site.close()
        subprocess.run(["userdel", cls.user], capture_output=True)
        subprocess.run(["groupdel", cls.group], capture_output=True)

    def as_proxy(self, argv, **kw):
        return subprocess.run(["setpriv", f"--reuid={self.user}", f"--regid={self.group}", "--init-groups"] + argv,
                              capture_output=True, text=True, timeout=60, **kw)

    def test_the_proxy_group_can_check_and_cannot_apply(self):
        import grp
        gid = grp.getgrnam(self.group).gr_gid
        self.assertEqual(os.stat(self.agent.authz_socket).st_gid, gid)
        self.assertNotEqual(os.stat(self.agent.socket).st_gid, gid)
        body = check_request(CLIENT_V4, 42000, SERVER_V4, 8000).hex()
        # The client as code on the command line: the proxy user need not read this tree
        # (nor a python3 under /root: Debian's, when it has grpc).
        py = "/usr/bin/python3" if grpc_python() and os.path.exists("/usr/bin/python3") and subprocess.run(
            ["/usr/bin/python3", "-c", "import grpc"], capture_output=True).returncode == 0 else self.py
        out = self.as_proxy([py, "-c", CHECK_CLIENT, self.agent.authz_socket, body])
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(json.loads(out.stdout), {"code": "OK"})
        flows = self.agent.ctl_json("flows", "--sport", "42000")["flows"]
        self.assertEqual([f["link"] for f in flows], ["primary"])  # the Check was served and pinned

        path = os.path.join(self.agent.tmp, "m2.yaml")
        with open(path, "w") as f:
            f.write(MAPPING_2)
        os.chmod(path, 0o644)
        gen = self.agent.ctl_json("status")["generation"]
        out = self.as_proxy([CLOVISCTL, "--socket", self.agent.socket, "apply", "-f", path])
        self.assertEqual(out.returncode, 4, out)
        self.assertIn("permission denied", out.stderr)
        out = self.as_proxy([CLOVISCTL, "--socket", self.agent.socket, "rollback"])
        self.assertEqual(out.returncode, 4, out)
        self.assertEqual(self.agent.ctl_json("status")["generation"], gen)


CHECK_CLIENT = f"""
import json, sys, grpc
ch = grpc.insecure_channel("unix:" + sys.argv[1])
call = ch.unary_unary({CHECK!r}, request_serializer=lambda b: b, response_deserializer=lambda b: b)
try:
    call(bytes.fromhex(sys.argv[2]), timeout=10)
    print(json.dumps({{"code": "OK"}}))
except grpc.RpcError as e:
    print(json.dumps({{"code": e.code().name, "details": e.details()}}))
"""


def agent_pb2():
    """clovis.v1's messages for python, generated by protoc into a temp dir."""
    gen = tempfile.mkdtemp(prefix="clovis-pb-")
    try:
        subprocess.run(["protoc", f"--python_out={gen}", f"-I{REPO}/proto", f"{REPO}/proto/clovis/v1/agent.proto"],
                       check=True)
        sys.path.insert(0, gen)
        from clovis.v1 import agent_pb2 as pb
        return pb
    finally:
        shutil.rmtree(gen, ignore_errors=True)


def watchers_main(socket_path, n_flows, n_events):
    """The Watchers process: see that class. Commands: `one` (open one more
    WatchFlows and report its fate), `close-one`, `alive`, `time` (Status
    latency); EOF ends every stream."""
    import grpc
    pb = agent_pb2()
    # Several connections, as separate clovisctl processes would have.
    channels = [grpc.insecure_channel("unix:" + socket_path) for _ in range(8)]

    def method(ch, name, req, resp, stream=True):
        kind = ch.unary_stream if stream else ch.unary_unary
        return kind(f"/clovis.v1.Agent/{name}", request_serializer=req.SerializeToString,
                    response_deserializer=resp.FromString)

    def open_flows(i):
        call = method(channels[i % len(channels)], "WatchFlows", pb.WatchFlowsRequest, pb.FlowEvent)(
            pb.WatchFlowsRequest(interval_ms=1000))
        next(call)  # a first event: it is served
        return call

    def open_events(i):
        call = method(channels[i % len(channels)], "WatchEvents", pb.WatchEventsRequest, pb.LinkEventMsg)(
            pb.WatchEventsRequest())
        call.initial_metadata()  # the watch is on
        if call.done() and call.code() != grpc.StatusCode.OK:
            raise_call(call)
        return call

    def raise_call(call):
        raise RuntimeError(json.dumps({"code": call.code().name, "details": call.details()}))

    def attempt(opener, i):
        try:
            return opener(i), None
        except grpc.RpcError as e:
            return None, {"code": e.code().name, "details": e.details()}
        except RuntimeError as e:
            return None, json.loads(str(e))

    calls, refused, first = [], 0, []
    for i in range(n_flows + n_events):
        call, err = attempt(open_flows if i < n_flows else open_events, i)
        if call:
            calls.append(call)
        else:
            refused += 1
            first = first or [err]
    print(json.dumps({"open": len(calls), "refused": refused, "first_refused": first}), flush=True)
    status = method(channels[0], "Status", pb.StatusRequest, pb.StatusResponse, stream=False)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "one":
            call, err = attempt(open_flows, len(calls))
            if call:
                calls.append(call)
            print(json.dumps(err or {"code": "OK"}), flush=True)
        elif cmd == "close-one":
            calls.pop().cancel()
            print(json.dumps({"open": len(calls)}), flush=True)
        elif cmd == "alive":
            ended = [c.code().name for c in calls if c.done()]
            print(json.dumps({"open": len(calls) - len(ended), "ended": ended[:5]}), flush=True)
        elif cmd == "time":
            ms = []
            for _ in range(20):
                t = time.monotonic()
                status(pb.StatusRequest(), timeout=10)
                ms.append((time.monotonic() - t) * 1000)
            ms.sort()
            print(json.dumps({"p50": round(ms[10], 2), "max": round(ms[-1], 2)}), flush=True)
    for c in calls:
        c.cancel()
    for ch in channels:
        ch.close()
    return 0


def apply_source_main(socket_path, source):
    """Apply stdin with the given `source`; print the status as JSON."""
    import grpc
    pb = agent_pb2()
    ch = grpc.insecure_channel("unix:" + socket_path)
    apply = ch.unary_unary("/clovis.v1.Agent/Apply", request_serializer=pb.ApplyRequest.SerializeToString,
                           response_deserializer=pb.ApplyResponse.FromString)
    try:
        apply(pb.ApplyRequest(mapping_yaml=sys.stdin.read(), source=source), timeout=10)
        print(json.dumps({"code": "OK"}))
    except grpc.RpcError as e:
        print(json.dumps({"code": e.code().name, "details": e.details()}))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_watchers":
        sys.exit(watchers_main(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
    if len(sys.argv) > 1 and sys.argv[1] == "_apply_source":
        sys.exit(apply_source_main(sys.argv[2], sys.argv[3]))
    sys.exit(privileged.main(__name__))
