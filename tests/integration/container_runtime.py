"""clovis's container image (packaging/container/build.sh) run by two runtimes on an
edgesite.EdgeSite's edge namespace: systemd-nspawn (the image's unpacked bundle root) and
podman with runc (the OCI image itself). Both run it the same way: the capabilities of
packaging/systemd/clovisd.service and no others, no new privileges, a read-only root,
bpffs, /run/clovis, /var/lib/clovis bound from the host (a Clovisd's per-run directories)
and /etc/clovis read-only. See docs/CONTAINER.md."""
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time

from clovis_site import CLOVISCTL, REPO, wait_notify_ready
from test_unit_capabilities import unit_capabilities

BUILD_SH = os.path.join(REPO, "packaging", "container", "build.sh")

# Linux capability names by number (linux/capability.h), to drop every one the unit
# does not keep: systemd-nspawn keeps a default set (CAP_SYS_ADMIN, CAP_NET_RAW,
# CAP_SETUID, ...) unless told to drop it, and its --drop-capability wins over
# --capability, so "all" cannot be dropped first.
CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
        "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"]


def cap_mask(names):
    return sum(1 << CAPS.index(c) for c in names)


class Image:
    """An image built by build.sh (offline, from the cached base layer): the OCI layout
    (`oci`, tag `tag`) and its unpacked bundle's root (`rootfs`)."""

    def __init__(self, deb, out, stamp):
        self.oci, self.tag, self.rootfs = out, stamp, out + "-bundle/rootfs"
        self.podman_id = None
        r = subprocess.run(["bash", BUILD_SH, "image", deb, out, "--tag", stamp, "--stamp", stamp,
                            "--bundle", out + "-bundle"], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"build.sh image failed ({r.returncode}):\n{r.stdout}{r.stderr}")
        print(r.stdout.strip().splitlines()[-1], file=sys.stderr)

    def podman_image(self):
        """Loads the OCI layout into podman's storage once; podman names it after the
        layout's path, which is per run."""
        if self.podman_id is None:
            r = subprocess.run(["podman", "pull", "-q", f"oci:{self.oci}:{self.tag}"], capture_output=True,
                               text=True, timeout=120)
            if r.returncode != 0:
                raise RuntimeError(f"podman pull oci:{self.oci}:{self.tag} failed:\n{r.stderr}")
            self.podman_id = r.stdout.strip().splitlines()[-1]
        return self.podman_id

    def close(self):
        if self.podman_id:
            subprocess.run(["podman", "rmi", "-f", self.podman_id], capture_output=True, timeout=60)
            self.podman_id = None


class Container:
    """One run of an image as clovisd's container; subclasses are the runtimes."""

    def __init__(self, site, agent, image, name, etc_dir, entry=("/usr/sbin/clovisd",), env=None):
        self.site, self.agent, self.image, self.name, self.etc_dir = site, agent, image, name, etc_dir
        self.unit_caps = unit_capabilities()["CapabilityBoundingSet"]
        # The container's command before its arguments (the image's entrypoint unless
        # told), and its environment.
        self.entry, self.env = list(entry), dict(env or {})

    def binds(self):
        """(host path, container path, read-only) of what the container shares with the host."""
        return [("/sys/fs/bpf", "/sys/fs/bpf", False),
                (os.path.dirname(self.agent.socket), "/run/clovis", False),
                (self.agent.state_dir, "/var/lib/clovis", False),
                (self.etc_dir, "/etc/clovis", True)]

    def command(self, args):
        return ["--pin-dir", self.agent.pin_dir, *args]

    def clovisd_pid(self):
        """The host PID of the container's clovisd, found in the edge namespace."""
        out = subprocess.run(["ip", "netns", "pids", self.site.ns_edge], capture_output=True, text=True).stdout
        for pid in out.split():
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() == "clovisd":
                        return int(pid)
            except OSError:
                continue
        raise RuntimeError(f"no clovisd in the edge namespace:\n{self.read_log()}")


class NspawnContainer(Container):
    """systemd-nspawn -D on the image's unpacked root; clovisd is its PID 1."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.proc = None
        self.log = os.path.join(self.agent.tmp, f"{self.name}.log")

    def argv(self, args):
        drop = [c for c in CAPS if c not in self.unit_caps]
        binds = [f"--bind{'-ro' if ro else ''}={src}:{dst}" for src, dst, ro in self.binds()]
        # --system-call-filter=bpf: nspawn's seccomp allow list lacks bpf(2).
        # --kill-signal=SIGTERM: without --boot nspawn would SIGKILL its PID 1.
        return ["systemd-nspawn", "--quiet", "--register=no", "--keep-unit", f"--machine={self.name}",
                "-D", self.image.rootfs, "--read-only", "--console=pipe", "--notify-ready=yes",
                f"--network-namespace-path=/run/netns/{self.site.ns_edge}",
                "--capability=" + ",".join(self.unit_caps), "--drop-capability=" + ",".join(drop),
                "--no-new-privileges=yes", "--kill-signal=SIGTERM", "--system-call-filter=bpf",
                "--resolv-conf=off", "--timezone=off", "--link-journal=no", *binds,
                *[f"--setenv={k}={v}" for k, v in self.env.items()],
                "--", *self.entry, *self.command(args)]

    def start(self, args=("--lan", "lan0"), wait=True, timeout=20):
        notify_path = os.path.join(self.agent.tmp, f"{self.name}.notify")
        if os.path.exists(notify_path):
            os.unlink(notify_path)
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(notify_path)
        try:
            with open(self.log, "a") as logf:
                self.proc = subprocess.Popen(self.argv(args), stdin=subprocess.DEVNULL, stdout=logf,
                                             stderr=subprocess.STDOUT,
                                             env=dict(os.environ, NOTIFY_SOCKET=notify_path))
            if wait:
                self._wait_ready(notify, timeout)
        finally:
            notify.close()

    def _wait_ready(self, notify, timeout):
        # --notify-ready=yes: nspawn passes on READY=1 once clovisd (its PID 1) sent it.
        wait_notify_ready(notify, self.proc, self.read_log, "container", timeout)

    def stop(self, timeout=15):
        """SIGTERM to the runtime, which passes it on; returns the exit status."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def wait(self, timeout=20):
        return self.proc.wait(timeout)

    def read_log(self):
        try:
            with open(self.log) as f:
                return f.read()
        except OSError:
            return ""

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        # Left by nspawn when /run is not a tmpfs; named after this run's machine.
        shutil.rmtree(f"/run/systemd/nspawn/propagate/{self.name}", ignore_errors=True)


class PodmanContainer(Container):
    """podman run of the OCI image with runc: crun refuses hybrid cgroup hosts such as this
    one ("cgroups in hybrid mode not supported"). Limits are given: podman's default nofile
    (1048576) is above this machine's hard limit and runc fails ("error setting rlimit type
    7"); nproc failed even at this process's own value (type 6), and 4096 is plenty for
    clovisd's few threads."""

    def podman(self, *args, check=True, timeout=60):
        r = subprocess.run(["podman", "--runtime", "runc", *args], capture_output=True, text=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args[:2])} failed ({r.returncode}):\n{r.stderr}")
        return r.stdout.strip()

    def start(self, args=("--lan", "lan0"), wait=True, timeout=20):
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        limits = [f"--ulimit=nofile={nofile}:{nofile}", "--ulimit=nproc=4096:4096"]
        vols = [f"--volume={src}:{dst}{':ro' if ro else ''}" for src, dst, ro in self.binds()]
        self.podman("run", "--detach", "--pull=never", f"--name={self.name}",
                    f"--network=ns:/run/netns/{self.site.ns_edge}", "--read-only",
                    "--security-opt=no-new-privileges", "--cap-drop=all",
                    "--cap-add=" + ",".join(c[len("CAP_"):] for c in self.unit_caps), *limits, *vols,
                    f"--entrypoint={json.dumps(self.entry)}", *[f"--env={k}={v}" for k, v in self.env.items()],
                    self.image.podman_image(), *self.command(args))
        if wait:
            self._wait_ready(timeout)

    def _wait_ready(self, timeout):
        # podman -d returns at once; ready is when the shared socket answers.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.podman("inspect", "--format", "{{.State.Running}}", self.name) != "true":
                raise RuntimeError(f"container exited with {self.exit_code()}:\n{self.read_log()}")
            r = subprocess.run([CLOVISCTL, "--socket", self.agent.socket, "status"], capture_output=True)
            if r.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"container not ready within {timeout}s:\n{self.read_log()}")

    def exit_code(self):
        return int(self.podman("inspect", "--format", "{{.State.ExitCode}}", self.name))

    def stop(self, timeout=15):
        """podman stop: the image's stop signal (SIGTERM); returns the exit status."""
        self.podman("stop", f"--time={timeout}", self.name, timeout=timeout + 30)
        return self.exit_code()

    def wait(self, timeout=20):
        return int(self.podman("wait", self.name, timeout=timeout).splitlines()[-1])

    def read_log(self):
        r = subprocess.run(["podman", "logs", self.name], capture_output=True, text=True, timeout=30)
        return r.stdout + r.stderr  # the container's stdout and stderr, as podman keeps them

    def close(self):
        self.podman("rm", "--force", "--time=5", self.name, check=False)
