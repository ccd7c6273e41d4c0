#!/usr/bin/env python3
"""Tiny targets for clovisd's http: and dns: probes, run in the cloud
namespace by test_probes.py. What they answer comes from a control file,
re-read on every request, so the test switches answers without restarts.

    probe_responders.py http ADDRESS PORT CONTROL  # CONTROL holds a status code: 200, 503...
    probe_responders.py dns ADDRESS PORT CONTROL   # CONTROL holds NOERROR, NXDOMAIN, SERVFAIL or drop

The DNS responder binds its address, not the wildcard, so that replies leave
from the address the query went to (the cloud's addresses are AnyIP).
"""
import http.server
import socket
import sys


def control(path):
    with open(path) as f:
        return f.read().strip()


def serve_http(addr, port, path):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            status = int(control(path))
            body = f"{status} for {self.path}\n".encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *args):  # the peer: which WAN the probe came by
            print("from", self.client_address[0], flush=True)

    srv = http.server.ThreadingHTTPServer((addr, port), Handler)
    print("ready", flush=True)
    srv.serve_forever()


RCODES = {"NOERROR": 0, "SERVFAIL": 2, "NXDOMAIN": 3, "REFUSED": 5}


def serve_dns(addr, port, path):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, port))
    print("ready", flush=True)
    while True:
        query, peer = s.recvfrom(512)
        what = control(path)
        if len(query) < 12 or what == "drop":
            continue
        # The question echoed, no records: QR and RA set, RD kept, the RCODE asked for.
        flags = 0x8080 | (query[2] & 0x01) << 8 | RCODES[what]
        s.sendto(query[:2] + flags.to_bytes(2, "big") + query[4:], peer)


if __name__ == "__main__":
    {"http": serve_http, "dns": serve_dns}[sys.argv[1]](sys.argv[2], int(sys.argv[3]), sys.argv[4])
