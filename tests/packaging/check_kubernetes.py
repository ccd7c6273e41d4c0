#!/usr/bin/env python3
"""Offline checks of the Kubernetes manifests in packaging/kubernetes/ (no cluster).

    check_kubernetes.py --clovisd PATH --clovisctl PATH [--dir DIR] [--unit FILE] [--bad FILE]

- schema: every object decodes strictly against the Kubernetes API schema
  (kube_schema.py: unknown fields, wrong types, missing required fields);
  kustomization.yaml lists every manifest;
- references: selectors match the pod labels, mounts name volumes, the
  ConfigMap and ServiceAccount the pods use exist, the Service's port is a
  container port, Bidirectional propagation only in a privileged container;
- the DaemonSet against the project: its capabilities are the systemd unit's
  (and it drops every other), host paths are clovisd's defaults, every flag it
  passes is one `clovisd --help` lists, its probes are clovisctl subcommands,
  every mapping of the ConfigMap passes `clovisctl validate`;
- the start script, run as the kubelet would (its $(VAR) expansion) with a
  stand-in clovisd that records its arguments: a node with keys of its own, a
  node without, a node with no LAN interfaces;
- the GitOps gate (ci/validate-mappings.py): it passes these manifests and
  refuses a copy with an invalid mapping and a bad interface name;
- that these checks can fail: each document of kubernetes-bad.yaml is refused
  with the error it names, and copies of the DaemonSet or ConfigMap with one
  defect each (an extra capability, a misspelt flag, an invalid mapping) are.

Prints one line per check ("ok ..." or "FAIL ..." and the reasons); exit
status 1 when one failed. Needs python3-kubernetes and python3-yaml (Debian).
"""
import argparse
import copy
import os
import re
import shlex
import subprocess
import sys
import tempfile

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kube_schema  # noqa: E402

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FAILED = []


def report(name, errors):
    if errors:
        FAILED.append(name)
        print(f"FAIL {name}")
        for e in errors:
            print(f"     {e}")
    else:
        print(f"ok   {name}")


# ---- loading -----------------------------------------------------------------


def load_manifests(directory):
    """{file name: [documents]} of every *.yaml but kustomization.yaml."""
    out = {}
    for name in sorted(os.listdir(directory)):
        if name.endswith(".yaml") and name != "kustomization.yaml":
            with open(os.path.join(directory, name)) as f:
                out[name] = [d for d in yaml.safe_load_all(f) if d is not None]
    return out


def objects(manifests):
    return [d for docs in manifests.values() for d in docs]


def find(objs, kind, name=None):
    return [o for o in objs if o.get("kind") == kind and (name is None or o["metadata"]["name"] == name)]


def one(objs, kind):
    found = find(objs, kind)
    if len(found) != 1:
        raise SystemExit(f"FAIL expected one {kind} in the manifests, found {len(found)}")
    return found[0]


# ---- what the project's binaries and unit say ----------------------------------


def help_text(binary, *args):
    r = subprocess.run([binary, *args, "--help"], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise SystemExit(f"FAIL {binary} {' '.join(args)} --help exited {r.returncode}: {r.stderr}")
    return r.stdout


def help_flags(text):
    """{--flag: default or None} from CLI11's option list."""
    flags = {}
    for m in re.finditer(r"^\s+(?:-\w,)?(--[a-z0-9-]+)(?: \S+?(?:=(\S+))?)?(?:\s|$)", text, re.M):
        flags[m.group(1)] = m.group(2)
    return flags


def help_subcommands(text):
    part = text.split("Subcommands:", 1)[1] if "Subcommands:" in text else ""
    return set(re.findall(r"^\s+([a-z]+)\s", part, re.M))


def unit_capabilities(unit):
    sets = {}
    with open(unit) as f:
        for line in f:
            m = re.match(r"(CapabilityBoundingSet|AmbientCapabilities)=(.*)", line.strip())
            if m:
                sets[m.group(1)] = {c.removeprefix("CAP_") for c in m.group(2).split()}
    return sets


# ---- checks ---------------------------------------------------------------------


def check_schema(manifests):
    errors = []
    for name, docs in manifests.items():
        for i, d in enumerate(docs):
            errors += kube_schema.decode_object(d, f"{name}#{i}")
    return errors


def check_kustomization(directory, manifests):
    with open(os.path.join(directory, "kustomization.yaml")) as f:
        k = yaml.safe_load(f)
    errors = []
    extra = set(k) - {"apiVersion", "kind", "resources"}
    if extra:
        errors.append(f"kustomization.yaml: fields this check does not know: {sorted(extra)}")
    if set(k.get("resources", [])) != set(manifests):
        errors.append(f"kustomization.yaml resources {sorted(k.get('resources', []))} "
                      f"are not the manifests {sorted(manifests)}")
    return errors


def pod_spec(ds):
    return ds["spec"]["template"]["spec"]


def container(ds):
    return pod_spec(ds)["containers"][0]


def check_references(objs):
    errors = []
    ds = one(objs, "DaemonSet")
    spec = pod_spec(ds)
    labels = ds["spec"]["template"]["metadata"].get("labels", {})
    for what, sel in [("DaemonSet selector", ds["spec"]["selector"].get("matchLabels", {}))] + [
            (f"Service {s['metadata']['name']} selector", s["spec"].get("selector", {}))
            for s in find(objs, "Service")]:
        if not sel or any(labels.get(k) != v for k, v in sel.items()):
            errors.append(f"{what} {sel} does not match the pod labels {labels}")
    ns = {o["metadata"].get("namespace") for o in objs}
    if len(ns) != 1:
        errors.append(f"the objects are in several namespaces: {sorted(map(str, ns))}")
    sa = spec.get("serviceAccountName")
    if sa and not find(objs, "ServiceAccount", sa):
        errors.append(f"serviceAccountName {sa}: no such ServiceAccount in the manifests")
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    for v in volumes.values():
        if "configMap" in v and not find(objs, "ConfigMap", v["configMap"]["name"]):
            errors.append(f"volume {v['name']}: no ConfigMap {v['configMap']['name']} in the manifests")
    c = container(ds)
    for m in c.get("volumeMounts", []):
        if m["name"] not in volumes:
            errors.append(f"volumeMount {m['name']}: no such volume")
        if m.get("subPath") and "configMap" in volumes.get(m["name"], {}):
            errors.append(f"volumeMount {m['name']}: a subPath mount of a ConfigMap never sees its updates")
        if m.get("mountPropagation") == "Bidirectional" and not c.get("securityContext", {}).get("privileged"):
            errors.append(f"volumeMount {m['name']}: Bidirectional propagation is for privileged containers only")
    port_names = {p.get("name") for p in c.get("ports", [])}
    for s in find(objs, "Service"):
        for p in s["spec"]["ports"]:
            if isinstance(p.get("targetPort"), str) and p["targetPort"] not in port_names:
                errors.append(f"Service {s['metadata']['name']} targetPort {p['targetPort']}: no such container port")
    return errors


def check_daemonset(objs, unit, clovisd_flags):
    """What docs/FLEET.md promises of the DaemonSet, and that it matches the unit."""
    errors = []
    ds = one(objs, "DaemonSet")
    spec, c = pod_spec(ds), container(ds)
    sc = c.get("securityContext", {})
    caps = unit_capabilities(unit)
    if len(caps) != 2 or caps["CapabilityBoundingSet"] != caps["AmbientCapabilities"]:
        errors.append(f"{unit}: CapabilityBoundingSet and AmbientCapabilities differ or are missing: {caps}")
    added = set(sc.get("capabilities", {}).get("add", []))
    if added != caps.get("AmbientCapabilities"):
        errors.append(f"capabilities add {sorted(added)} != the unit's {sorted(caps.get('AmbientCapabilities', []))}")
    if sc.get("capabilities", {}).get("drop") != ["ALL"]:
        errors.append("capabilities: drop [ALL] (the runtime's default set is not the unit's)")
    for key, want in [("privileged", False), ("allowPrivilegeEscalation", False), ("readOnlyRootFilesystem", True)]:
        if sc.get(key) is not want:
            errors.append(f"securityContext.{key} is {sc.get(key)!r}, expected {want}")
    if spec.get("hostNetwork") is not True:
        errors.append("hostNetwork: true (clovisd steers the node's interfaces)")
    if spec.get("priorityClassName") != "system-node-critical":
        errors.append("priorityClassName: system-node-critical")
    if not spec.get("tolerations") or not spec.get("nodeSelector"):
        errors.append("tolerations and a nodeSelector are expected")
    ru = ds["spec"].get("updateStrategy", {}).get("rollingUpdate", {})
    if ds["spec"].get("updateStrategy", {}).get("type") != "RollingUpdate" or ru.get("maxUnavailable") != 1 \
            or ru.get("maxSurge") != 0:
        errors.append(f"updateStrategy: RollingUpdate, maxUnavailable 1, maxSurge 0 (got {ru})")
    # Host paths are where clovisd keeps its state by default, mounted at the same path.
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    wanted = {
        "/sys/fs/bpf": os.path.dirname(clovisd_flags.get("--pin-dir") or ""),
        "/run/clovis": os.path.dirname(clovisd_flags.get("--socket") or ""),
        "/var/lib/clovis": clovisd_flags.get("--state-dir"),
    }
    for path, default in wanted.items():
        if default != path:
            errors.append(f"clovisd's default for {path} is now {default}: update the DaemonSet")
        m = mounts.get(path)
        if not m or volumes.get(m["name"], {}).get("hostPath", {}).get("path") != path:
            errors.append(f"{path}: expected the node's {path} (hostPath) mounted there")
    if mounts.get("/sys/fs/bpf", {}).get("mountPropagation") != "HostToContainer":
        errors.append("/sys/fs/bpf: mountPropagation HostToContainer")
    if not c.get("readinessProbe"):
        errors.append("a readinessProbe from clovisd's status is expected")
    return errors


def check_flags(args, flags):
    """Every --option among args is one clovisd accepts."""
    unknown = [a.split("=", 1)[0] for a in args if a.startswith("--") and a.split("=", 1)[0] not in flags]
    return [f"clovisd has no option {u} (clovisd --help)" for u in unknown]


def script_flags(ds):
    """The --options of the start script's exec line, and the container's args."""
    c = container(ds)
    script = c["command"][2]
    execs = [line for line in script.splitlines() if line.strip().startswith("exec clovisd")]
    if len(execs) != 1:
        return None
    return [t for t in shlex.split(execs[0]) if t.startswith("--")] + c.get("args", [])


def check_probes(ds, clovisctl):
    errors = []
    subs = help_subcommands(help_text(clovisctl))
    for probe in ("readinessProbe", "livenessProbe"):
        cmd = container(ds).get(probe, {}).get("exec", {}).get("command")
        if not cmd:
            continue
        if cmd[0] != "clovisctl" or len(cmd) < 2 or cmd[1] not in subs:
            errors.append(f"{probe}: {cmd} is not a clovisctl subcommand ({sorted(subs)})")
            continue
        flags = help_flags(help_text(clovisctl, cmd[1])) | help_flags(help_text(clovisctl))
        errors += [f"{probe}: clovisctl {cmd[1]} has no option {a}" for a in cmd[2:]
                   if a.startswith("-") and a.split("=", 1)[0] not in flags and not re.fullmatch(r"-\w", a)]
    return errors


def check_mappings(cm, clovisctl, tmp):
    errors = []
    keys = [k for k in cm.get("data", {}) if k == "wan.yaml" or k.endswith(".wan.yaml")]
    if "wan.yaml" not in keys:
        errors.append("ConfigMap: no key wan.yaml (the mapping of every node without one of its own)")
    for k in keys:
        path = os.path.join(tmp, k)
        with open(path, "w") as f:
            f.write(cm["data"][k])
        r = subprocess.run([clovisctl, "validate", path], capture_output=True, text=True, check=False)
        if r.returncode != 0:
            errors.append(f"clovisctl validate {k} exited {r.returncode}: {(r.stdout + r.stderr).strip()}")
    return errors


# ---- the start script, as the kubelet runs it -------------------------------------


def kubelet_expand(s, env):
    """$(NAME) -> env[NAME] when defined, $$ -> $, anything else unchanged (the
    kubelet's expansion of command and args)."""
    def repl(m):
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return re.sub(r"\$\$|\$\(([^)]*)\)", repl, s)


def run_start(ds, cm, node, tmp, lan_override=None):
    """(exit status, stderr, recorded clovisd arguments) of the start script on `node`."""
    c = container(ds)
    conf = os.path.join(tmp, f"conf-{node}")
    os.makedirs(conf, exist_ok=True)
    for k, v in cm["data"].items():
        with open(os.path.join(conf, k), "w") as f:
            f.write(lan_override if (lan_override is not None and k.endswith("lan")) else v)
    fields = {"spec.nodeName": node, "status.hostIP": "192.0.2.7"}
    env = {}
    for e in c.get("env", []):
        env[e["name"]] = fields[e["valueFrom"]["fieldRef"]["fieldPath"]] if "valueFrom" in e else e["value"]
    env["CLOVIS_CONFIG_DIR"] = conf  # the mount path, checked apart
    shim_dir = os.path.join(tmp, "bin")
    os.makedirs(shim_dir, exist_ok=True)
    record = os.path.join(tmp, f"args-{node}")
    with open(os.path.join(shim_dir, "clovisd"), "w") as f:
        f.write(f'#!/bin/sh\nprintf "%s\\n" "$@" >"{record}"\n')
    os.chmod(os.path.join(shim_dir, "clovisd"), 0o755)
    argv = [kubelet_expand(a, env) for a in c["command"] + c.get("args", [])]
    # PATH holds clovisd alone: the script may use shell builtins only (the
    # image's sh is busybox with no other tool linked).
    r = subprocess.run(argv, env={**env, "PATH": shim_dir}, capture_output=True, text=True, check=False)
    recorded = open(record).read().splitlines() if os.path.exists(record) else None
    return r.returncode, r.stderr, recorded


def check_start_script(ds, cm, tmp):
    errors = []
    c = container(ds)
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    config_mount = [m["mountPath"] for m in c["volumeMounts"] if m["name"] == "config"]
    if [env.get("CLOVIS_CONFIG_DIR")] != config_mount:
        errors.append(f"CLOVIS_CONFIG_DIR {env.get('CLOVIS_CONFIG_DIR')} is not the ConfigMap's mount {config_mount}")
    data = cm["data"]
    own = sorted({k[:-len(".lan")] for k in data if k.endswith(".lan")} & {k[:-len(".wan.yaml")] for k in data
                                                                          if k.endswith(".wan.yaml")})
    if not own:
        return errors + ["the ConfigMap has no node with keys of its own (NODE.lan, NODE.wan.yaml) to try"]
    cases = [(own[0], data[f"{own[0]}.lan"].strip(), f"{own[0]}.wan.yaml"),
             ("node-without-keys", data["lan"].strip(), "wan.yaml")]
    for node, lan, mapping in cases:
        rc, err, args = run_start(ds, cm, node, tmp)
        conf = os.path.join(tmp, f"conf-{node}")
        want = ["--config", os.path.join(conf, mapping), "--follow-config", "--lan", lan,
                "--metrics-listen", "192.0.2.7:9464"]
        if rc != 0 or args != want:
            errors.append(f"node {node}: exit {rc}, clovisd {args}, expected {want}; stderr: {err.strip()}")
    rc, err, args = run_start(ds, cm, "node-blank-separated", tmp, lan_override="eth1, eth2\teth3\n")
    if rc != 0 or args is None or args[4] != "eth1,eth2,eth3":
        errors.append(f"LAN 'eth1, eth2<tab>eth3': exit {rc}, clovisd {args}, expected --lan eth1,eth2,eth3")
    rc, err, args = run_start(ds, cm, "node-empty-lan", tmp, lan_override=" \n")
    if rc == 0 or args is not None or "no LAN interfaces for node node-empty-lan" not in err:
        errors.append(f"empty LAN list: exit {rc}, clovisd ran with {args}; stderr: {err.strip()}")
    return errors


# ---- the checks can fail ------------------------------------------------------------


def check_bad_fixture(path):
    errors = []
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    for i, d in enumerate(docs):
        expect = d["metadata"]["annotations"]["clovis.test/expect"]
        got = kube_schema.decode_object(d, f"#{i}")
        if len(got) != 1 or expect not in got[0]:
            errors.append(f"document {i} ({d['metadata']['name']}): expected the one error '{expect}', got {got}")
    return errors, len(docs)


def check_mutants(objs, unit, clovisd_flags, clovisctl, tmp):
    errors = []
    ds = one(objs, "DaemonSet")
    extra_cap = copy.deepcopy(ds)
    container(extra_cap)["securityContext"]["capabilities"]["add"].append("SYS_MODULE")
    if not any("SYS_MODULE" in e for e in check_daemonset([extra_cap], unit, clovisd_flags)):
        errors.append("a DaemonSet adding SYS_MODULE passed the capability check")
    misspelt = copy.deepcopy(ds)
    container(misspelt)["args"][0] = "--metrics-lisen"
    if not check_flags(script_flags(misspelt), clovisd_flags):
        errors.append("a DaemonSet passing --metrics-lisen passed the flag check")
    bad_cm = copy.deepcopy(one(objs, "ConfigMap"))
    bad_cm["data"]["wan.yaml"] = bad_cm["data"]["wan.yaml"].replace("failover: [fiber, lte]", "failover: [fibre, lte]")
    if bad_cm["data"]["wan.yaml"] == one(objs, "ConfigMap")["data"]["wan.yaml"]:
        errors.append("the ConfigMap's wan.yaml has no 'failover: [fiber, lte]' to break")
    else:
        bad_dir = os.path.join(tmp, "bad-mapping")
        os.makedirs(bad_dir)
        if not check_mappings(bad_cm, clovisctl, bad_dir):
            errors.append("a mapping whose policy names an unknown link passed clovisctl validate")
    return errors


def check_gate(directory, clovisctl, tmp):
    """ci/validate-mappings.py passes the manifests and refuses a broken copy, and
    a directory without a clovis ConfigMap."""
    gate = os.path.join(directory, "ci", "validate-mappings.py")

    def run(*paths, stdin=None):
        return subprocess.run([sys.executable, gate, "--clovisctl", clovisctl, *paths], input=stdin,
                              capture_output=True, text=True, check=False)
    errors = []
    r = run(directory)
    if r.returncode != 0:
        errors.append(f"on {directory}: exit {r.returncode}: {r.stdout}{r.stderr}")
    with open(os.path.join(directory, "configmap.yaml")) as f:
        text = f.read()
    broken = text.replace("failover: [fiber, lte]", "failover: [fibre, lte]").replace("lan: eth1", "lan: eth1/2")
    r = run("-", stdin=broken)
    if r.returncode != 1 or "unknown link 'fibre'" not in r.stdout or "key lan: not interface names" not in r.stdout:
        errors.append(f"on a copy with an unknown link and a bad interface name: exit {r.returncode}: {r.stdout}")
    with open(os.path.join(directory, "ci", "github-actions.yml")) as f:
        job = yaml.safe_load(f)
    steps = [s.get("run", "") for j in job["jobs"].values() for s in j["steps"]]
    if not any("ci/validate-mappings.py" in r for r in steps):
        errors.append("ci/github-actions.yml runs no ci/validate-mappings.py")
    empty = os.path.join(tmp, "no-configmap")
    os.makedirs(empty)
    r = run(empty)
    if r.returncode != 1 or "no ConfigMap labelled" not in r.stdout:
        errors.append(f"on a directory without a clovis ConfigMap: exit {r.returncode}: {r.stdout}")
    return errors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clovisd", required=True)
    ap.add_argument("--clovisctl", required=True)
    ap.add_argument("--dir", default=os.path.join(REPO, "packaging", "kubernetes"))
    ap.add_argument("--unit", default=os.path.join(REPO, "packaging", "systemd", "clovisd.service"))
    ap.add_argument("--bad", default=os.path.join(REPO, "tests", "packaging", "kubernetes-bad.yaml"))
    a = ap.parse_args()

    manifests = load_manifests(a.dir)
    objs = objects(manifests)
    clovisd_flags = help_flags(help_text(a.clovisd))
    ds, cm = one(objs, "DaemonSet"), one(objs, "ConfigMap")
    report(f"strict schema decode of {len(objs)} objects in {len(manifests)} files "
           "(python3-kubernetes models)", check_schema(manifests))
    report("kustomization.yaml lists every manifest", check_kustomization(a.dir, manifests))
    report("references: selectors, volumes, ConfigMap, ServiceAccount, ports", check_references(objs))
    report("DaemonSet: the unit's capabilities, host paths, rollout, scheduling",
           check_daemonset(objs, a.unit, clovisd_flags))
    flags = script_flags(ds)
    report("every option the DaemonSet passes is in clovisd --help",
           ["no single 'exec clovisd' line in the start script"] if flags is None else check_flags(flags, clovisd_flags))
    report("probes are clovisctl subcommands and options", check_probes(ds, a.clovisctl))
    with tempfile.TemporaryDirectory() as tmp:
        report("every mapping of the ConfigMap passes clovisctl validate", check_mappings(cm, a.clovisctl, tmp))
        if subprocess.run(["stat", "-f", "-c", "%T", "/sys/fs/bpf"], capture_output=True, text=True,
                          check=False).stdout.strip() != "bpf_fs":
            report("start script", ["/sys/fs/bpf is not a bpffs mount here: the script refuses to start"])
        else:
            report("start script: per-node keys, defaults, an empty LAN list refused",
                   check_start_script(ds, cm, tmp))
        report("the GitOps gate ci/validate-mappings.py passes these, refuses broken ones",
               check_gate(a.dir, a.clovisctl, tmp))
        bad_errors, n = check_bad_fixture(a.bad)
        report(f"the decoder refuses each of the {n} documents of kubernetes-bad.yaml", bad_errors)
        report("the project checks refuse an extra capability, a misspelt flag, an invalid mapping",
               check_mutants(objs, a.unit, clovisd_flags, a.clovisctl, tmp))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
