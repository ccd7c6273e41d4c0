"""An Envoy-shaped setup on an edgesite.EdgeSite, shared by the end-to-end
test (test_envoy.py) and the demo: an HTTP service in the cloud, the
configuration `clovisctl envoy` renders from the running clovisd, the test
proxy (mini_envoy.py) on the edge host, and a LAN client."""
import json
import os
import subprocess
import sys
import time

from edgesite import LAN_GW_V4, SERVER_V4

HERE = os.path.dirname(os.path.abspath(__file__))
BODY = 256 * 1024

# The upstream service in the cloud: a fixed body for any GET, echoing what
# reached it of the headers that matter here.
UPSTREAM = """
import http.server, socketserver, sys
addr, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
BODY = b"x" * size
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        self.send_response(200)
        self.send_header("content-length", str(len(BODY)))
        self.send_header("x-seen-end-user", self.headers.get("end-user", ""))
        self.send_header("x-seen-link", self.headers.get("x-clovis-link", ""))
        self.end_headers()
        self.wfile.write(BODY)
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    def server_bind(self):  # no getfqdn: no DNS in the namespace
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]
S((addr, port), H).serve_forever()
"""

# The LAN client: N requests, one connection each; prints what came back.
CLIENT = """
import http.client, json, sys
host, port, user, n, forged = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
out = []
for i in range(n):
    c = http.client.HTTPConnection(host, port, timeout=20)
    hdrs = {"Host": "video.example.com", "end-user": user}
    if forged:
        hdrs["x-clovis-link"] = forged
    c.request("GET", f"/stream/{i}", headers=hdrs)
    r = c.getresponse()
    body = r.read()
    out.append({"status": r.status, "bytes": len(body), "end_user": r.getheader("x-seen-end-user"),
                "link": r.getheader("x-seen-link")})
    c.close()
print(json.dumps(out))
"""


def grpc_python():
    """A python3 that has grpc (Debian's python3-grpcio is /usr/bin/python3's), or None."""
    for p in (sys.executable, "/usr/bin/python3"):
        if os.path.exists(p) and subprocess.run([p, "-c", "import grpc"], capture_output=True).returncode == 0:
            return p
    return None


def wait_listening(site, ns, addr, port, timeout=10.0):
    code = f"import socket; s = socket.create_connection(({addr!r}, {port}), timeout=1); s.close()"
    deadline = time.monotonic() + timeout
    while True:
        r = site.run(ns, sys.executable, "-c", code, check=False)
        if r.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{addr}:{port} does not answer from {ns}: {r.stderr.strip()}")
        time.sleep(0.1)


def start_upstream(site, port=8000, body=BODY):
    p = site.popen(site.ns_cloud, [sys.executable, "-c", UPSTREAM, SERVER_V4, port, body])
    wait_listening(site, site.ns_lan, SERVER_V4, port)
    return p


def render(agent, port, authz_socket=None, upstream_port=8000, timeout="2s"):
    """`clovisctl envoy -o json` from the running clovisd: the service `video` in the cloud,
    Envoy's listener on the LAN gateway address; returns (config, path of its file)."""
    out = agent.ctl("envoy", "-o", "json", "--upstream", f"video={SERVER_V4}:{upstream_port}",
                    "--listen", f"{LAN_GW_V4}:{port}", "--authz-socket", authz_socket or agent.authz_socket,
                    "--authz-timeout", timeout, check=True)
    path = os.path.join(agent.tmp, f"envoy-{port}.json")
    with open(path, "w") as f:
        f.write(out.stdout)
    return json.loads(out.stdout), path


def start_proxy(site, py, config_path, port):
    p = site.popen(site.ns_edge, [py, os.path.join(HERE, "mini_envoy.py"), config_path])
    try:
        wait_listening(site, site.ns_lan, LAN_GW_V4, port)
    except RuntimeError as e:
        with open(p.log_path) as f:
            raise RuntimeError(f"{e}\nthe proxy's log ({'exited ' + str(p.poll()) if p.poll() is not None else 'running'}):"
                               f"\n{f.read()[-2000:]}") from None
    return p


def requests(site, port, user, n, forged=""):
    r = site.run(site.ns_lan, sys.executable, "-c", CLIENT, LAN_GW_V4, port, user, n, forged, timeout=120)
    return json.loads(r.stdout)
