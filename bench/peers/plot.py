#!/usr/bin/env python3
"""Plots and tables of a bench/peers/run.py result file.

    python3 bench/peers/plot.py RESULTS.json --png-dir docs   # docs/bench-*.png (needs matplotlib:
                                                              #   apt-get install python3-matplotlib)
    python3 bench/peers/plot.py RESULTS.json --markdown       # the tables of docs/BENCHMARKS.md
"""
import argparse
import json
import os
import sys

WORKLOADS = {"udp_pps": ("64-byte UDP, packets/s forwarded", "bench-udp-pps.png", 1e3, "kpps"),
             "udp_pps_edge": ("isolated edge, 64-byte UDP, packets forwarded per CPU-second",
                              "bench-udp-pps-edge.png", 1e6, "Mpps per core"),
             "tcp_mbps": ("TCP throughput (iperf3), Mbit/s", "bench-tcp-mbps.png", 1, "Mbit/s"),
             "conn_per_s": ("new TCP connections/s", "bench-conn-per-s.png", 1e3, "k conn/s")}
ORDER = ["rx-floor", "plain", "plain+rules", "iptables", "iptables/random", "iptables+ct", "nft-map", "nft-map/random",
         "clovis-route", "clovis-route/random", "clovis-redirect", "clovis-redirect/random"]
APPLY = ["clovisctl apply", "clovisd start", "nft -f", "iptables-restore"]


def sizes(doc):
    return sorted(doc["results"], key=int)


def edge_plot(doc, outdir, plt):
    """udp_pps_edge: CPU ns per forwarded packet, grouped by rule count (lower is better)."""
    ns = [n for n in sizes(doc) if any("udp_pps_edge" in v for v in doc["results"][n].values())]
    vs = [v for v in variants(doc)
          if any(v in doc["results"][n] and "udp_pps_edge" in doc["results"][n][v] for n in ns)]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    width, top = 0.8 / len(vs), 0
    for i, v in enumerate(vs):
        xs, ys, lo, hi = [], [], [], []
        for k, n in enumerate(ns):
            pt = doc["results"][n].get(v, {}).get("udp_pps_edge")
            if pt:
                c = pt["ns_per_pkt"]
                xs.append(k + (i - (len(vs) - 1) / 2) * width)
                ys.append(c["median"])
                lo.append(c["median"] - c["min"])
                hi.append(c["max"] - c["median"])
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, label=v)
        top = max([top] + [y + h for y, h in zip(ys, hi)])
    ax.set_ylim(0, top * 1.25)  # room for the legend
    ax.set_xticks(range(len(ns)), [f"{int(n):,} rules".replace(",", " ") for n in ns])
    ax.set_ylabel("CPU ns per forwarded packet")
    ax.set_title("isolated edge, 64-byte UDP: median, bars min-max (lower is better)", fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(os.path.join(outdir, WORKLOADS["udp_pps_edge"][1]))
    plt.close(fig)


def variants(doc):
    """ORDER, then any other variant the results have (e.g. run.py --edge-compare's)."""
    seen = {v for n in doc["results"] for v in doc["results"][n]}
    return ORDER + sorted(seen - set(ORDER))


def has(doc, wl):
    return any(wl in v for n in doc["results"] for v in doc["results"][n].values())


def plots(doc, outdir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    if has(doc, "udp_pps_edge"):
        edge_plot(doc, outdir, plt)
    for wl, (title, fname, scale, unit) in WORKLOADS.items():
        if wl == "udp_pps_edge" or not has(doc, wl):  # never overwrite a plot with an empty one
            continue
        fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
        for v in ORDER:
            xs, ys, lo, hi = [], [], [], []
            for n in sizes(doc):
                pt = doc["results"][n].get(v, {}).get(wl)
                if pt:
                    xs.append(int(n))
                    ys.append(pt["median"] / scale)
                    lo.append((pt["median"] - pt["min"]) / scale)
                    hi.append((pt["max"] - pt["median"]) / scale)
            if xs:
                ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=v,
                            linestyle="--" if "/random" in v else "-")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("rules")
        ax.set_ylabel(unit)
        ax.set_title(f"{title}: median, bars min-max")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        fig.savefig(os.path.join(outdir, fname))
        plt.close(fig)
    if not doc["apply_ms"]:
        return
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for peer in APPLY:
        pts = [(int(n), v[peer]) for n, v in sorted(doc["apply_ms"].items(), key=lambda kv: int(kv[0]))
               if isinstance(v.get(peer), (int, float))]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=peer)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("rules")
    ax.set_ylabel("ms")
    ax.set_title("time to apply a rule set")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(outdir, "bench-apply-ms.png"))
    plt.close(fig)


def fmt(x):
    return f"{x / 1e3:.0f}k" if x >= 1e4 else f"{x:.0f}"


def edge_markdown(doc):
    """The isolated-edge table: rate, ns per packet, and the cost above the floor."""
    if not has(doc, "udp_pps_edge"):
        return
    ns = [n for n in sizes(doc) if any("udp_pps_edge" in v for v in doc["results"][n].values())]
    runs = max(len(v["udp_pps_edge"]["runs"]) for n in ns for v in doc["results"][n].values() if "udp_pps_edge" in v)
    print(f"\n**isolated edge, 64-byte UDP** — {runs} interleaved rounds; Mpps per core = packets forwarded per "
          "CPU-second, median [min-max]; ratio = median / plain median (in brackets: the median of the "
          "same-round ratios); ns/pkt = CPU time per forwarded packet, median (in brackets: minus "
          "rx-floor's median)\n")
    print("| variant | " + " | ".join(f"{int(n):,} rules".replace(",", " ") for n in ns) + " |")
    print("|---|" + "---:|" * len(ns))
    for v in variants(doc):
        cells = []
        for n in ns:
            pt = doc["results"][n].get(v, {}).get("udp_pps_edge")
            if not pt:
                cells.append("—")
                continue
            r = f" **{pt['ratio']['median']:.3f}x**" if "ratio" in pt else ""
            if "paired_ratio" in pt:
                r += f" ({pt['paired_ratio']['median']:.3f}x)"
            cost = f"{pt['ns_per_pkt']['median']:.0f} ns"
            if "ns_over_floor" in pt:
                cost += f" ({pt['ns_over_floor']:+.0f})"
            cells.append(f"{pt['median'] / 1e6:.2f} [{pt['min'] / 1e6:.2f}-{pt['max'] / 1e6:.2f}]{r}, {cost}")
        if any(c != "—" for c in cells):
            print(f"| {v} | " + " | ".join(cells) + " |")


def perf_markdown(doc, top=20):
    """Per-symbol ns/packet of the profiled udp_pps_edge runs (run.py --perf), one
    table per size: where each variant's time goes."""
    for n in sizes(doc):
        prof = {v: pt["udp_pps_edge"]["perf"] for v, pt in doc["results"][n].items()
                if "perf" in pt.get("udp_pps_edge", {})}
        if not prof:
            continue
        vs = [v for v in variants(doc) if v in prof]
        rules = f"{int(n):,}".replace(",", " ")
        print(f"\n**where the time goes, {rules} rules** — ns per forwarded packet by kernel symbol "
              "(perf record -g of one extra run of the generator's CPU, shares of its samples x its CPU "
              "time per packet); cycles and instructions per packet from perf stat of another run\n")
        print("| symbol | " + " | ".join(vs) + " |")
        print("|---|" + "---:|" * len(vs))
        score = {}
        for v in vs:
            for sym, ns in prof[v]["symbols_ns"]:
                score[sym] = max(score.get(sym, 0), ns)
        for sym in sorted(score, key=lambda k: -score[k])[:top]:
            cells = [f"{dict(map(tuple, prof[v]['symbols_ns'])).get(sym, 0):.1f}" for v in vs]
            print(f"| `{sym}` | " + " | ".join(cells) + " |")
        for ev in ("cycles", "instructions"):
            print(f"| *{ev} per packet* | " + " | ".join(f"{prof[v]['per_pkt'].get(ev, 0):.0f}" for v in vs) + " |")
        print("| *ns per packet (this run)* | " + " | ".join(f"{prof[v]['ns_per_pkt']:.0f}" for v in vs) + " |")


def markdown(doc):
    edge_markdown(doc)
    perf_markdown(doc)
    for wl, (title, _, _, _) in WORKLOADS.items():
        if wl == "udp_pps_edge" or not has(doc, wl):
            continue
        print(f"\n**{title}** — median [min-max] of {doc['args']['runs']} runs; ratio = median / plain median\n")
        ns = sizes(doc)
        print("| variant | " + " | ".join(f"{int(n):,} rules".replace(",", " ") for n in ns) + " |")
        print("|---|" + "---:|" * len(ns))
        for v in ORDER:
            cells = []
            for n in ns:
                pt = doc["results"][n].get(v, {}).get(wl)
                if not pt:
                    cells.append("—")
                    continue
                r = f" **{pt['ratio']['median']:.2f}x**" if "ratio" in pt else ""
                cells.append(f"{fmt(pt['median'])} [{fmt(pt['min'])}-{fmt(pt['max'])}]{r}")
            if any(c != "—" for c in cells):
                print(f"| {v} | " + " | ".join(cells) + " |")
    ns = sorted(doc["apply_ms"], key=int)
    if not ns:
        return
    print("\n**apply, ms** (one shot each)\n")
    print("| | " + " | ".join(ns) + " |")
    print("|---|" + "---:|" * len(ns))
    for peer in APPLY:
        cells = []
        for n in ns:
            v = doc["apply_ms"][n].get(peer)
            cells.append(f"{v:.0f}" if isinstance(v, (int, float)) else ("failed" if v else "—"))
        print(f"| {peer} | " + " | ".join(cells) + " |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--png-dir")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    with open(a.results) as f:
        doc = json.load(f)
    if a.markdown:
        markdown(doc)
    if a.png_dir:
        try:
            plots(doc, a.png_dir)
        except ImportError:
            print("matplotlib missing: apt-get install -y python3-matplotlib", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
