#!/usr/bin/env python3
"""bench/tiers.sh's report: statistics and Markdown tables of the runc / runsc comparison.

    tiers_report.py META.json MAIN.json POOL.json RAW.json OUT.json

Reads the machine description (META), the raw samples of the two phases that
bench/lib/TierBench.java wrote and the raw-runtime baselines (RAW, from hyperfine), prints the Markdown tables on stdout, and writes OUT: the machine,
every raw sample (ms), and per measure and side: n, median, p99, mean, min, max, plus the targets
with met / not met. median: the middle sample (mean of the two middle ones for an even count);
p99: nearest rank (with fewer than 100 samples, the maximum).
"""
import json
import math
import statistics
import sys

TIERS = ("runc", "runsc")

# (key in samples, label), in the order of the table
ROWS = [
    ("bare_python", "bare `/usr/bin/python3 -c pass` on the host (alone)"),
    ("raw_run_python", "raw `runc run` / `runsc run` of `python3 -c pass` (no Stockade; hyperfine, not interleaved)"),
    ("raw_run_python_userns", "… `runc run` with a user namespace, as Stockade's sandboxes"),
    ("cold_create_first_echo", "cold create → first `echo hi` (no pool)"),
    ("cold_create", "… of which `create()`"),
    ("cold_first_echo", "… of which the first `echo`"),
    ("pool_create_first_echo", "create → first `echo hi`, warm pool (no preload)"),
    ("pool_create", "… of which `create()` (a hand-over)"),
    ("pool_first_echo", "… of which the first `echo`"),
    ("echo", "`echo hi` in a running sandbox"),
    ("agent_echo", "… the agent alone: exec `/bin/echo hi` over its socket from the host (`agent_probe.py`)"),
    ("agent_hello", "… the agent's `hello` over its socket from the host (the transport alone)"),
    ("python_pass", "`python3 -c pass` in a running sandbox"),
    ("file_1mib", "1 MiB upload + download"),
    ("file_1mib_write", "… of which the upload"),
    ("file_1mib_read", "… of which the download"),
    ("cell_1plus1", "`1+1` cell (default context)"),
    ("pandas_first_cell", "new context + first `import pandas` … `describe()` cell"),
    ("pandas_new_context", "… of which `createCodeContext()`"),
    ("pandas_cell", "… of which the cell"),
    ("cpu_self", "CPU-bound workload, timed inside (by itself)"),
    ("cpu_e2e", "CPU-bound workload, end to end"),
    ("sys_self", "syscall-heavy workload, timed inside (by itself)"),
    ("sys_e2e", "syscall-heavy workload, end to end"),
    ("spawn_bash_l_echo", "process start of `bash -l -c \"echo hi\"`, timed inside (Python loop)"),
    ("spawn_bash_c_echo", "process start of `bash -c \"echo hi\"` (no login profile), timed inside (Python loop)"),
    ("spawn_true", "process start of `/bin/true`, timed inside (Python loop)"),
    ("pause", "`POST /sandboxes/{id}/pause`"),
    ("resume", "`POST /v2/sandboxes/{id}/connect` (resume)"),
]


def stats(xs):
    if not xs:
        return None
    s = sorted(xs)
    rank = max(1, math.ceil(0.99 * len(s)))
    return {"n": len(s), "median": statistics.median(s), "p99": s[rank - 1], "mean": statistics.fmean(s),
            "min": s[0], "max": s[-1]}


def fmt(x):
    if x is None:
        return "—"
    if abs(x) >= 100:
        return "%.0f" % x
    if abs(x) >= 10:
        return "%.1f" % x
    return "%.2f" % x


def cell(st):
    return "—" if st is None else "%s / %s" % (fmt(st["median"]), fmt(st["p99"]))


def main(argv):
    if len(argv) != 6:
        print(__doc__, file=sys.stderr)
        return 2
    meta, main_, pool, raw = (json.load(open(p)) for p in argv[1:5])
    argv = argv[:4] + argv[5:]
    samples = {}
    for part in (raw, main_, pool):
        for k, v in (part.get("samples") or {}).items():
            samples.setdefault(k, {}).update(v)
    summary = {k: {who: stats(xs) for who, xs in v.items()} for k, v in samples.items()}
    unavailable = {}
    failed = {}
    for part in (main_, pool):
        unavailable.update(part.get("unavailable") or {})
        for k, v in (part.get("failed") or {}).items():
            failed.setdefault(k, {}).update(v)
    failed_key = {"file_1mib_write": "file_1mib", "file_1mib_read": "file_1mib", "cpu_self": "cpu_e2e",
                  "sys_self": "sys_e2e", "pandas_new_context": "pandas_first_cell", "pandas_cell": "pandas_first_cell",
                  "resume": "pause"}

    def side(key, who):
        st = summary.get(key, {}).get(who)
        why = failed.get(failed_key.get(key, key), {}).get(who)
        if why:
            return ("%s, then **failed**" % cell(st)) if st else "**failed**"
        return cell(st)

    def med(k, who):
        st = summary.get(k, {}).get(who)
        return st["median"] if st else None

    targets = []
    c = med("cold_create_first_echo", "runsc")
    targets.append({"target": "runsc cold create → first echo, median ≤ 500 ms", "measured": c,
                    "met": None if c is None else c <= 500,
                    "text": "—" if c is None else "%s ms (%s)" % (fmt(c), "%+.0f ms" % (c - 500))})
    a, b = med("pool_create_first_echo", "runc"), med("pool_create_first_echo", "runsc")
    r = b / a if a and b else None
    targets.append({"target": "create → first echo with a warm pool: runsc within 2× of runc (medians)", "measured": r,
                    "met": None if r is None else r <= 2,
                    "text": "—" if r is None else "%.2f× (%s vs %s ms)" % (r, fmt(b), fmt(a))})
    target_of = {"cold_create_first_echo": targets[0], "pool_create_first_echo": targets[1]}

    m = meta["machine"]
    print("Run of %s (%s s), `%s`. Machine: %s cores (%s), %s, kernel %s; %s; %s%s; %s; %s. Commit %s%s; %s. "
          "Load average at start %s, at the end %s." % (
              meta["date"], meta["seconds"], meta["command"], m["nproc"], m["cpu"], m["memory"], m["kernel"],
              m["runc"], m["runsc"], (" (" + m["runsc_config"] + ")") if m.get("runsc_config") else "", m["java"],
              m["python"], meta["commit"], " + uncommitted changes" if meta["uncommitted_changes"] else "",
              meta["build"], meta["load_average_start"], meta["load_average_end"]))
    print()
    print("Servers: no pool: `%s`; pools: `%s`." % (meta["servers"]["main"], meta["servers"]["pool"]))
    for t, why in unavailable.items():
        print()
        print("**%s is not measured**: %s" % (t, why))
    print()
    print("| measure | n (per side) | host, bare | runc median / p99 (ms) | runsc median / p99 (ms) | ratio runsc / runc (medians) | target |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for key, label in ROWS:
        if key not in summary and failed_key.get(key, key) not in failed:
            continue
        s = summary.get(key, {})
        ns = sorted({st["n"] for st in s.values() if st})
        host = s.get("host")
        a, b = s.get("runc"), s.get("runsc")
        ratio = "%.2f×" % (b["median"] / a["median"]) if a and b and a["median"] > 0 else "—"
        if key == "bare_python":
            print("| %s | %s | %s | — | — | — | |" % (label, "/".join(map(str, ns)), cell(host)))
            continue
        t = target_of.get(key)
        ttext = ""
        if t:
            goal = "runsc median ≤ 500 ms" if key == "cold_create_first_echo" else "runsc ≤ 2× runc"
            ttext = "%s: **%s**" % (goal, "—" if t["met"] is None else ("met" if t["met"] else "not met"))
        hostcell = side(key, "host") if host or failed.get(failed_key.get(key, key), {}).get("host") else "—"
        print("| %s | %s | %s | %s | %s | %s | %s |" % (label, "/".join(map(str, ns)), hostcell, side(key, "runc"), side(key, "runsc"), ratio, ttext))
    for w in ("cpu", "sys"):
        h, a, b = med(w + "_self", "host"), med(w + "_self", "runc"), med(w + "_self", "runsc")
        if h:
            parts = ["%s %.2f× bare" % (t, v / h) for t, v in (("runc", a), ("runsc", b)) if v]
            print("| … %s workload inside vs bare (self-timed medians) | | | | | %s | |" % (w, "; ".join(parts)))
    print()

    mem = main_.get("idle_memory") or {}
    if mem:
        print("| idle sandboxes (no pool) | runc | runsc | ratio runsc / runc |")
        print("|---|---:|---:|---:|")
        rows = [("sandboxes started (memory cgroups found)", None),
                ("cgroup `memory.usage_in_bytes` per sandbox (MiB)", "cgroup_usage_mib_per_sandbox"),
                ("… `total_rss` per sandbox (MiB)", "cgroup_rss_mib_per_sandbox"),
                ("… `total_cache` per sandbox (MiB)", "cgroup_cache_mib_per_sandbox"),
                ("CPU used by all of them while idle (ms per s, cpuacct)", "idle_cpu_ms_per_s_total")]
        for label, k in rows:
            vals = []
            for t in TIERS:
                e = mem.get(t)
                if not e:
                    vals.append(None)
                elif k is None:
                    vals.append("%d (%d)" % (e.get("sandboxes_started", 0), e.get("cgroups_found", 0)))
                else:
                    vals.append(e.get(k))
            ratio = "%.2f×" % (vals[1] / vals[0]) if k and vals[0] and vals[1] and vals[0] >= 0.05 else "—"
            print("| %s | %s | %s | %s |" % (label, *(v if isinstance(v, str) else fmt(v) for v in vals), ratio))
        procs = []
        for t in TIERS:
            e = (mem.get(t) or {}).get("sandboxes") or []
            if e and e[0].get("processes") is not None:
                names = [("ptrace stub (exe)" if n_ == "exe" else n_) for n_ in e[0]["processes"]]
                procs.append("%s: %d (%s)" % (t, len(names), ", ".join("%s ×%d" % (n_, names.count(n_)) for n_ in sorted(set(names)))))
        if procs:
            print()
            print("Host processes in one idle sandbox's memory cgroup: " + "; ".join(procs) + ".")
        print()

    notes = []
    for t in TIERS:
        served = samples.get("pool_served", {}).get(t)
        wait = summary.get("pool_wait_before", {}).get(t)
        if served is not None:
            notes.append("%s: %d of %d pooled creates were handed over from the pool (state directory born before the"
                         " create was sent)" % (t, sum(served), len(served)))
        if wait:
            notes.append("%s: wait until both pools were full before each create: median %s ms, max %s ms"
                         % (t, fmt(wait["median"]), fmt(wait["max"])))
    if pool.get("pool_first_fill_ms") is not None:
        notes.append("both pools were full %s ms after the harness first asked (the server fills them as it starts)"
                     % fmt(pool["pool_first_fill_ms"]))
    for k, v in failed.items():
        for who, why in v.items():
            notes.append("**%s failed on %s**: %s" % (k, who, why[:300]))
    if failed.get("file_1mib") and main_.get("setfsuid_probe"):
        notes.append("setfsuid inside each tier (uid, setfsuid(uid), setfsuid(-1), errno): " + "; ".join(
            "%s: %s" % (t, v.split(": ", 1)[-1]) for t, v in main_["setfsuid_probe"].items()))
    for n_ in notes:
        print("- " + n_)
    if notes:
        print()
    print("| target | measured | met? |")
    print("|---|---|:---:|")
    for t in targets:
        print("| %s | %s | %s |" % (t["target"], t["text"], "—" if t["met"] is None else ("yes" if t["met"] else "**no**")))
    errs = (raw.get("errors") or []) + (main_.get("errors") or []) + (pool.get("errors") or [])
    if errs:
        print()
        print("Errors (%d): %s" % (len(errs), "; ".join(errs[:10])))
    for name, part in (("no-pool", main_), ("pool", pool)):
        if part.get("server_log_errors"):
            print()
            print("The %s server logged errors (see %s)." % (name, argv[4]))
    pool_tiers = main_.get("pause_tiers")
    if pool_tiers is not None and len(pool_tiers) < 2:
        print()
        print("Pause/resume measured for: %s (GET /runtimes lists `pause` only for those)." % (", ".join(pool_tiers) or "none"))

    json.dump({"meta": meta, "unavailable": unavailable, "targets": targets, "summary": summary,
               "idle_memory": mem, "failed": failed, "setfsuid_probe": main_.get("setfsuid_probe"), "raw_runsc_flags": raw.get("runsc_flags"), "pool_first_fill_ms": pool.get("pool_first_fill_ms"),
               "runtimes": main_.get("runtimes"), "errors": errs,
               "server_log_errors": {"main": main_.get("server_log_errors"), "pool": pool.get("server_log_errors")},
               "samples": samples}, open(argv[4], "w"), indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
