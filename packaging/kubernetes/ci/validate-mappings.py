#!/usr/bin/env python3
"""The GitOps gate for clovis: check every clovis ConfigMap of a repository (or of
`kustomize build` output) before it reaches a cluster.

    validate-mappings.py [--clovisctl PATH] FILE|DIR|- ...

A clovis ConfigMap is one labelled app.kubernetes.io/name=clovisd (as
packaging/kubernetes/configmap.yaml is). Each of its keys is checked as the
DaemonSet's nodes will read it:
  wan.yaml, NODE.wan.yaml  `clovisctl validate` (the same code clovisd applies
                           with; exit status 1 on an invalid mapping)
  lan, NODE.lan            one or more interface names (separated by commas or
                           blanks, as the DaemonSet's start script reads them)
Fails (exit status 1) on any problem, and when no clovis ConfigMap was found
at all, so that a moved or relabelled file cannot make the gate pass vacuously.
Needs python3-yaml and clovisctl (the clovis package, or its container image).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import yaml

IFNAME = re.compile(r"[^/\s:,]{1,15}")  # the kernel's IFNAMSIZ, no '/', ':' or blanks


def documents(paths):
    for p in paths:
        if p == "-":
            yield "<stdin>", sys.stdin.read()
        elif os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for f in sorted(files):
                    if f.endswith((".yaml", ".yml")):
                        with open(os.path.join(root, f)) as fh:
                            yield os.path.join(root, f), fh.read()
        else:
            with open(p) as fh:
                yield p, fh.read()


def clovis_configmaps(paths):
    for where, text in documents(paths):
        for doc in yaml.safe_load_all(text):
            if isinstance(doc, dict) and doc.get("kind") == "ConfigMap" and \
                    (doc.get("metadata") or {}).get("labels", {}).get("app.kubernetes.io/name") == "clovisd":
                yield where, doc


def check(where, cm, clovisctl, tmp):
    problems = 0
    name = f"{where}: ConfigMap {cm['metadata'].get('name')}"
    data = cm.get("data") or {}
    if "wan.yaml" not in data or "lan" not in data:
        print(f"FAIL {name}: keys wan.yaml and lan are required (the defaults of every node)")
        problems += 1
    for key, value in sorted(data.items()):
        if key == "lan" or key.endswith(".lan"):
            names = [n for n in re.split(r"[,\s]+", str(value)) if n]
            bad = [n for n in names if not IFNAME.fullmatch(n)]
            if bad or not names:
                print(f"FAIL {name} key {key}: not interface names: {bad or value!r}")
                problems += 1
            else:
                print(f"ok   {name} key {key}: {','.join(names)}")
        elif key == "wan.yaml" or key.endswith(".wan.yaml"):
            path = os.path.join(tmp, key)
            with open(path, "w") as f:
                f.write(value)
            r = subprocess.run([clovisctl, "validate", path], capture_output=True, text=True, check=False)
            out = (r.stdout + r.stderr).strip().replace(path, key)
            if r.returncode != 0:
                print(f"FAIL {name} key {key}: clovisctl validate exited {r.returncode}")
                for line in out.splitlines():
                    print(f"     {line}")
                problems += 1
            else:
                print(f"ok   {name} key {key}: {out}")
    return problems


def main():
    ap = argparse.ArgumentParser(description="Check clovis ConfigMaps with clovisctl validate.")
    ap.add_argument("--clovisctl", default="clovisctl")
    ap.add_argument("paths", nargs="+", metavar="FILE|DIR|-")
    a = ap.parse_args()
    found = problems = 0
    for where, cm in clovis_configmaps(a.paths):
        found += 1
        with tempfile.TemporaryDirectory() as tmp:
            problems += check(where, cm, a.clovisctl, tmp)
    if not found:
        print("FAIL no ConfigMap labelled app.kubernetes.io/name=clovisd in " + " ".join(a.paths))
        return 1
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
