#!/usr/bin/env python3
"""Worst-case WAN mappings for the bounded-apply measurements (issue #13,
item 4): the issue's expansion bomb and mappings of up to a given size in the
shapes that cost the most per byte. Writes YAML to stdout.

    python3 bench/bounded/gen_mapping.py issue > /tmp/issue.yaml
    python3 bench/bounded/gen_mapping.py rules --bytes 16777216 > /tmp/rules.yaml
    bench/bounded/run.sh build/cli/clovisctl      # every default shape, time and max RSS
    python3 bench/bounded/gen_mapping.py --list   # the default shapes, one a line

Shapes (the first 18, issue to alias-src, are the default set that run.sh,
memory.sh and dryrun.py measure; the others are named to run):
  issue       1000 rules x 64 src x 32 dst x dport 1-65534 (distinct prefixes), ~1 MB
  issue-same  the same with every rule matching the same prefixes
  rules       as many small valid rules as fit (one entry each)
  tiny        as many of the shortest rules as fit (any traffic to a link)
  wide-max    340 rules of 8 src x 8 dst x 24 dport blocks: just under the entries limit
  wide        rules of 8 src x 8 dst x 2 dport ranges (~500 entries each) until a limit
  shapes      127 rules of 64 src x 64 dst, each its own shape, every one shadowed by the
              ones before: the shadow check's worst case at the entries limit
  srclist     one rule with as many src prefixes as fit
  mixed-fam   one rule with IPv4 srcs and IPv6 dsts (a warning per prefix)
  policies    as many policies as fit, half the bytes, and rules naming them
  policies-max 4,096 policies (the limit) and up to 262,000 rules naming them
  errors      as many rules with a bad prefix as fit (one diagnostic each)
  deep        nested flow sequences 250 deep, repeated
  longstr     one rule name of nearly all the bytes
  aliases     anchors and aliases nesting 10 deep, x10 each (billion laughs)
  alias-rules one anchored rule with 64 src, aliased as many times as fit
  alias-match an anchored match of 64 src x 64 dst, named by as many rules as fit
  alias-src   an anchored list of 10,000 src prefixes, named by as many rules as fit
  rules-max   100,000 one-entry rules (kMaxRulesPerMapping), valid
  l7-max      16,384 rules with host, path-prefix, method and dst (kMaxL7RulesPerMapping),
              then one-entry rules up to 100,000, valid
  l7-over     100,000 rules with host, path-prefix, method and dst
  dense       one dport list of 1,999,900 items, just under kMaxYamlNodes
  src-max     one src list of as many /32s as fit under kMaxYamlNodes and the bytes
  headers     rules of 24 headers each until the file is full (over kMaxHeadersPerMapping)
  headers-max 4,096 rules of 16 long headers: kMaxHeadersPerMapping, valid
  members     one policy whose failover list fills the file
"""
import argparse
import ipaddress
import sys

# The shapes run.sh, memory.sh and dryrun.py measure when given none: the
# expansion bombs and the shapes that cost the most per byte. The limit
# shapes after them (rules-max ... members) are run by name.
DEFAULT_SHAPES = ["issue", "issue-same", "rules", "tiny", "wide", "wide-max", "shapes", "srclist", "mixed-fam",
                  "policies", "policies-max", "errors", "deep", "longstr", "aliases", "alias-rules", "alias-match",
                  "alias-src"]

HEAD = """version: 1
links:
  - {name: a, interface: wan0, gateway: 192.0.2.1}
  - {name: b, interface: wan1, gateway: 198.51.100.1}
policies:
  - {name: p, failover: [a, b]}
"""


def v4(n, plen=32):
    return f"{10 + (n >> 24) % 200}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}/{plen}" if plen == 32 else \
        f"{10 + (n >> 16) % 200}.{(n >> 8) & 255}.{n & 255}.0/{plen}"


def issue(out, same):
    out.write(HEAD + "rules:\n")
    for r in range(1000):
        base = 0 if same else r * 64
        src = ", ".join(v4(base + i) for i in range(64))
        dst = ", ".join(v4((base + i) * 7 + 1, 24) for i in range(32))
        out.write(f"  - name: r{r}\n    priority: {r + 1}\n    match:\n      src: [{src}]\n"
                  f"      dst: [{dst}]\n      proto: tcp\n      dport: 1-65534\n    link: a\n")


def fill(out, limit, make, start="rules:\n"):
    out.write(HEAD + start)
    n, size = 0, len(HEAD) + len(start)
    while True:
        s = make(n)
        if s is None or size + len(s) > limit:
            return
        out.write(s)
        size += len(s)
        n += 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("shape", nargs="?")
    ap.add_argument("--bytes", type=int, default=16 << 20, help="size to fill (default 16 MiB)")
    ap.add_argument("--list", action="store_true", help="print the default shapes, one a line, and exit")
    a = ap.parse_args()
    if a.list:
        print("\n".join(DEFAULT_SHAPES))
        return
    if a.shape is None:
        ap.error("name a shape (--list prints the default ones)")
    out, lim = sys.stdout, a.bytes
    if a.shape in ("issue", "issue-same"):
        issue(out, a.shape == "issue-same")
    elif a.shape == "rules":
        fill(out, lim, lambda n: f"- {{name: r{n}, priority: {n + 1}, match: {{dst: {v4(n)}, proto: tcp, "
                                 f"dport: {n % 65535 + 1}}}, link: a}}\n")
    elif a.shape == "tiny":
        fill(out, lim, lambda n: f"- {{name: r{n}, priority: {n}, link: a}}\n")
    elif a.shape == "wide-max":
        fill(out, lim, lambda n: None if n >= 340 else
             f"- {{name: r{n}, priority: {n + 1}, match: {{src: [{', '.join(v4(n * 8 + i) for i in range(8))}], "
             f"dst: [{', '.join(v4(n * 8 + i, 24) for i in range(8))}], proto: tcp, "
             f"dport: [1-1000, 2000-3000]}}, policy: p}}\n")
    elif a.shape == "shapes":
        def net(base, i, plen):
            return f"{ipaddress.IPv4Address(base + (i << (32 - plen)))}/{plen}"
        combos = [(s, d) for s in range(16, 32) for d in range(24, 32)][:127]
        fill(out, lim, lambda n: None if n >= len(combos) else
             f"- {{name: r{n}, priority: {n + 1}, match: {{src: [{', '.join(net(0x0a000000, i, combos[n][0]) for i in range(64))}], "
             f"dst: [{', '.join(net(0x0b000000, i, combos[n][1]) for i in range(64))}]}}, link: a}}\n")
    elif a.shape == "wide":
        fill(out, lim, lambda n: f"- {{name: r{n}, priority: {n + 1}, match: {{src: [{', '.join(v4(n * 8 + i) for i in range(8))}], "
                                 f"dst: [{', '.join(v4(n * 8 + i, 24) for i in range(8))}], proto: tcp, "
                                 f"dport: [1-1000, 2000-3000]}}, policy: p}}\n")
    elif a.shape == "srclist":
        fill(out, lim - 60, lambda n: f"    - {v4(n)}\n", "rules:\n- name: big\n  priority: 1\n  link: a\n  match:\n    src:\n")
    elif a.shape == "mixed-fam":
        half = lim // 2
        start = HEAD + "rules:\n- name: mixed\n  priority: 1\n  link: a\n  match:\n    src:\n"
        out.write(start)
        size = len(start)
        n = 0
        while size < half - 40:
            s = f"    - {v4(n)}\n"
            out.write(s)
            size += len(s)
            n += 1
        out.write("    dst:\n")
        n = 0
        while size < lim - 200:
            s = f"    - 2001:db8::{n >> 16:x}:{n & 0xffff:x}\n"
            out.write(s)
            size += len(s)
            n += 1
    elif a.shape == "policies":
        out.write(HEAD.replace("policies:\n  - {name: p, failover: [a, b]}\n", "policies:\n"))
        npol = (lim // 2) // 36
        size = len(HEAD)
        for n in range(npol):
            s = f"- {{name: p{n}, failover: [a]}}\n"
            out.write(s)
            size += len(s)
        out.write("rules:\n")
        n = 0
        while size < lim - 200:
            s = f"- {{name: r{n}, priority: {n + 1}, policy: p{(n * 7919) % npol}}}\n"
            out.write(s)
            size += len(s)
            n += 1
    elif a.shape == "policies-max":
        out.write(HEAD.replace("policies:\n  - {name: p, failover: [a, b]}\n", "policies:\n"))
        pols = "".join(f"- {{name: p{n}, failover: [a]}}\n" for n in range(4096)) + "rules:\n"
        out.write(pols)
        size, n = len(HEAD) + len(pols), 0
        while True:
            s = f"- {{name: r{n}, priority: {n + 1}, policy: p{4095 - n % 4096}}}\n"
            if size + len(s) > lim or n == 262000:
                break
            out.write(s)
            size, n = size + len(s), n + 1
    elif a.shape == "errors":
        fill(out, lim, lambda n: f"- {{name: r{n}, link: a, match: {{dst: 10.0.0.{n % 250}/33}}}}\n")
    elif a.shape == "deep":
        d = 250
        fill(out, lim, lambda n: "- " + "[" * d + "]" * d + "\n", "x:\n")
    elif a.shape == "longstr":
        out.write(HEAD + "rules:\n- name: " + "x" * (lim - len(HEAD) - 100) + "\n  link: a\n")
    elif a.shape == "aliases":
        out.write(HEAD + "x:\n  l0: &l0 [" + ", ".join(["10.0.0.1"] * 10) + "]\n")
        for i in range(1, 10):
            out.write(f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]\n")
        out.write("rules:\n- name: r\n  link: a\n  match: {src: *l9}\n")
    elif a.shape == "alias-rules":
        src = ", ".join(v4(i) for i in range(64))
        fill(out, lim, lambda n: "- *r\n", f"rules:\n- &r {{name: r, link: a, match: {{src: [{src}]}}}}\n")
    elif a.shape == "alias-match":
        src = ", ".join(v4(i) for i in range(64))
        fill(out, lim, lambda n: f"- {{name: r{n}, priority: {n + 1}, link: a, match: *m}}\n",
             f"rules:\n- {{name: first, priority: 0, link: a, match: &m {{src: [{src}], dst: [{src}]}}}}\n")
    elif a.shape == "alias-src":
        src = ", ".join(v4(i) for i in range(10000))
        fill(out, lim, lambda n: f"- {{name: r{n}, priority: {n + 1}, link: a, match: {{src: *s}}}}\n",
             f"rules:\n- {{name: first, priority: 0, link: a, match: {{src: &s [{src}]}}}}\n")
    elif a.shape == "rules-max":
        fill(out, lim, lambda n: None if n >= 100000 else
             f"- {{name: r{n}, priority: {n + 1}, match: {{dst: {v4(n)}, proto: tcp, dport: {n % 65535 + 1}}}, link: a}}\n")
    elif a.shape == "l7-max":
        fill(out, lim, lambda n: None if n >= 100000 else
             f"- {{name: r{n}, priority: {n + 1}, match: {{host: h{n}.example.com, path-prefix: /api/v{n}, "
             f"method: GET, dst: {v4(n)}}}, link: a}}\n" if n < 16384 else
             f"- {{name: r{n}, priority: {n + 1}, match: {{dst: {v4(n)}, proto: tcp, dport: {n % 65535 + 1}}}, link: a}}\n")
    elif a.shape == "l7-over":
        fill(out, lim, lambda n: None if n >= 100000 else
             f"- {{name: r{n}, priority: {n + 1}, match: {{host: h{n}.example.com, path-prefix: /api/v{n}, "
             f"method: GET, dst: {v4(n)}}}, link: a}}\n")
    elif a.shape == "dense":
        fill(out, lim, lambda n: None if n >= 1999900 else ("1" if n == 0 else ",1"),
             "rules:\n- {name: r, priority: 1, link: a, match: {proto: tcp, dport: [")
        out.write("]}}\n")
    elif a.shape == "src-max":
        fill(out, lim - 20, lambda n: None if n >= 1999900 else ("" if n == 0 else ",") + f"{1 + (n >> 16)}.{(n >> 8) & 255}.{n & 255}.1",
             "rules:\n- {name: r, priority: 1, link: a, match: {src: [")
        out.write("]}}\n")
    elif a.shape == "headers":
        fill(out, lim, lambda n: f"- {{name: r{n}, priority: {n + 1}, link: a, match: {{host: a.example.com, headers: "
                                 f"{{{', '.join(f'h{i}: v' for i in range(24))}}}}}}}\n")
    elif a.shape == "headers-max":
        fill(out, lim, lambda n: None if n >= 65536 // 16 else
             f"- {{name: r{n}, priority: {n + 1}, link: a, match: {{host: a.example.com, headers: "
             f"{{{', '.join(f'x-header-{i}: value-{n}-{i}' for i in range(16))}}}}}}}\n")
    elif a.shape == "members":
        out.write(HEAD.replace("policies:\n  - {name: p, failover: [a, b]}\n", "policies:\n  - {name: p, failover: ["))
        size = len(HEAD)
        while size < lim - 100:
            out.write("a, ")
            size += 3
        out.write("b]}\nrules:\n- {name: r, priority: 1, policy: p}\n")
    else:
        ap.error(f"unknown shape {a.shape}")


if __name__ == "__main__":
    main()
