#!/usr/bin/env python3
"""Tiny targets for clovisd's http: and dns: probes, run in the cloud
namespace by test_probes.py. What they answer comes from a control file,
re-read on every request, so the test switches answers without restarts.

    probe_responders.py http ADDRESS PORT CONTROL  # CONTROL holds a status code: 200, 503...
    probe_responders.py dns ADDRESS PORT CONTROL   # CONTROL holds NOERROR, NXDOMAIN, SERVFAIL or drop,
                                                   # then optionally delay=MS[,MS...]: each answer
                                                   # that late, the delays taken in turn (latency
                                                   # and jitter without netem)

The DNS responder binds its address, not the wildcard, so that replies leave
from the address the query went to (the cloud's addresses are AnyIP).
"""
import http.server
import itertools
import socket
import sys
import threading


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
    turn = itertools.count()
    while True:
        query, peer = s.recvfrom(512)
        words = control(path).split()
        what = words[0] if words else "drop"
        if len(query) < 12 or what == "drop":
            continue
        # The question echoed, no records: QR and RA set, RD kept, the RCODE asked for.
        flags = 0x8080 | (query[2] & 0x01) << 8 | RCODES[what]
        answer = query[:2] + flags.to_bytes(2, "big") + query[4:]
        delays = [float(d) for w in words[1:] if w.startswith("delay=") for d in w[6:].split(",")]
        if not delays:
            s.sendto(answer, peer)
            continue
        # Each answer on its own timer: a late one does not hold up the next query.
        delay = delays[next(turn) % len(delays)]
        threading.Timer(delay / 1000, s.sendto, (answer, peer)).start()


if __name__ == "__main__":
    {"http": serve_http, "dns": serve_dns}[sys.argv[1]](sys.argv[2], int(sys.argv[3]), sys.argv[4])
