#!/usr/bin/env python3
"""Stockade benchmark plot (issue 5): one PNG from a bench/run.sh raw directory.

    /usr/bin/python3 plot.py RAW_DIR OUT.png

Left: the distributions of create -> first echo (empirical CDFs, log time axis) with and without a
warm pool, sequential and concurrent, for the E2B JS SDK (solid) and Stockade's Java SDK (dashed).
Right: the density curve: echo median and p99 (20 echos into random live sandboxes) and host
memory use against the number of idle sandboxes. Panels whose data are missing are left out.
"""
import json
import os
import sys

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(raw, name):
    p = os.path.join(raw, name)
    if not os.path.exists(p):
        return None
    with open(p) as f:
        return json.load(f)


def main(raw, out):
    cases = [("nopool-seq", "sequential, no pool", "tab:blue"), ("pool-seq", "sequential, pool (preload)", "tab:green"),
             ("poolnp-seq", "sequential, pool (no preload)", "tab:olive"),
             ("nopool-conc", "concurrent, no pool", "tab:red"), ("pool-conc", "concurrent, pool (no preload)", "tab:orange")]
    series = []
    for key, label, color in cases:
        for sdk, style in (("js", "-"), ("java", "--")):
            d = load(raw, "%s-%s.json" % (key, sdk))
            if d and d.get("total"):
                series.append((sorted(d["total"]), "%s (%s SDK)" % (label, "E2B JS" if sdk == "js" else "Java"), color, style))
    density = load(raw, "density.json")
    machine = load(raw, "machine.json") or {}
    panels = (1 if series else 0) + (1 if density and density.get("steps") else 0)
    if panels == 0:
        print("plot: nothing to plot in %s" % raw, file=sys.stderr)
        return 1
    fig, axes = plt.subplots(1, panels, figsize=(7 * panels, 5))
    if panels == 1:
        axes = [axes]
    i = 0
    if series:
        ax = axes[i]
        i += 1
        for xs, label, color, style in series:
            n = len(xs)
            ys = [(k + 1) / n for k in range(n)]
            med = xs[(n - 1) // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2
            ax.step(xs, ys, where="post", color=color, linestyle=style, label="%s: median %.0f ms, n=%d" % (label, med, n))
        ax.set_xscale("log")
        fmt = matplotlib.ticker.FuncFormatter(lambda v, _: "%g" % v)
        ax.xaxis.set_major_formatter(fmt)
        ax.xaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: "%g" % v if str(int(v))[0] in "25" else ""))
        ax.tick_params(axis="x", which="minor", labelsize=7)
        ax.set_xlabel("create → first echo (ms, log scale)")
        ax.set_ylabel("fraction of creates at or below")
        ax.set_title("Create → first echo, with and without a warm pool")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    if density and density.get("steps"):
        ax = axes[i]
        steps = density["steps"]
        xs = [s["sandboxes"] for s in steps]
        ax.plot(xs, [s["echo_median_ms"] for s in steps], "o-", color="tab:blue", label="echo median")
        ax.plot(xs, [s["echo_p99_ms"] for s in steps], "s-", color="tab:red", label="echo p99 (of %d)" % density["probes"])
        ax.axhline(density["p99_limit_ms"], color="tab:red", linestyle=":", linewidth=1)
        ax.set_xlabel("idle sandboxes on the host")
        ax.set_ylabel("echo latency (ms)")
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax2 = ax.twinx()
        ax2.plot(xs, [s["mem_used_pct"] for s in steps], "^--", color="tab:gray", label="host memory used (%)")
        ax2.axhline(density["mem_limit_pct"], color="tab:gray", linestyle=":", linewidth=1)
        ax2.set_ylabel("host memory used (%)")
        ax2.set_ylim(0, 100)
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper left")
        ax.set_title("Density (no pool): stopped because %s" % density.get("stopped_because"), fontsize=9)
    fig.suptitle("Stockade, %s, %s cores, %s, %s" % (machine.get("date", "?"), machine.get("nproc", "?"),
                                                   machine.get("memory", "?"), machine.get("kernel", "?")), fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=110)
    print("plot: wrote %s" % out, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
