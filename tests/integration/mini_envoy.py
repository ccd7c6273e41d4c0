#!/usr/bin/env python3
"""A test proxy that does what Envoy does with the configuration
`clovisctl envoy -o json` renders (no Envoy exists on this machine):

- listens where the first listener says (static_resources.listeners[0]);
- removes the headers the connection manager's early header mutations remove;
- for each HTTP request, calls the ext_authz filter's Check (gRPC over the
  `pipe` of the filter's cluster, with the filter's timeout) with the
  downstream connection's addresses and the request's method, host, path and
  lower-case headers — the wire layout is encoded by hand (extauthz_wire.py);
- applies the answer to the request: removes headers_to_remove, then sets the
  OK response's headers; when the call fails and failure_mode_allow is true,
  goes on unchanged (otherwise answers 403);
- picks the route again afterwards (clear_route_cache): the first route of the
  first virtual host whose prefix and header matchers (string_match exact /
  exact_match / present_match) all match;
- opens the upstream connection of the route's cluster: the cluster's
  upstream_bind_config socket options (SOL_SOCKET/SO_MARK...) set before
  connect, as Envoy's STATE_PREBIND does, to the cluster's first endpoint;
  forwards the request (HTTP/1.1, Connection: close) and relays the answer.

One JSON line per request on stdout: route, cluster, mark, link header.

    python3 mini_envoy.py CONFIG.json
"""
import http.server
import json
import socket
import socketserver
import sys
import threading

import grpc

from extauthz_wire import CHECK, check_request, check_response


def duration_s(text, default):
    if not text:
        return default
    return float(text.rstrip("s"))


class Config:
    def __init__(self, doc):
        res = doc["static_resources"]
        self.clusters = {c["name"]: c for c in res["clusters"]}
        listener = res["listeners"][0]
        sa = listener["address"]["socket_address"]
        self.listen = (sa["address"], int(sa["port_value"]))
        hcm = None
        for chain in listener["filter_chains"]:
            for f in chain["filters"]:
                if f["name"] in ("envoy.filters.network.http_connection_manager",) or \
                        f.get("typed_config", {}).get("@type", "").endswith("HttpConnectionManager"):
                    hcm = f["typed_config"]
        if hcm is None:
            raise ValueError("no http_connection_manager in the first listener")
        self.virtual_hosts = hcm["route_config"]["virtual_hosts"]
        # early_header_mutation_extensions: header removals before anything else.
        self.early_remove = [m["remove"].lower() for ext in hcm.get("early_header_mutation_extensions", [])
                             for m in ext["typed_config"].get("mutations", []) if "remove" in m]
        self.authz = None
        for hf in hcm.get("http_filters", []):
            tc = hf.get("typed_config", {})
            if tc.get("@type", "").endswith("ext_authz.v3.ExtAuthz"):
                self.authz = tc
        if self.authz is not None:
            gs = self.authz["grpc_service"]
            cluster = self.clusters[gs["envoy_grpc"]["cluster_name"]]
            ep = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
            self.authz_pipe = ep["pipe"]["path"]
            self.authz_timeout = duration_s(gs.get("timeout"), 0.2)
            self.failure_mode_allow = bool(self.authz.get("failure_mode_allow", False))

    def route(self, path, headers):
        for vh in self.virtual_hosts:
            for r in vh["routes"]:
                m = r["match"]
                if "prefix" in m and not path.startswith(m["prefix"]):
                    continue
                if "path" in m and path.split("?")[0] != m["path"]:
                    continue
                if all(header_matches(h, headers) for h in m.get("headers", [])):
                    return r
        return None


def header_matches(h, headers):
    value = headers.get(h["name"].lower())
    if "present_match" in h:
        ok = value is not None
    elif "string_match" in h:
        sm = h["string_match"]
        if "exact" not in sm:
            raise ValueError(f"string_match {sm}: only exact is implemented")
        ok = value == sm["exact"]
    elif "exact_match" in h:
        ok = value == h["exact_match"]
    else:
        raise ValueError(f"header matcher {h}: not implemented")
    return ok != bool(h.get("invert_match", False))


def upstream(cluster):
    """A connected socket for one request to `cluster`, and the mark it set."""
    ep = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    family = socket.AF_INET6 if ":" in ep["address"] else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    mark = None
    bind = cluster.get("upstream_bind_config")
    if bind:
        for opt in bind.get("socket_options", []):
            if opt.get("state", "STATE_PREBIND") != "STATE_PREBIND":
                continue
            s.setsockopt(int(opt["level"]), int(opt["name"]), int(opt["int_value"]))
            if int(opt["level"]) == socket.SOL_SOCKET and int(opt["name"]) == 36:
                mark = int(opt["int_value"])
        src = bind.get("source_address")
        if src:
            s.bind((src["address"], int(src.get("port_value", 0))))
    s.settimeout(10)
    s.connect((ep["address"], int(ep["port_value"])))
    return s, mark


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    cfg = None
    channel = None
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def handle_any(self):
        cfg = self.cfg
        headers = {k.lower(): v for k, v in self.headers.items() if k.lower() not in cfg.early_remove}
        body = self.rfile.read(int(headers.get("content-length", 0) or 0))
        note = {"method": self.command, "path": self.path}
        if cfg.authz is not None:
            peer, local = self.client_address, self.connection.getsockname()
            req = check_request(peer[0], peer[1], local[0], local[1], host=headers.get("host", ""),
                                path=self.path, method=self.command, headers=headers)
            try:
                call = self.channel.unary_unary(CHECK, request_serializer=lambda b: b,
                                                response_deserializer=lambda b: b)
                ans = check_response(call(req, timeout=cfg.authz_timeout))
                if ans["code"] != 0:  # denied: Envoy's local reply, 403 unless denied_response says
                    denied = ans["denied"] or {"status": 0, "headers": {}}
                    note["check"] = "denied"
                    print(json.dumps(note), flush=True)
                    self.send_response(denied["status"] or 403)
                    for k, v in denied["headers"].items():
                        self.send_header(k, v)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                for h in ans["remove"]:
                    headers.pop(h.lower(), None)
                for k, v in ans["headers"].items():
                    headers[k.lower()] = v
                note["check"] = "ok"
            except grpc.RpcError as e:
                note["check"] = e.code().name
                if not cfg.failure_mode_allow:
                    self.send_error(403)
                    return
        r = cfg.route(self.path, headers)
        if r is None:
            self.send_error(404)
            return
        cluster = cfg.clusters[r["route"]["cluster"]]
        note.update(cluster=cluster["name"], link=headers.get("x-clovis-link"))
        try:
            s, note["mark"] = upstream(cluster)
        except OSError as e:
            note["error"] = str(e)
            print(json.dumps(note), flush=True)
            self.send_error(503)
            return
        with s:
            lines = [f"{self.command} {self.path} HTTP/1.1"]
            headers["connection"] = "close"
            if body:
                headers["content-length"] = str(len(body))
            lines += [f"{k}: {v}" for k, v in headers.items()]
            s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                self.wfile.write(chunk)
        print(json.dumps(note), flush=True)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self):
        # HTTPServer's own asks the resolver for the address's name (getfqdn):
        # in a namespace without DNS that waits for the resolver's timeout.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


def main():
    with open(sys.argv[1]) as f:
        cfg = Config(json.load(f))
    Handler.cfg = cfg
    if cfg.authz is not None:
        Handler.channel = grpc.insecure_channel("unix:" + cfg.authz_pipe)
    srv = Server(cfg.listen, Handler)
    print(json.dumps({"listening": cfg.listen}), flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
