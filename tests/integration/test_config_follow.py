#!/usr/bin/env python3
"""clovisd --follow-config on a real edge site, with the file mounted as
Kubernetes mounts a ConfigMap: wan.yaml -> ..data/wan.yaml, ..data -> a
timestamped directory, each update a new directory and an atomic rename of
the ..data symlink. A good change is applied (generation, steering follows),
a bad one is rejected with its file:line:col and the running mapping stays,
the same content swapped in again applies nothing, an operator's apply runs
until the file changes, a mapping with auto-rollback that leaves no usable
link is rolled back to the one before, and a restart neither applies an
unchanged file again nor stops at a bad one.

    python3 tests/integration/test_config_follow.py [-k PATTERN]
"""
import os
import signal
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from clovis_site import Clovisd, require_built  # noqa: E402
from edgesite import EdgeSite  # noqa: E402
import privileged  # noqa: E402

MAPPING = """version: 1
links:
  - {name: a, interface: wan0, gateway: 100.64.0.1, mode: route}
  - {name: b, interface: wan1, gateway: 100.64.1.1, mode: route}
rules:
  - {name: udp-9001, priority: 10, match: {proto: udp, dport: 9001}, link: a}
default: {action: bypass}
"""
# 9001 moves to b.
MAPPING_2 = MAPPING.replace("dport: 9001}, link: a", "dport: 9001}, link: b")
# Line 4, a misspelt key.
BAD = MAPPING.replace("gateway: 100.64.1.1", "gatway: 100.64.1.1")
# Valid, but its only link's interface does not exist: no usable link.
NO_LINK = """version: 1
auto-rollback: {after: 3s}
links:
  - {name: gone, interface: nosuch0, gateway: 100.64.0.1, mode: route}
rules:
  - {name: udp-9001, priority: 10, match: {proto: udp, dport: 9001}, link: gone}
default: {action: bypass}
"""


def setUpModule():
    privileged.require_root()
    require_built()


class ConfigMapVolume:
    """A directory laid out as the kubelet's atomic writer lays out a ConfigMap volume."""

    def __init__(self, path):
        self.path = path
        self.n = 0
        os.makedirs(path)

    def update(self, text):
        self.n += 1
        stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.") + f"{self.n:09d}"
        os.mkdir(os.path.join(self.path, stamp))
        with open(os.path.join(self.path, stamp, "wan.yaml"), "w") as f:
            f.write(text)
        data = os.path.join(self.path, "..data")
        old = os.readlink(data) if os.path.islink(data) else None
        os.symlink(stamp, os.path.join(self.path, "..data_tmp"))
        os.rename(os.path.join(self.path, "..data_tmp"), data)
        if not os.path.islink(os.path.join(self.path, "wan.yaml")):
            os.symlink("..data/wan.yaml", os.path.join(self.path, "wan.yaml"))
        if old:
            os.remove(os.path.join(self.path, old, "wan.yaml"))
            os.rmdir(os.path.join(self.path, old))

    @property
    def file(self):
        return os.path.join(self.path, "wan.yaml")


class ConfigFollow(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.site = EdgeSite(wans=2).start()
        cls.agent = Clovisd(cls.site)
        try:
            cls.volume = ConfigMapVolume(os.path.join(cls.agent.tmp, "config"))
            cls.volume.update(MAPPING)
            cls.agent.start(extra=["-c", cls.volume.file, "--follow-config"])
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.agent.close()
        cls.site.close()

    def status(self):
        return self.agent.ctl_json("status")

    def wait_status(self, what, until, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.status()
            if until(s):
                return s
            time.sleep(0.1)
        self.fail(f"{what} not seen within {timeout}s; status config_file: {s.get('config_file')}, "
                  f"generation {s['generation']}\n{self.agent.read_log()[-3000:]}")

    def config_events(self):
        return [e for e in self.agent.ctl_json("events")["events"] if e["kind"] == "config"]

    def test_file_changes(self):
        s = self.status()
        self.assertEqual(s["generation"], 1)
        self.assertEqual(s["config_file"]["path"], self.volume.file)
        self.assertEqual(s["config_file"]["result"], "applied")
        self.assertTrue(s["config_file"]["in_effect"])
        self.assertEqual(self.site.udp_flow(41000, 9001, 50).by_wan, {0: 50})

        # A good change: applied through the ..data swap, steering follows.
        self.volume.update(MAPPING_2)
        s = self.wait_status("the good change", lambda s: s["generation"] == 2)
        self.assertEqual(s["config_file"]["result"], "applied")
        self.assertEqual(s["config_file"]["generation"], 2)
        self.assertTrue(s["config_file"]["in_effect"])
        self.assertEqual(self.site.udp_flow(41001, 9001, 50).by_wan, {1: 50})
        self.assertEqual([e for e in self.agent.ctl_json("history")["entries"] if e["running"]][0]["source"], self.volume.file)

        # A bad change: rejected with where, the running mapping stays.
        self.volume.update(BAD)
        s = self.wait_status("the rejection", lambda s: s["config_file"]["result"] == "rejected")
        self.assertIn(f"{self.volume.file}:4:", s["config_file"]["error"])
        self.assertEqual(s["generation"], 2)
        self.assertFalse(s["config_file"]["in_effect"])
        self.assertIn(f"{self.volume.file}:4:", self.agent.read_log())
        ev = self.config_events()[-1]
        self.assertEqual(ev["to"], "rejected")
        self.assertIn("generation 2 keeps running", ev["reason"])
        self.assertEqual(self.site.udp_flow(41002, 9001, 50).by_wan, {1: 50})

        # The good content again: applied. The same content swapped in once
        # more (a kubelet resync): nothing.
        self.volume.update(MAPPING_2)
        s = self.wait_status("the fixed file", lambda s: s["config_file"]["result"] == "applied")
        self.assertEqual(s["generation"], 3)
        self.volume.update(MAPPING_2)
        time.sleep(1.5)
        self.assertEqual(self.status()["generation"], 3)

        # An operator's apply runs until the file changes; status says so.
        manual = os.path.join(self.agent.tmp, "manual.yaml")
        with open(manual, "w") as f:
            f.write(MAPPING)
        self.agent.ctl("apply", manual, check=True)
        s = self.status()
        self.assertEqual(s["generation"], 4)
        self.assertFalse(s["config_file"]["in_effect"])
        self.assertEqual(self.site.udp_flow(41003, 9001, 50).by_wan, {0: 50})

        # auto-rollback: no usable link under the new mapping for 3 s, while
        # the one before had two: rolled back to it, with an event saying why.
        self.volume.update(NO_LINK)
        self.wait_status("the no-link mapping", lambda s: s["generation"] == 5)
        t0 = time.monotonic()
        s = self.wait_status("the auto-rollback", lambda s: s["generation"] == 6, timeout=15)
        self.assertGreaterEqual(time.monotonic() - t0, 2.0)
        self.assertFalse(s["config_file"]["in_effect"])
        self.assertEqual(s["config_file"]["generation"], 5)
        self.wait_status("the file's state", lambda s: s["config_file"]["result"] == "rolled back")
        self.assertEqual(self.agent.ctl("get", "mapping").stdout.strip(), MAPPING.strip())
        ev = self.config_events()[-1]
        self.assertEqual(ev["to"], "rolled back")
        self.assertIn("generation 5 left no usable link for 3 s", ev["reason"])
        self.assertIn("auto-rollback: generation 5 left no usable link", self.agent.read_log())
        self.assertEqual(self.site.udp_flow(41004, 9001, 50).by_wan, {0: 50})
        # The file still holds the rolled-back mapping: not applied again,
        # nor by a restart.
        time.sleep(1.5)
        self.assertEqual(self.status()["generation"], 6)
        self.agent.kill(signal.SIGTERM)
        self.agent.start(extra=["-c", self.volume.file, "--follow-config"])
        s = self.status()
        self.assertEqual(s["generation"], 6)
        self.assertEqual(s["config_file"]["result"], "rolled back")
        # Until it changes.
        self.volume.update(MAPPING_2)
        s = self.wait_status("the next change", lambda s: s["generation"] == 7)
        self.assertTrue(s["config_file"]["in_effect"])
        self.assertEqual(self.site.udp_flow(41005, 9001, 50).by_wan, {1: 50})

    def test_restart(self):
        """A restart with the file unchanged applies nothing (same generation);
        one with a bad file starts anyway, on the last applied mapping."""
        self.volume.update(MAPPING)
        s = self.wait_status("the file applied", lambda s: s["config_file"]["in_effect"]
                             and s["config_file"]["hash"] and "link: a" in self.agent.ctl("get", "mapping").stdout)
        gen = s["generation"]
        args = ["-c", self.volume.file, "--follow-config"]
        self.agent.kill(signal.SIGTERM)
        self.agent.start(extra=args)
        s = self.status()
        self.assertEqual(s["generation"], gen)
        self.assertTrue(s["config_file"]["in_effect"])
        self.agent.kill(signal.SIGTERM)
        self.volume.update(BAD)
        self.agent.start(extra=args)
        s = self.status()
        self.assertEqual(s["generation"], gen)
        self.assertEqual(s["config_file"]["result"], "rejected")
        self.assertIn(f"{self.volume.file}:4:", s["config_file"]["error"])
        self.assertEqual(self.site.udp_flow(41010, 9001, 50).by_wan, {0: 50})
        self.volume.update(MAPPING_2)
        self.wait_status("the fixed file", lambda s: s["generation"] == gen + 1 and s["config_file"]["in_effect"])
        self.assertEqual(self.site.udp_flow(41011, 9001, 50).by_wan, {1: 50})


if __name__ == "__main__":
    privileged.main(__name__)
