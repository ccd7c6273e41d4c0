#!/usr/bin/env python3
"""The soak's datagrams, run inside the edge site's namespaces by soak.py:

    traffic.py echo   JSON   (ns_cloud) echoes every datagram on the given ports
    traffic.py client JSON   (ns_lan)   sends one paced flow and counts its echoes

Both print READY, run until their stdin closes, and then print one line of
JSON. Each datagram carries its sequence number; the client keeps every send
time (CLOCK_MONOTONIC, which the namespaces share with soak.py) so that soak.py
can put each lost datagram on its own timeline, inside or outside a failover
window. A datagram counts as lost when its echo did not come back, whichever
way it was lost. Unconnected sockets (sendto/recvfrom): ICMP errors then never
fail a send, so a send either goes out or is counted as an error at its time.
"""
import json
import os
import select
import socket
import sys
import time

_IP_PKTINFO = 8
_SO_RCVBUFFORCE = 33
_IP_FREEBIND = 15


def stdin_closed(ready) -> bool:
    return sys.stdin in ready and not os.read(0, 64)


def echo(a: dict) -> dict:
    """Echoes on a["ports"] of a["bind"]; counts datagrams per port and per
    interface they came in by (c0, c1, ...: which WAN)."""
    socks = {}
    for port in a["ports"]:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, 8 << 20)
        s.setsockopt(socket.SOL_IP, _IP_FREEBIND, 1)
        s.setsockopt(socket.SOL_IP, _IP_PKTINFO, 1)
        s.bind((a["bind"], port))
        s.setblocking(False)
        socks[s] = port
    print("READY", flush=True)
    counts, names = {str(p): {} for p in a["ports"]}, {}
    while True:
        ready = select.select(list(socks) + [sys.stdin], [], [], 0.5)[0]
        if stdin_closed(ready):
            break
        for s in ready:
            if s is sys.stdin:
                continue
            while True:
                try:
                    data, anc, _, peer = s.recvmsg(2048, 256)
                except BlockingIOError:
                    break
                ifindex = next((int.from_bytes(d[:4], sys.byteorder) for _, typ, d in anc if typ == _IP_PKTINFO), 0)
                if ifindex not in names:
                    try:
                        names[ifindex] = socket.if_indextoname(ifindex)
                    except OSError:
                        names[ifindex] = str(ifindex)
                by_if = counts[str(socks[s])]
                by_if[names[ifindex]] = by_if.get(names[ifindex], 0) + 1
                try:
                    s.sendto(data, peer)
                except OSError:
                    pass
    return {"by_port_iface": counts}


def client(a: dict) -> dict:
    """Sends a["rate"] datagrams/s from a["sport"] to a["dst"]:a["port"] until
    stdin closes, then waits a["settle"] s for the last echoes."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, 8 << 20)
    s.bind((a["src"], a["sport"]))
    s.setblocking(False)
    dst, pad = (a["dst"], a["port"]), b"\0" * (a.get("size", 64) - 8)
    interval = 1.0 / a["rate"]
    sent_at, echoed, errors = [], bytearray(), []
    print("READY", flush=True)

    def drain() -> None:
        while True:
            try:
                data = s.recv(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            seq = int.from_bytes(data[:8], "big")
            if seq < len(echoed):
                echoed[seq] = 1

    start, stop_at = time.monotonic(), None
    while True:
        now = time.monotonic()
        if stop_at is None:
            due = start + len(sent_at) * interval
            if now >= due:
                seq = len(sent_at)
                sent_at.append(now)
                echoed.append(0)
                try:
                    s.sendto(seq.to_bytes(8, "big") + pad, dst)
                except OSError as e:
                    errors.append([now, e.errno])
                continue
            wait = due - now
        else:
            if now >= stop_at:
                break
            wait = stop_at - now
        watch = [s] if stop_at is not None else [s, sys.stdin]
        ready = select.select(watch, [], [], min(wait, 0.2))[0]
        if s in ready:
            drain()
        if stop_at is None and stdin_closed(ready):
            stop_at = time.monotonic() + a["settle"]
    drain()
    lost = [round(t, 4) for t, e in zip(sent_at, echoed) if not e]
    return {"sent": len(sent_at), "echoed": sum(echoed), "lost_at": lost, "send_errors": errors,
            "first": sent_at[0] if sent_at else None, "last": sent_at[-1] if sent_at else None}


if __name__ == "__main__":
    mode, args = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps({"echo": echo, "client": client}[mode](args)), flush=True)
