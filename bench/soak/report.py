"""The soak's summary: what each load did, judged against the bars
(soak.py's docstring); build() makes the JSON, print_human() the lines."""
import os
import statistics

ORDER = ("flap", "restart", "apply")  # a datagram lost in overlapping windows counts for the first
TOLERANCE = 0.10  # RSS and fds: end within +-10% of start


def classify(soak, t):
    kinds = {k for k, a, b in soak.windows if a <= t <= b}
    return next((k for k in ORDER if k in kinds), "outside")


def datagrams(soak, flows, echoed):
    out = {"pps_each": soak.a.pps, "flows": [], "lost": {k: 0 for k in ORDER + ("outside",)}}
    per_second = {}
    for i, f in enumerate(flows):
        lost = {k: 0 for k in ORDER + ("outside",)}
        outside = []
        for t in f["lost_at"]:
            k = classify(soak, t)
            lost[k] += 1
            per_second[int(soak.rel(t))] = per_second.get(int(soak.rel(t)), 0) + 1
            if k == "outside":
                outside.append(soak.rel(t))
        for k, n in lost.items():
            out["lost"][k] += n
        out["flows"].append({"link": "abc"[i], "sent": f["sent"], "echoed": f["echoed"], "lost": lost,
                             "send_errors": len(f["send_errors"]), "outside_at_s": outside[:20]})
    out["sent"] = sum(f["sent"] for f in flows)
    out["lost_total"] = sum(out["lost"].values())
    out["lost_per_second"] = dict(sorted(per_second.items()))
    out["by_port_wan"] = echoed["by_port_iface"]
    return out


def per_window(soak, flows, kind):
    """Datagrams lost in each window of a kind, all flows together."""
    res = []
    for k, a, b in soak.windows:
        if k == kind:
            n = sum(1 for f in flows for t in f["lost_at"] if a <= t <= b and classify(soak, t) == kind)
            res.append({"t": soak.rel(a), "lost": n, "gap_ms": round(n * 1000 / soak.a.pps, 1)})
    return res


def checks(soak):
    restarts = [(a, b) for k, a, b in soak.windows if k == "restart"]
    tot = {"requests": 0, "ok": 0, "errors_in_restarts": 0, "errors_outside": 0, "links": {}, "chunks": 0}
    outside, kinds = [], {}
    for c in soak.checker.chunks:
        t0, t1 = c.pop("mono")
        errs = c["requests"] - c["ok"]
        tot["requests"] += c["requests"]
        tot["ok"] += c["ok"]
        tot["chunks"] += 1
        for l, n in (c.get("links") or {}).items():
            tot["links"][l] = tot["links"].get(l, 0) + n
        if any(a <= t1 and t0 <= b for a, b in restarts):
            tot["errors_in_restarts"] += errs
            for m, n in (c.get("errors") or {}).items():
                kinds[m] = kinds.get(m, 0) + n
        elif errs:
            tot["errors_outside"] += errs
            outside.append({"t0": c["t0"], "t1": c["t1"], "errors": c["errors"]})
    p99 = [c["p99_us"] for c in soak.checker.chunks if "p99_us" in c]
    tot["p99_us_median_of_chunks"] = statistics.median(p99) if p99 else None
    tot["p99_us_worst_chunk"] = max(p99) if p99 else None
    tot["offered_rps"] = soak.a.checks
    tot["outside"] = outside[:10]
    tot["restart_error_kinds"] = kinds
    return tot


def lifetimes(soak):
    res = []
    for lt in soak.lifetimes:
        s, e = lt.get("start"), lt.get("end")
        if not s or not e or s["pid"] != e["pid"]:
            continue
        res.append({"pid": s["pid"], "from_s": s["t"], "to_s": e["t"],
                    "rss_kb": [s["rss_kb"], e["rss_kb"]], "fds": [s["fds"], e["fds"]],
                    "rss_change_pct": round(100 * (e["rss_kb"] - s["rss_kb"]) / s["rss_kb"], 1),
                    "fds_change_pct": round(100 * (e["fds"] - s["fds"]) / s["fds"], 1)})
    return res


def sanitizer_reports(out):
    d = os.path.join(out, "san")
    return sorted(os.path.join(d, f) for f in os.listdir(d) if os.path.getsize(os.path.join(d, f)) > 0)


def build(soak, flows, echoed, final_rc):
    w = soak.watchers.records
    applies = soak.applier.done
    s = {
        "seconds": soak.a.seconds, "build_dir": soak.a.build_dir, "out": soak.out,
        "sanitizer_reports": sanitizer_reports(soak.out),
        "crashes": soak.sampler.crashes, "failed_restarts": soak.failed_restarts, "final_exit": final_rc,
        "restarts": soak.restarts, "flaps": soak.flapper.flaps,
        "applies": {"done": len(applies), "failed": soak.applier.failed[:10], "skipped": soak.applier.skipped,
                    "ms_median": statistics.median(x["ms"] for x in applies) if applies else None,
                    "ms_max": max((x["ms"] for x in applies), default=None)},
        "watchers": {"started": len(w), "max_alive": soak.watchers.max_alive,
                     "quit_on_own": [x for x in w if not x["stopped"]][:10],
                     "with_output": sum(1 for x in w if x["output_bytes"] > 0)},
        "checks": checks(soak),
        "datagrams": datagrams(soak, flows, echoed),
        "loss_per_flap": per_window(soak, flows, "flap"),
        "loss_per_restart": per_window(soak, flows, "restart"),
        "lifetimes": lifetimes(soak),
        "rss_fd_series": soak.sampler.series,
    }
    last = s["lifetimes"][-1] if s["lifetimes"] else None
    s["bars"] = {
        "no sanitizer report": not s["sanitizer_reports"],
        "no crash but the kills": not s["crashes"] and not s["failed_restarts"] and final_rc == 0,
        "RSS of the last lifetime within 10%": bool(last) and abs(last["rss_change_pct"]) <= 100 * TOLERANCE,
        "fds of the last lifetime within 10%": bool(last) and abs(last["fds_change_pct"]) <= 100 * TOLERANCE,
        "no datagram lost outside a failover window": s["datagrams"]["lost"]["outside"] == 0,
        "every apply succeeded": not soak.applier.failed and len(applies) > 0,
        "no Check failed outside a restart": s["checks"]["errors_outside"] == 0 and s["checks"]["ok"] > 0,
        "no watcher quit on its own": not s["watchers"]["quit_on_own"] and len(w) > 0,
    }
    s["pass"] = all(s["bars"].values())
    return s


def print_human(s, out):
    d, c, a = s["datagrams"], s["checks"], s["applies"]
    print(f"soak: {s['seconds']:g} s in {s['wall_s']} s wall; clovisd from {s['build_dir']}; details in {out}")
    print(f"  datagrams: {d['sent']} sent ({d['pps_each']:g}/s on each of 3 links), lost {d['lost_total']}: "
          + ", ".join(f"{k} {n}" for k, n in d["lost"].items()))
    if s["loss_per_flap"]:
        gaps = [x["gap_ms"] for x in s["loss_per_flap"]]
        print(f"  flaps: {len(s['flaps'])}, gap per flap median {statistics.median(gaps)} ms, max {max(gaps)} ms")
    for r, x in zip(s["restarts"], s["loss_per_restart"]):
        print(f"  restart at {r['t']:.0f} s: ready in {r['ready_s']} s, {x['lost']} datagrams lost")
    print(f"  applies: {a['done']} ({len(a['failed'])} failed, {a['skipped']} skipped while down), "
          f"median {a['ms_median']} ms, max {a['ms_max']} ms")
    print(f"  checks: {c['requests']} at {c['offered_rps']:g}/s, {c['ok']} ok, {c['errors_in_restarts']} failed in "
          f"restarts, {c['errors_outside']} outside; p99 median of chunks {c['p99_us_median_of_chunks']} us; "
          f"links {c['links']}")
    wt = s["watchers"]
    print(f"  watchers: {wt['started']} started, at most {wt['max_alive']} at once, "
          f"{len(wt['quit_on_own'])} quit on their own")
    for lt in s["lifetimes"]:
        print(f"  clovisd pid {lt['pid']} {lt['from_s']:.0f}..{lt['to_s']:.0f} s: RSS {lt['rss_kb'][0]:.0f} -> "
              f"{lt['rss_kb'][1]:.0f} kB ({lt['rss_change_pct']:+}%), fds {lt['fds'][0]:g} -> {lt['fds'][1]:g} "
              f"({lt['fds_change_pct']:+}%)")
    for f in s["sanitizer_reports"]:
        print(f"  SANITIZER REPORT {f}:")
        with open(f, errors="replace") as fh:
            print("    " + "    ".join(fh.readlines()[:15]))
    for k, ok in s["bars"].items():
        print(f"  [{'ok' if ok else 'FAIL'}] {k}")
    print("soak: PASS" if s["pass"] else "soak: FAIL")
