#!/usr/bin/env python3
"""A throwaway edge site made of network namespaces, for clovis integration tests,
the demo and benchmarks. Python 3 stdlib only; needs root, iproute2 and nftables
(ethtool optional). See README.md beside this file.

    lan ──lan0══lan0── edge ──wanI══edge0── wanI (ISP router) ──cloud0══cI── cloud
    10.1.0.2     10.1.0.1    100.64.I.2   100.64.I.1   172.16.I.1      172.16.I.2
                                                                  server 203.0.113.10 (lo)

Every name carries a per-run prefix; everything built is removed on close(), at
interpreter exit and on SIGINT/SIGTERM/SIGHUP, and leftovers of dead runs are
removed when a site starts. No packet leaves the namespaces.
"""
from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import re
import secrets
import select
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field

SERVER_V4 = "203.0.113.10"
SERVER_V6 = "2001:db8:cafe::10"
CLIENT_V4, CLIENT_V6 = "10.1.0.2", "2001:db8:1::2"
LAN_GW_V4, LAN_GW_V6 = "10.1.0.1", "2001:db8:1::1"
# Destinations the cloud namespace answers for (any address in them), so rules
# can match several "internet" prefixes. Documentation ranges only.
INTERNET_V4 = ("203.0.113.0/24", "198.51.100.0/24", "192.0.2.0/24")
INTERNET_V6 = ("2001:db8:cafe::/48",)
MAX_WANS = 50
STATE_DIR = "/run/clovis-edgesite"
# Linux socket options Python 3.11 does not name.
_IP_PKTINFO, _IP_FREEBIND, _SO_RCVBUFFORCE = 8, 15, 33


class SiteError(RuntimeError):
    """A command that builds or drives the site failed; the message has its stderr."""


class Counters(dict):
    """Interface statistics: rx_packets, tx_packets, rx_bytes, tx_bytes, rx_dropped,
    tx_dropped. Subtract two snapshots to get a delta; fields read as attributes too."""

    def __sub__(self, other: dict) -> "Counters":
        return Counters({k: v - other.get(k, 0) for k, v in self.items()})

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass
class UdpResult:
    sent: int
    received: int
    bytes_received: int  # UDP payload bytes
    by_wan: dict  # WAN index -> datagrams that reached the cloud through it
    duration: float  # seconds the sender spent sending
    send_errors: int = 0
    echoed: int | None = None  # replies the client got back (echo=True only)

    @property
    def lost(self) -> int:
        return self.sent - self.received


@dataclass
class TcpResult:
    bytes_sent: int
    bytes_received: int
    duration: float  # client side: connect to last byte
    peer: str  # the client's address as the cloud saw it
    wan: int | None  # WAN index derived from peer (with WAN NAT only)

    @property
    def mbit_per_s(self) -> float:
        return self.bytes_received * 8 / 1e6 / max(self.duration, 1e-9)


@dataclass
class DropRule:
    """An nftables drop rule in a WAN router; remove() it or use it as a context manager."""
    site: "EdgeSite"
    ns: str
    handle: int
    removed: bool = field(default=False)

    def packets(self) -> int:
        """Packets this rule has dropped so far."""
        out = self.site.run(self.ns, "nft", "-j", "-a", "list", "chain", "inet", "clvdrop", "pre").stdout
        for item in json.loads(out)["nftables"]:
            rule = item.get("rule")
            if rule and rule.get("handle") == self.handle:
                return sum(e["counter"]["packets"] for e in rule["expr"] if "counter" in e)
        return 0

    def remove(self) -> None:
        if not self.removed:
            self.site.run(self.ns, "nft", "delete", "rule", "inet", "clvdrop", "pre", "handle", str(self.handle))
            self.removed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


class WanDelta:
    """Per-WAN counter deltas of the edge's wanI interfaces, filled when the
    `with site.measure()` block ends: delta[i] is a Counters."""

    def __init__(self, site: "EdgeSite"):
        self._site, self.delta = site, []
        self._before = site.wan_counters_all()

    def _finish(self):
        self.delta = [b - a for a, b in zip(self._before, self._site.wan_counters_all())]

    @property
    def tx_packets(self) -> list:
        return [d["tx_packets"] for d in self.delta]

    @property
    def rx_packets(self) -> list:
        return [d["rx_packets"] for d in self.delta]


def _cmd(argv, *, input=None, check=True, timeout=30.0) -> subprocess.CompletedProcess:
    try:
        cp = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise SiteError(f"timed out after {timeout}s: {' '.join(map(str, argv))}") from e
    if check and cp.returncode != 0:
        detail = (cp.stderr or cp.stdout).strip()
        raise SiteError(f"exit {cp.returncode}: {' '.join(map(str, argv))}\n{detail}")
    return cp


def _netns_list() -> list:
    out = _cmd(["ip", "-j", "netns", "list"], check=False).stdout.strip()
    return [n["name"] for n in json.loads(out)] if out else []


def _is_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _kill_netns_pids(names) -> None:
    """Ends processes living in throwaway namespaces: they would keep a namespace
    (and its veths) alive after `ip netns del`."""
    pids = set()
    for ns in names:
        out = _cmd(["ip", "netns", "pids", ns], check=False).stdout
        pids.update(int(p) for p in out.split() if p.isdigit() and int(p) != os.getpid())
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 2.0
        while pids and time.monotonic() < deadline:
            pids = {p for p in pids if not _is_gone(p)}
            if pids:
                time.sleep(0.02)
        if not pids:
            break


def _delete_netns(names) -> None:
    existing = set(_netns_list())
    names = [n for n in names if n in existing]
    if names:
        _kill_netns_pids(names)
        _cmd(["ip", "-force", "-batch", "-"], input="".join(f"netns del {n}\n" for n in names), check=False)


def _ns_pattern(prefix: str) -> re.Pattern:
    return re.compile(re.escape(prefix) + r"(lan|edge|cloud|wan\d+)$")


def reap_stale() -> list:
    """Removes the namespaces of runs whose owner process is gone (its lock is free).
    Returns the prefixes reaped."""
    reaped = []
    if not os.path.isdir(STATE_DIR):
        return reaped
    for fname in sorted(os.listdir(STATE_DIR)):
        if not fname.endswith(".lock"):
            continue
        path = os.path.join(STATE_DIR, fname)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            try:
                prefix = json.loads(os.read(fd, 1 << 16) or b"{}").get("prefix") or fname[:-5]
            except ValueError:
                prefix = fname[:-5]
            pat = _ns_pattern(prefix)
            _delete_netns([n for n in _netns_list() if pat.match(n)])
            reaped.append(prefix)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        finally:
            os.close(fd)
    return reaped


_live: list = []
_saved_handlers: dict = {}
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _cleanup_all() -> None:
    for site in list(_live):
        site.close()


def _on_signal(signum, frame):
    prev = _saved_handlers.get(signum, signal.SIG_DFL)
    _cleanup_all()  # restores every saved handler once the last site is closed
    signal.signal(signum, prev)
    if callable(prev):
        prev(signum, frame)  # e.g. SIGINT's default: raise KeyboardInterrupt
    elif prev == signal.SIG_DFL:
        os.kill(os.getpid(), signum)  # die of the signal, as without us


def _install_handlers() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in _SIGNALS:
        if sig not in _saved_handlers and signal.getsignal(sig) not in (signal.SIG_IGN, None):
            _saved_handlers[sig] = signal.signal(sig, _on_signal)


def _restore_handlers() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for sig, prev in list(_saved_handlers.items()):
        if signal.getsignal(sig) == _on_signal:
            signal.signal(sig, prev)
        del _saved_handlers[sig]


atexit.register(_cleanup_all)


class EdgeSite:
    """The site. Build with `with EdgeSite(...) as site:` (or start()/close())."""

    LAN_IF = "lan0"             # in ns_lan and ns_edge
    ROUTER_EDGE_IF = "edge0"    # in each ns_wan[i], towards the edge
    ROUTER_CLOUD_IF = "cloud0"  # in each ns_wan[i], towards the cloud

    def __init__(self, wans: int = 3, *, ipv6: bool = False, wan_nat: bool = True,
                 prefix: str | None = None, offloads_off: bool = True):
        if not 2 <= wans <= MAX_WANS:
            raise ValueError(f"wans must be 2..{MAX_WANS}, got {wans}")
        if prefix is None:
            prefix = "clv" + "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(5)) + "-"
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", prefix):
            raise ValueError(f"bad prefix {prefix!r}")
        self.prefix, self.wans, self.ipv6, self.wan_nat = prefix, wans, ipv6, wan_nat
        self.offloads_off = offloads_off
        self.ns_lan, self.ns_edge, self.ns_cloud = prefix + "lan", prefix + "edge", prefix + "cloud"
        self.ns_wan = [f"{prefix}wan{i}" for i in range(wans)]
        self.server_v4, self.server_v6 = SERVER_V4, SERVER_V6
        self.client_v4, self.client_v6 = CLIENT_V4, CLIENT_V6
        self.lan_gateway_v4, self.lan_gateway_v6 = LAN_GW_V4, LAN_GW_V6
        self.logdir = None
        self._procs: list = []
        self._lock_fd = None
        self._owner = os.getpid()
        self._started = False

    # ----- names and addresses -------------------------------------------------------
    @property
    def namespaces(self) -> list:
        return [self.ns_lan, self.ns_edge, *self.ns_wan, self.ns_cloud]

    @property
    def server(self) -> str:
        return self.server_v4

    def wan_ifname(self, i: int) -> str:
        """The edge's interface for WAN i."""
        return f"wan{i}"

    def cloud_ifname(self, i: int) -> str:
        """The cloud's interface towards WAN router i."""
        return f"c{i}"

    def wan_address(self, i: int, v6: bool = False) -> str:
        """The edge's own address on WAN i."""
        return f"2001:db8:{100 + i}::2" if v6 else f"100.64.{i}.2"

    def wan_gateway(self, i: int, v6: bool = False) -> str:
        """WAN router i's address facing the edge (the link's gateway)."""
        return f"2001:db8:{100 + i}::1" if v6 else f"100.64.{i}.1"

    def egress_address(self, i: int, v6: bool = False) -> str:
        """WAN router i's address facing the cloud: the source the cloud sees for
        traffic that left by WAN i when wan_nat is on."""
        return f"2001:db8:{200 + i}::1" if v6 else f"172.16.{i}.1"

    def _cloud_address(self, i: int, v6: bool = False) -> str:
        return f"2001:db8:{200 + i}::2" if v6 else f"172.16.{i}.2"

    def wan_of_peer(self, addr: str) -> int | None:
        """The WAN whose egress address `addr` is (None if none)."""
        for i in range(self.wans):
            if addr in (self.egress_address(i), self.egress_address(i, True)):
                return i
        return None

    # ----- lifecycle -------------------------------------------------------------------
    def __enter__(self) -> "EdgeSite":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> "EdgeSite":
        if self._started:
            return self
        if os.geteuid() != 0:
            raise SiteError("EdgeSite needs root (network namespaces)")
        for tool in ("ip", "nft"):
            if shutil.which(tool) is None:
                raise SiteError(f"{tool} not found; run scripts/bootstrap.sh")
        reap_stale()
        self._take_lock()
        _live.append(self)
        self._started = True
        _install_handlers()
        try:
            self.logdir = tempfile.mkdtemp(prefix=f"{self.prefix}logs-")
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Kills every process started here, deletes every namespace. Idempotent."""
        if not self._started or os.getpid() != self._owner:
            return
        self._started = False
        for p in self._procs:
            self._stop_proc(p)
        self._procs.clear()
        _delete_netns(self.namespaces)
        if self._lock_fd is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._lock_path())
            os.close(self._lock_fd)
            self._lock_fd = None
        if self.logdir:
            shutil.rmtree(self.logdir, ignore_errors=True)
        if self in _live:
            _live.remove(self)
        if not _live:
            _restore_handlers()

    def _lock_path(self) -> str:
        return os.path.join(STATE_DIR, self.prefix + ".lock")

    def _take_lock(self) -> None:
        os.makedirs(STATE_DIR, exist_ok=True)
        path = self._lock_path()
        if os.path.exists(path):  # reap_stale() kept it: its owner is alive
            raise SiteError(f"prefix {self.prefix!r} is in use by a live run ({path})")
        # Locked before it appears under its name, so a concurrent reaper never
        # sees it unlocked.
        tmp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, json.dumps({"prefix": self.prefix, "pid": os.getpid()}).encode())
        os.rename(tmp, path)
        self._lock_fd = fd
        pat = _ns_pattern(self.prefix)  # same prefix, no live owner: a crashed run's leftovers
        _delete_netns([n for n in _netns_list() if pat.match(n)])

    # ----- building --------------------------------------------------------------------
    def _build(self) -> None:
        _cmd(["ip", "-batch", "-"], input="".join(f"netns add {n}\n" for n in self.namespaces))
        for ns in self.namespaces:
            self._sysctls(ns, router=ns in (self.ns_edge, *self.ns_wan))
        # Each veth is created directly in its two namespaces: the host never sees it.
        links = [f"link add lan0 netns {self.ns_lan} type veth peer name lan0 netns {self.ns_edge}"]
        for i, wns in enumerate(self.ns_wan):
            links.append(f"link add {self.wan_ifname(i)} netns {self.ns_edge} type veth peer name "
                         f"{self.ROUTER_EDGE_IF} netns {wns}")
            links.append(f"link add {self.ROUTER_CLOUD_IF} netns {wns} type veth peer name "
                         f"{self.cloud_ifname(i)} netns {self.ns_cloud}")
        _cmd(["ip", "-batch", "-"], input="\n".join(links) + "\n")
        self._ip_batch(self.ns_lan, self._lan_cmds())
        self._ip_batch(self.ns_edge, self._edge_cmds())
        for i in range(self.wans):
            self._ip_batch(self.ns_wan[i], self._router_cmds(i))
            if self.wan_nat:
                self._nft(self.ns_wan[i], "table inet clvnat {\nchain post { type nat hook postrouting "
                          f'priority srcnat; policy accept; oifname "{self.ROUTER_CLOUD_IF}" masquerade; }}\n}}\n')
        self._ip_batch(self.ns_cloud, self._cloud_cmds())
        if not self.wan_nat:
            self._nft(self.ns_cloud, self._cloud_return_nft())
        if self.offloads_off:
            self._offloads_off()

    def _sysctls(self, ns: str, router: bool) -> None:
        kv = {"net.ipv4.conf.all.rp_filter": 0, "net.ipv4.conf.default.rp_filter": 0,
              "net.ipv6.conf.all.disable_ipv6": int(not self.ipv6),
              "net.ipv6.conf.default.disable_ipv6": int(not self.ipv6)}
        if self.ipv6:
            for scope in ("all", "default"):
                kv.update({f"net.ipv6.conf.{scope}.accept_dad": 0, f"net.ipv6.conf.{scope}.accept_ra": 0,
                           f"net.ipv6.conf.{scope}.router_solicitations": 0,
                           f"net.ipv6.conf.{scope}.keep_addr_on_down": 1})  # as IPv4 does
        if router:
            kv["net.ipv4.ip_forward"] = 1
            if self.ipv6:
                kv["net.ipv6.conf.all.forwarding"] = 1
        script = "".join(f"echo {v} > /proc/sys/{k.replace('.', '/')}\n" for k, v in kv.items())
        self.run(ns, "sh", "-ec", script)

    def _addr(self, dev: str, v4: str, v6: str | None) -> list:
        cmds = [f"addr add {v4} dev {dev}"]
        if self.ipv6 and v6:
            cmds.append(f"-6 addr add {v6} dev {dev} nodad")
        return cmds + [f"link set {dev} up"]

    def _lan_cmds(self) -> list:
        cmds = ["link set lo up", *self._addr("lan0", f"{CLIENT_V4}/24", f"{CLIENT_V6}/64"),
                f"route add default via {LAN_GW_V4}"]
        return cmds + ([f"-6 route add default via {LAN_GW_V6}"] if self.ipv6 else [])

    def _edge_cmds(self) -> list:
        cmds = ["link set lo up", *self._addr("lan0", f"{LAN_GW_V4}/24", f"{LAN_GW_V6}/64")]
        for i in range(self.wans):
            cmds += self._addr(self.wan_ifname(i), f"{self.wan_address(i)}/24", f"{self.wan_address(i, True)}/64")
        cmds.append(f"route add default via {self.wan_gateway(0)} dev wan0")
        return cmds + ([f"-6 route add default via {self.wan_gateway(0, True)} dev wan0"] if self.ipv6 else [])

    def _router_cmds(self, i: int) -> list:
        e, c = self.ROUTER_EDGE_IF, self.ROUTER_CLOUD_IF
        cmds = ["link set lo up", *self._addr(e, f"{self.wan_gateway(i)}/24", f"{self.wan_gateway(i, True)}/64"),
                *self._addr(c, f"{self.egress_address(i)}/24", f"{self.egress_address(i, True)}/64"),
                f"route add default via {self._cloud_address(i)} dev {c}"]
        if self.ipv6:
            cmds.append(f"-6 route add default via {self._cloud_address(i, True)} dev {c}")
        return cmds + self._router_lan_routes(i)

    def _router_lan_routes(self, i: int) -> list:
        """WAN router i's routes back to the LAN. The kernel deletes them when edge0
        goes down, so link_up() puts them back."""
        cmds = [f"route replace 10.1.0.0/24 via {self.wan_address(i)} dev {self.ROUTER_EDGE_IF}"]
        if self.ipv6:
            cmds.append(f"-6 route replace 2001:db8:1::/64 via {self.wan_address(i, True)} dev {self.ROUTER_EDGE_IF}")
        return cmds

    def _cloud_cmds(self) -> list:
        cmds = ["link set lo up", f"addr add {SERVER_V4}/32 dev lo"]
        # "AnyIP": every address of these prefixes is local to the cloud. In the local
        # table, so the kernel treats them as the host's own (replies, rerouting).
        cmds += [f"route add local {p} dev lo table local" for p in INTERNET_V4]
        if self.ipv6:
            cmds += [f"-6 addr add {SERVER_V6}/128 dev lo nodad"]
            cmds += [f"-6 route add local {p} dev lo table local" for p in INTERNET_V6]
        for i in range(self.wans):
            dev, gw, gw6 = self.cloud_ifname(i), self.egress_address(i), self.egress_address(i, True)
            cmds += self._addr(dev, f"{self._cloud_address(i)}/24", f"{self._cloud_address(i, True)}/64")
            cmds.append(f"route add 100.64.{i}.0/24 via {gw} dev {dev}")
            if not self.wan_nat:  # replies follow the WAN their flow came in by (see nft)
                cmds += [f"rule add fwmark {i + 1} lookup {200 + i} pref {100 + i}",
                         f"route add default via {gw} dev {dev} table {200 + i}"]
                if self.ipv6:
                    cmds += [f"-6 rule add fwmark {i + 1} lookup {200 + i} pref {100 + i}",
                             f"-6 route add default via {gw6} dev {dev} table {200 + i}"]
        # Unmarked traffic to the client (flows the cloud opens) takes WAN 0.
        cmds.append(f"route add 10.1.0.0/24 via {self.egress_address(0)} dev {self.cloud_ifname(0)}")
        if self.ipv6:
            cmds.append(f"-6 route add 2001:db8:1::/64 via {self.egress_address(0, True)} dev {self.cloud_ifname(0)}")
        return cmds

    def _cloud_return_nft(self) -> str:
        marks = "\n".join(f'ct state new iifname "{self.cloud_ifname(i)}" ct mark set {i + 1}'
                          for i in range(self.wans))
        return ("table inet clvret {\n"
                f"chain pre {{ type filter hook prerouting priority mangle; policy accept;\n{marks}\n}}\n"
                "chain out { type route hook output priority mangle; policy accept;\n"
                "ct mark != 0 meta mark set ct mark\n}\n}\n")

    def _offloads_off(self) -> None:
        if shutil.which("ethtool") is None:
            warnings.warn("ethtool not found: TSO/GSO/GRO stay on, so interface packet counters "
                          "may count one GSO skb for many wire packets (scripts/bootstrap.sh installs it)")
            return
        ifs = {self.ns_lan: ["lan0"], self.ns_edge: ["lan0"] + [self.wan_ifname(i) for i in range(self.wans)],
               self.ns_cloud: [self.cloud_ifname(i) for i in range(self.wans)]}
        for wns in self.ns_wan:
            ifs[wns] = [self.ROUTER_EDGE_IF, self.ROUTER_CLOUD_IF]
        for ns, devs in ifs.items():
            script = "".join(f"ethtool -K {d} tso off gso off gro off\n" for d in devs)
            cp = self.run(ns, "sh", "-c", script, check=False)
            if cp.returncode != 0:
                warnings.warn(f"ethtool -K in {ns} failed: {cp.stderr.strip()}")

    def _ip_batch(self, ns: str, cmds: list) -> None:
        # A batch line cannot carry -6: IPv6 lines go in a second batch, after the links are up.
        v4 = [c for c in cmds if not c.startswith("-6 ")]
        v6 = [c[3:] for c in cmds if c.startswith("-6 ")]
        _cmd(["ip", "-n", ns, "-batch", "-"], input="\n".join(v4) + "\n")
        if v6:
            _cmd(["ip", "-6", "-n", ns, "-batch", "-"], input="\n".join(v6) + "\n")

    def _nft(self, ns: str, ruleset: str) -> None:
        self.run(ns, "nft", "-f", "-", input=ruleset)

    # ----- running things ----------------------------------------------------------------
    def ns_argv(self, ns: str, host_sys: bool = False) -> list:
        """The argv prefix that runs a command in `ns`. `ip netns exec` remounts /sys (so
        /sys/class/net shows the namespace, but /sys/fs/bpf is gone); host_sys=True uses
        nsenter instead, which keeps the host's /sys (bpffs pins) — for clovisd."""
        if host_sys:
            return ["nsenter", f"--net=/run/netns/{ns}", "--"]
        return ["ip", "netns", "exec", ns]

    @staticmethod
    def _argv(args) -> list:
        if len(args) == 1 and isinstance(args[0], (list, tuple)):
            args = args[0]
        return [str(a) for a in args]

    def run(self, ns: str, *args, check: bool = True, timeout: float = 30.0, input: str | None = None,
            host_sys: bool = False) -> subprocess.CompletedProcess:
        """Runs a command in `ns` (args as varargs or one list), output captured as text.
        Raises SiteError with stderr on non-zero exit unless check=False."""
        return _cmd(self.ns_argv(ns, host_sys) + self._argv(args), input=input, check=check, timeout=timeout)

    def popen(self, ns: str, argv, *, host_sys: bool = False, **kwargs) -> subprocess.Popen:
        """Starts a background process in `ns`, killed (with its process group) on close().
        stdout/stderr default to a log file whose path is `proc.log_path`."""
        if not self._started:
            raise SiteError("the site is not started (use `with EdgeSite() as site` or start())")
        argv = self._argv([argv] if isinstance(argv, (list, tuple)) else [[argv]])
        log, log_path = None, None
        if "stdout" not in kwargs or "stderr" not in kwargs:
            log_path = os.path.join(self.logdir, f"{os.path.basename(argv[0])}-{len(self._procs)}.log")
            log = open(log_path, "wb")
            kwargs.setdefault("stdout", log)
            kwargs.setdefault("stderr", subprocess.STDOUT if kwargs["stdout"] is log else log)
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        try:
            p = subprocess.Popen(self.ns_argv(ns, host_sys) + argv, start_new_session=True, **kwargs)
        finally:
            if log:
                log.close()
        p.log_path = log_path
        self._procs.append(p)
        return p

    def stop(self, p: subprocess.Popen, timeout: float = 2.0) -> int | None:
        """Stops a process started by popen(): SIGTERM, then SIGKILL after `timeout`."""
        self._stop_proc(p, timeout)
        if p in self._procs:
            self._procs.remove(p)
        return p.returncode

    @staticmethod
    def _stop_proc(p: subprocess.Popen, timeout: float = 2.0) -> None:
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            if p.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, sig)  # start_new_session: the group id is the pid
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(wait)
        for stream in (p.stdin, p.stdout, p.stderr):
            if stream:
                with contextlib.suppress(OSError):
                    stream.close()

    # ----- counters and links -------------------------------------------------------------
    def link_info(self, ns: str, ifname: str) -> dict:
        """`ip -s -j link show` of one interface, queried over netlink inside `ns`."""
        return json.loads(_cmd(["ip", "-n", ns, "-s", "-j", "link", "show", "dev", ifname]).stdout)[0]

    def counters(self, ns: str, ifname: str) -> Counters:
        s = self.link_info(ns, ifname)["stats64"]
        return Counters({f"{d}_{k}": s[d][k] for d in ("rx", "tx") for k in ("packets", "bytes", "dropped")})

    def wan_counters(self, i: int) -> Counters:
        return self.counters(self.ns_edge, self.wan_ifname(i))

    def wan_counters_all(self) -> list:
        return [self.wan_counters(i) for i in range(self.wans)]

    def wan_tx(self, i: int) -> Counters:
        """tx_packets and tx_bytes of the edge's wanI."""
        c = self.wan_counters(i)
        return Counters(tx_packets=c["tx_packets"], tx_bytes=c["tx_bytes"])

    @contextlib.contextmanager
    def measure(self):
        """with site.measure() as m: ...  then m.tx_packets[i], m.delta[i]["rx_bytes"]."""
        m = WanDelta(self)
        try:
            yield m
        finally:
            m._finish()

    def link_state(self, i: int) -> dict:
        """State of the edge's wanI: operstate, up (admin), carrier (LOWER_UP)."""
        info = self.link_info(self.ns_edge, self.wan_ifname(i))
        flags = info.get("flags", [])
        return {"operstate": info.get("operstate"), "up": "UP" in flags, "carrier": "LOWER_UP" in flags}

    def _wait_carrier(self, i: int, want: bool, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.link_state(i)["carrier"] != want:
            if time.monotonic() > deadline:
                raise SiteError(f"wan{i} carrier did not become {want} within {timeout}s")
            time.sleep(0.02)

    def link_down(self, i: int, wait: bool = True, timeout: float = 5.0) -> None:
        """Sets WAN router i's end of the link down: the edge's wanI loses carrier."""
        _cmd(["ip", "-n", self.ns_wan[i], "link", "set", self.ROUTER_EDGE_IF, "down"])
        if wait:
            self._wait_carrier(i, False, timeout)

    def link_up(self, i: int, wait: bool = True, timeout: float = 5.0) -> None:
        """Undoes link_down(i), including WAN router i's routes that the kernel dropped."""
        self._ip_batch(self.ns_wan[i], [f"link set {self.ROUTER_EDGE_IF} up", *self._router_lan_routes(i)])
        if wait:
            self._wait_carrier(i, True, timeout)

    def set_default_wan(self, i: int) -> None:
        """Points the edge's main-table default route(s) at WAN i (plain kernel routing)."""
        _cmd(["ip", "-n", self.ns_edge, "route", "replace", "default", "via", self.wan_gateway(i),
              "dev", self.wan_ifname(i)])
        if self.ipv6:
            _cmd(["ip", "-n", self.ns_edge, "-6", "route", "replace", "default", "via",
                  self.wan_gateway(i, True), "dev", self.wan_ifname(i)])

    def drop_on_wan(self, i: int, proto: str | None = "icmp", *, dport: int | None = None,
                    direction: str = "both", probability: float | None = None) -> DropRule:
        """Drops IP traffic arriving at WAN router i, forwarded or addressed to the router.
        proto: icmp | icmpv6 | udp | tcp | None (all). direction: out (from the edge),
        in (from the cloud) or both. probability: drop only that share (0..1)."""
        if direction not in ("out", "in", "both"):
            raise ValueError(f"direction must be out, in or both, not {direction!r}")
        ns = self.ns_wan[i]
        self._nft(ns, "table inet clvdrop {\n"
                  "chain pre { type filter hook prerouting priority raw; policy accept; }\n}\n")
        expr = []
        if direction != "both":
            dev = self.ROUTER_EDGE_IF if direction == "out" else self.ROUTER_CLOUD_IF
            expr.append(f'iifname "{dev}"')
        if proto:
            expr.append("meta l4proto " + {"icmpv6": "ipv6-icmp"}.get(proto, proto))
        if dport is not None:
            expr.append(f"th dport {int(dport)}")
        if probability is not None:
            expr.append(f"numgen random mod 1000 < {max(0, min(1000, round(probability * 1000)))}")
        out = self.run(ns, "nft", "--echo", "--handle", "add", "rule", "inet", "clvdrop", "pre",
                       *" ".join(expr + ["counter", "drop"]).split()).stdout
        m = re.search(r"# handle (\d+)", out)
        if not m:
            raise SiteError(f"nft did not report a rule handle: {out!r}")
        return DropRule(self, ns, int(m.group(1)))

    # ----- traffic ----------------------------------------------------------------------
    def ping(self, dst: str | None = None, *, ns: str | None = None, count: int = 3,
             timeout: float = 5.0) -> bool:
        """True when at least one echo reply came back (from ns_lan by default)."""
        cp = self.run(ns or self.ns_lan, "ping", "-n", "-q", "-c", count, "-i", "0.05",
                      "-w", max(1, int(timeout)), dst or self.server_v4, check=False, timeout=timeout + 5)
        return cp.returncode == 0

    def _helper(self, ns: str, mode: str, args: dict) -> subprocess.Popen:
        argv = [sys.executable, os.path.abspath(__file__), "_helper", mode, json.dumps(args)]
        return self.popen(ns, argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    @staticmethod
    def _wait_ready(p: subprocess.Popen, timeout: float) -> None:
        deadline, buf = time.monotonic() + timeout, b""
        while b"\n" not in buf and time.monotonic() < deadline:
            if select.select([p.stdout], [], [], 0.1)[0]:
                chunk = os.read(p.stdout.fileno(), 64)
                if not chunk:
                    break
                buf += chunk
        if buf.strip() != b"READY":
            err = p.stderr.read().decode(errors="replace").strip() if p.poll() is not None else ""
            raise SiteError(f"helper not ready within {timeout}s (said {buf!r}): {err}")

    def _finish(self, p: subprocess.Popen, timeout: float, what: str) -> dict:
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop(p)
            raise SiteError(f"{what} did not finish within {timeout}s") from None
        if p in self._procs:
            self._procs.remove(p)
        lines = out.decode().strip().splitlines()
        if p.returncode != 0 or not lines:
            raise SiteError(f"{what} failed (exit {p.returncode}): {err.decode().strip()}")
        return json.loads(lines[-1])

    def udp_flow(self, sport: int, dport: int, count: int, size: int = 64, *, dst: str | None = None,
                 src: str | None = None, rate_pps: float | None = None, echo: bool = False,
                 settle: float = 1.0, timeout: float = 30.0, sports: int = 1) -> UdpResult:
        """Sends `count` datagrams of `size` payload bytes from ns_lan (src:sport) to
        dst:dport (default the IPv4 server) and counts them in ns_cloud, per WAN they
        arrived by. echo=True: the cloud returns each one and the client counts the
        replies. `settle`: how long to wait for stragglers after the last send.
        `sports` > 1: from that many source ports from sport on, in turn (that many
        flows from one sender; not with echo)."""
        dst = dst or self.server_v4
        if size < 8:
            raise ValueError("size must be >= 8 (each datagram carries a sequence number)")
        if sports > 1 and echo:
            raise ValueError("echo needs one source port")
        recv = self._helper(self.ns_cloud, "udp_recv", {"bind": dst, "port": dport, "count": count,
                                                        "echo": echo, "timeout": timeout})
        try:
            self._wait_ready(recv, 10.0)
            send = self._helper(self.ns_lan, "udp_send", {
                "dst": dst, "port": dport, "src": src, "sport": sport, "count": count, "size": size,
                "rate": rate_pps, "echo": echo, "settle": settle, "timeout": timeout, "sports": sports})
            s = self._finish(send, timeout + settle + 10, "udp sender")
            with contextlib.suppress(subprocess.TimeoutExpired):
                recv.wait(settle)
            with contextlib.suppress(OSError):
                recv.stdin.close()  # EOF: the receiver reports what it has
            recv.stdin = None
            r = self._finish(recv, 10.0, "udp receiver")
        finally:
            self.stop(recv)
        by_wan = {}
        for ifname, n in r["by_iface"].items():
            m = re.fullmatch(r"c(\d+)", ifname)
            by_wan[int(m.group(1)) if m else ifname] = n
        return UdpResult(sent=s["sent"], received=r["received"], bytes_received=r["bytes"], by_wan=by_wan,
                         duration=s["duration"], send_errors=s["errors"], echoed=s["echoed"] if echo else None)

    def tcp_transfer(self, dport: int, nbytes: int, sport: int | None = None, *, dst: str | None = None,
                     src: str | None = None, download: bool = False, timeout: float = 30.0) -> TcpResult:
        """One TCP connection from ns_lan to dst:dport (default the IPv4 server) carrying
        `nbytes` up (default) or down (download=True), bounded by `timeout`."""
        dst = dst or self.server_v4
        srv = self._helper(self.ns_cloud, "tcp_server", {"bind": dst, "port": dport, "nbytes": nbytes,
                                                         "download": download, "timeout": timeout})
        try:
            self._wait_ready(srv, 10.0)
            cli = self._helper(self.ns_lan, "tcp_client", {"dst": dst, "port": dport, "src": src, "sport": sport,
                                                           "nbytes": nbytes, "download": download,
                                                           "timeout": timeout})
            c = self._finish(cli, timeout + 10, "tcp client")
            s = self._finish(srv, 10.0, "tcp server")
        finally:
            self.stop(srv)
        sent, received = (s["sent"], c["received"]) if download else (c["sent"], s["received"])
        return TcpResult(bytes_sent=sent, bytes_received=received, duration=c["duration"], peer=s["peer"],
                         wan=self.wan_of_peer(s["peer"]) if self.wan_nat else None)


# ----- traffic helpers: `edgesite.py _helper MODE JSON`, run inside a namespace ---------------
def _family(addr: str) -> int:
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def _h_udp_recv(a: dict) -> dict:
    fam = _family(a["bind"])
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, 8 << 20)
    s.setsockopt(socket.SOL_IP, _IP_FREEBIND, 1)  # any address the cloud answers for
    if fam == socket.AF_INET:
        s.setsockopt(socket.SOL_IP, _IP_PKTINFO, 1)
    else:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
    s.bind((a["bind"], a["port"]))
    s.setblocking(False)
    print("READY", flush=True)
    deadline, received, nbytes, by_iface, names = time.monotonic() + a["timeout"], 0, 0, {}, {}
    while received < a["count"] and time.monotonic() < deadline:
        ready = select.select([s, sys.stdin], [], [], 0.2)[0]
        if sys.stdin in ready and not os.read(0, 64):
            break
        while s in ready and received < a["count"]:
            try:
                data, anc, _, peer = s.recvmsg(65535, 256)
            except BlockingIOError:
                break
            received, nbytes = received + 1, nbytes + len(data)
            ifindex = next((int.from_bytes(d[:4] if fam == socket.AF_INET else d[16:20], sys.byteorder)
                            for _, typ, d in anc if typ in (_IP_PKTINFO, socket.IPV6_PKTINFO)), 0)
            if ifindex not in names:
                try:
                    names[ifindex] = socket.if_indextoname(ifindex)
                except OSError:
                    names[ifindex] = str(ifindex)
            by_iface[names[ifindex]] = by_iface.get(names[ifindex], 0) + 1
            if a["echo"]:
                with contextlib.suppress(OSError):
                    s.sendto(data, peer)
    return {"received": received, "bytes": nbytes, "by_iface": by_iface}


def _h_udp_send(a: dict) -> dict:
    socks = []
    for sport in range(a["sport"], a["sport"] + a.get("sports", 1)):
        s = socket.socket(_family(a["dst"]), socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, 8 << 20)
        s.bind((a["src"] or "", sport))
        s.connect((a["dst"], a["port"]))
        socks.append(s)
    s = socks[0]
    pad = b"\0" * (a["size"] - 8)
    interval = 1.0 / a["rate"] if a["rate"] else 0.0
    start = time.monotonic()
    deadline, sent, errors, echoed = start + a["timeout"], 0, 0, 0

    def drain(wait: float) -> None:
        nonlocal echoed
        while select.select([s], [], [], wait)[0]:
            wait = 0  # then only what is already queued
            try:
                s.recv(65535)
                echoed += 1
            except OSError:
                pass

    for seq in range(a["count"]):
        now = time.monotonic()
        if now > deadline:
            break
        if interval and seq * interval > now - start:
            time.sleep(seq * interval - (now - start))
        try:
            socks[seq % len(socks)].send(seq.to_bytes(8, "big") + pad)
            sent += 1
        except OSError:  # ICMP errors surface here on a connected socket
            errors += 1
        if a["echo"] and seq % 64 == 63:
            drain(0)
    duration = time.monotonic() - start
    if a["echo"]:
        end = time.monotonic() + a["settle"]
        while echoed < sent and time.monotonic() < end:
            drain(max(0.0, min(0.05, end - time.monotonic())))
    return {"sent": sent, "errors": errors, "echoed": echoed, "duration": duration}


def _send_n(conn: socket.socket, n: int, deadline: float) -> int:
    buf, sent = memoryview(b"\x5a" * (1 << 16)), 0
    while sent < n and time.monotonic() < deadline:
        sent += conn.send(buf[:min(len(buf), n - sent)])
    return sent


def _h_tcp_server(a: dict) -> dict:
    ls = socket.socket(_family(a["bind"]), socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.setsockopt(socket.SOL_IP, _IP_FREEBIND, 1)
    ls.bind((a["bind"], a["port"]))
    ls.listen(1)
    ls.settimeout(a["timeout"])
    print("READY", flush=True)
    conn, peer = ls.accept()
    conn.settimeout(a["timeout"])
    sent = received = 0
    if a["download"]:
        sent = _send_n(conn, a["nbytes"], time.monotonic() + a["timeout"])
        conn.shutdown(socket.SHUT_WR)
        while conn.recv(65536):
            pass
    else:
        while chunk := conn.recv(1 << 16):
            received += len(chunk)
        conn.sendall(b"%d\n" % received)
    conn.close()
    return {"sent": sent, "received": received, "peer": peer[0]}


def _h_tcp_client(a: dict) -> dict:
    s = socket.socket(_family(a["dst"]), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if a["src"] or a["sport"]:
        s.bind((a["src"] or "", a["sport"] or 0))
    s.settimeout(a["timeout"])
    start = time.monotonic()
    s.connect((a["dst"], a["port"]))
    sent = received = 0
    if a["download"]:
        while chunk := s.recv(1 << 16):
            received += len(chunk)
    else:
        sent = _send_n(s, a["nbytes"], start + a["timeout"])
        s.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := s.recv(64):
            reply += chunk
        received = int(reply or b"0")
    duration = time.monotonic() - start
    s.close()
    return {"sent": sent, "received": received, "duration": duration}


_HELPERS = {"udp_recv": _h_udp_recv, "udp_send": _h_udp_send, "tcp_server": _h_tcp_server,
            "tcp_client": _h_tcp_client}


# ----- command line ------------------------------------------------------------------------
def site_env(site: EdgeSite) -> dict:
    """CLV_* variables describing a site, for shell scripts."""
    env = {"CLV_PREFIX": site.prefix, "CLV_IPV6": str(int(site.ipv6)), "CLV_WAN_NAT": str(int(site.wan_nat)),
           "CLV_NS_LAN": site.ns_lan, "CLV_NS_EDGE": site.ns_edge,
           "CLV_NS_CLOUD": site.ns_cloud, "CLV_WANS": str(site.wans), "CLV_SERVER_V4": site.server_v4,
           "CLV_SERVER_V6": site.server_v6, "CLV_CLIENT_V4": site.client_v4, "CLV_CLIENT_V6": site.client_v6}
    for i in range(site.wans):
        env.update({f"CLV_NS_WAN{i}": site.ns_wan[i], f"CLV_WAN{i}_GW": site.wan_gateway(i),
                    f"CLV_WAN{i}_ADDR": site.wan_address(i)})
    return env


def main(argv: list) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="edgesite.py", description="Throwaway netns edge site for clovis.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="build a site, run COMMAND (in the host netns) with CLV_* "
                                     "variables set, then tear the site down")
    run.add_argument("--wans", type=int, default=3)
    run.add_argument("--ipv6", action="store_true")
    run.add_argument("--no-wan-nat", action="store_true")
    run.add_argument("--prefix")
    run.add_argument("command", nargs=argparse.REMAINDER)
    sub.add_parser("reap", help="remove the sites of runs that died without cleaning up")
    helper = sub.add_parser("_helper")
    helper.add_argument("mode", choices=sorted(_HELPERS))
    helper.add_argument("args")
    ns = ap.parse_args(argv)
    if ns.cmd == "_helper":
        print(json.dumps(_HELPERS[ns.mode](json.loads(ns.args))), flush=True)
        return 0
    if ns.cmd == "reap":
        for p in reap_stale():
            print(f"reaped {p}")
        return 0
    cmd = ns.command[1:] if ns.command[:1] == ["--"] else ns.command
    if not cmd:
        ap.error("run needs a COMMAND (after --)")
    with EdgeSite(ns.wans, ipv6=ns.ipv6, wan_nat=not ns.no_wan_nat, prefix=ns.prefix) as site:
        return subprocess.run(cmd, env={**os.environ, **site_env(site)}).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
