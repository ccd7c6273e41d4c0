#!/usr/bin/env python3
"""Checks of the monitoring kit in packaging/ that promtool cannot make.

    check_monitoring.py [--rules FILE] [--tests FILE] [--dashboard FILE] [--names FILE]
                        [--emit-rules FILE]

- The Grafana dashboard is valid JSON in Grafana's classic model: a schemaVersion, a uid,
  panel ids unique (rows' nested panels included), a `datasource` variable of Prometheus
  data sources, a `link` variable from label_values(), every panel and query on that
  variable.
- Every metric name in a PromQL expression of the alert rules, the dashboard's queries,
  annotations and variables is one clovisd exports (metric-names.txt) or `up`.
- Every alert rule has a severity label, a summary and a description, and its unit tests
  (clovis-alerts.test.yml) expect it both firing and not firing.
- --emit-rules writes the dashboard's expressions, Grafana variables replaced, as recording
  rules, so that `promtool check rules` parses them.

Prints one line per check ("ok ..." or "FAIL ..." and the reasons); exit status 1 when one
failed. Needs PyYAML (Debian python3-yaml).
"""
import argparse
import json
import os
import re
import sys

import yaml

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PROM = os.path.join(REPO, "packaging", "prometheus")

# Series Prometheus itself writes for every target, allowed next to clovisd's own.
PROMETHEUS_SERIES = {"up"}

# PromQL words that look like metric names: operators, modifiers, literals.
KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool", "inf", "nan", "atan2", "start", "end",
}

# Grafana's variables, replaced for `promtool check rules`: intervals by a duration,
# the others (used inside label matchers) by a regex.
GRAFANA_DURATIONS = {"__rate_interval", "__interval", "__range"}


def grafana_to_promql(expr):
    """An expression with Grafana's $variables replaced so that PromQL parses it."""
    def repl(m):
        name = m.group(1) or m.group(2)
        return "5m" if name in GRAFANA_DURATIONS else ".*"
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", repl, expr)


def metric_names(expr):
    """The metric names an expression selects, found by removing what cannot be one."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    s = re.sub(r"#[^\n]*", " ", s)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    s = re.sub(r"\$\{?\w+\}?", " ", s)
    names = []
    for m in re.finditer(r"\d[\w.]*|[A-Za-z_:][\w:]*", s):
        tok = m.group()
        if tok[0].isdigit() or tok.lower() in KEYWORDS:
            continue
        if s[m.end():].lstrip().startswith("("):  # a function or an aggregation
            continue
        names.append(tok)
    return names


def variable_selector(query):
    """The series selector of a Grafana Prometheus variable query, or None if it has none."""
    m = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", query, re.S)
    if m:
        return m.group(1)
    if re.fullmatch(r"\s*label_values\(\s*\w+\s*\)\s*", query):
        return None
    m = re.fullmatch(r"\s*query_result\((.*)\)\s*", query, re.S)
    return m.group(1) if m else query


class Checks:
    def __init__(self):
        self.failed = 0

    def report(self, name, problems):
        if problems:
            self.failed += 1
            print(f"FAIL {name}")
            for p in problems:
                print(f"     {p}")
        else:
            print(f"ok   {name}")


def walk_panels(panels):
    for p in panels:
        yield p
        yield from walk_panels(p.get("panels", []))


def dashboard_exprs(dash):
    """(where, expr) of every PromQL expression of the dashboard."""
    out = []
    for p in walk_panels(dash.get("panels", [])):
        for t in p.get("targets", []):
            if "expr" in t:
                out.append((f'panel {p.get("id")} "{p.get("title")}" query {t.get("refId")}', t["expr"]))
    for a in dash.get("annotations", {}).get("list", []):
        if "expr" in a:
            out.append((f'annotation "{a.get("name")}"', a["expr"]))
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else (q or "")
        sel = variable_selector(q)
        if sel is not None:
            out.append((f'variable ${v.get("name")}', sel))
    return out


def check_dashboard(dash, checks):
    problems = []
    if not isinstance(dash.get("schemaVersion"), int):
        problems.append("no integer schemaVersion")
    if not dash.get("uid") or not dash.get("title"):
        problems.append("no uid or title")
    panels = list(walk_panels(dash.get("panels", [])))
    ids = [p.get("id") for p in panels]
    dup = sorted({i for i in ids if ids.count(i) > 1}, key=str)
    if None in ids:
        problems.append("a panel has no id")
    if dup:
        problems.append(f"panel ids used twice: {dup}")
    for p in panels:
        pos = p.get("gridPos", {})
        if not all(isinstance(pos.get(k), int) for k in ("x", "y", "w", "h")) or pos.get("x", 0) + pos.get("w", 0) > 24:
            problems.append(f'panel {p.get("id")} "{p.get("title")}": gridPos {pos} is not on the 24-column grid')
    checks.report(f"dashboard: valid, {len(panels)} panels with unique ids", problems)

    problems = []
    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problems.append("no variable `datasource` of type datasource, query prometheus")
    link = variables.get("link")
    link_query = link.get("query") if link else None
    link_query = link_query.get("query") if isinstance(link_query, dict) else link_query
    if not link or link.get("type") != "query" or not re.match(r"\s*label_values\(.*,\s*link\s*\)", link_query or ""):
        problems.append("no variable `link` of type query from label_values(..., link)")
    for p in panels:
        if p.get("type") == "row":
            continue
        refs = [p.get("datasource")] + [t.get("datasource") for t in p.get("targets", [])]
        if any(not isinstance(r, dict) or r.get("uid") != "${datasource}" for r in refs):
            problems.append(f'panel {p.get("id")} "{p.get("title")}": a data source other than ${{datasource}}')
        if not p.get("targets"):
            problems.append(f'panel {p.get("id")} "{p.get("title")}": no query')
    checks.report("dashboard: $datasource and $link variables, every panel on $datasource", problems)

    want_types = {"state-timeline"}
    have = {p.get("type") for p in panels}
    checks.report("dashboard: has a state-timeline panel",
                  [f"no panel of type {t}" for t in sorted(want_types - have)])


def check_rules(rules, tests, checks):
    problems = []
    alerts = []
    for g in rules.get("groups", []):
        for r in g.get("rules", []):
            if "alert" not in r:
                continue
            alerts.append(r["alert"])
            if r.get("labels", {}).get("severity") not in ("critical", "warning", "info"):
                problems.append(f'{r["alert"]}: severity label not critical, warning or info')
            for a in ("summary", "description"):
                if not r.get("annotations", {}).get(a):
                    problems.append(f'{r["alert"]}: no {a} annotation')
    checks.report(f"rules: {len(alerts)} alerts with severity, summary and description", problems)

    firing, quiet = set(), set()
    for t in tests.get("tests", []):
        for a in t.get("alert_rule_test", []) or []:
            (firing if a.get("exp_alerts") else quiet).add(a.get("alertname"))
    problems = [f"{a}: no test expects it firing" for a in alerts if a not in firing]
    problems += [f"{a}: no test expects it not firing" for a in alerts if a not in quiet]
    problems += [f"{a}: tested but not an alert of the rules" for a in sorted((firing | quiet) - set(alerts))]
    checks.report("rules: every alert tested both firing and not firing", problems)


def rule_exprs(rules):
    return [(f'rule {r.get("alert") or r.get("record")}', str(r["expr"]))
            for g in rules.get("groups", []) for r in g.get("rules", [])]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", default=os.path.join(PROM, "clovis-alerts.yml"))
    ap.add_argument("--tests", default=os.path.join(PROM, "clovis-alerts.test.yml"))
    ap.add_argument("--dashboard", default=os.path.join(REPO, "packaging", "grafana", "clovis-dashboard.json"))
    ap.add_argument("--names", default=os.path.join(PROM, "metric-names.txt"))
    ap.add_argument("--emit-rules", help="write the dashboard's expressions as recording rules here")
    args = ap.parse_args()
    checks = Checks()

    with open(args.names) as f:
        lines = [ln.strip() for ln in f if ln.strip()]
    known = set(lines)
    bad = [n for n in lines if not re.fullmatch(r"clovis_[a-z0-9_]+", n)]
    bad += [f"{n} listed twice" for n in sorted(known) if lines.count(n) > 1]
    checks.report(f"{os.path.basename(args.names)}: {len(known)} clovis_ names, one a line", bad)

    try:
        with open(args.dashboard) as f:
            dash = json.load(f)
    except (OSError, ValueError) as e:
        checks.report("dashboard: valid JSON", [f"{args.dashboard}: {e}"])
        return 1
    with open(args.rules) as f:
        rules = yaml.safe_load(f)
    with open(args.tests) as f:
        tests = yaml.safe_load(f)

    check_dashboard(dash, checks)
    check_rules(rules, tests, checks)

    exprs = rule_exprs(rules) + dashboard_exprs(dash)
    problems = []
    for where, expr in exprs:
        if "__name__" in expr:
            problems.append(f"{where}: selects by __name__; name the metric instead")
        names = metric_names(expr)
        if not names and "time()" not in expr:
            problems.append(f"{where}: no metric name found in {expr!r}")
        for n in names:
            if n not in known and n not in PROMETHEUS_SERIES:
                problems.append(f"{where}: {n} is not in {os.path.basename(args.names)}")
    checks.report(f"metric names: the {len(exprs)} expressions of rules and dashboard use only exported names",
                  problems)

    if args.emit_rules:
        exprs = [(w, grafana_to_promql(e)) for w, e in dashboard_exprs(dash)]
        doc = {"groups": [{"name": "dashboard", "rules": [
            {"record": f"dashboard:expr_{i}", "expr": e, "labels": {"where": w}} for i, (w, e) in enumerate(exprs)]}]}
        with open(args.emit_rules, "w") as f:
            yaml.safe_dump(doc, f, sort_keys=False)

    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
