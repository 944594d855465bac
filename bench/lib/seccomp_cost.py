"""Stockade benchmark, part 1c: what the seccomp policy costs, before and after, in one run.

    seccomp_cost.py BUNDLE OUTDIR ROUNDS BEFORE_REV

BUNDLE is the minimal bundle of runc-baseline.sh (its config.userns.json: /usr read-only from the
host, a user namespace as Stockade uses). Copies of it differ only in linux.seccomp:
  none    no filter;
  before  the policy of git revision BEFORE_REV (the deny-list on default-allow, by default);
  after   this work tree's policy (the allow-list);
  compat  a what-if: the same allow-list with the compatibility ABIs listed too (i386, x32, arm),
          which the policy leaves out; it shows what listing them would cost at start.
Both policies are taken from runtime-oci's golden config.json, which a unit test pins to what
SeccompPolicy produces from policy/seccomp.json, so they are exactly what runc is given.

Each round runs every workload once in every variant, in a rotating order (so neither drift nor
position favours a variant): `python3 -c pass` (start-up, which includes loading the filter),
`import numpy, pandas, matplotlib.pyplot` (a realistic import-heavy start), and inside the sandbox
1,000,000 getppid() and 1,000,000 stat("/") calls timed by Python itself (the per-call cost of the
filter, without the container's set-up). Writes hyperfine-shaped JSON files (times in seconds)
named seccomp-<workload>-<variant>.json into OUTDIR, for report.mjs.
"""
import json
import os
import subprocess
import sys
import time

BUNDLE, OUT, ROUNDS, BEFORE = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLDEN = "runtime-oci/src/test/resources/golden/config.json"

MICRO = ("import json, os, time\n"
         "def t(fn, n=1000000):\n"
         "    t0 = time.perf_counter()\n"
         "    for _ in range(n): fn()\n"
         "    return time.perf_counter() - t0\n"
         "print(json.dumps({'getppid': t(os.getppid), 'stat': t(lambda: os.stat('/'))}))\n")
WORKLOADS = {
    "start": ["/usr/bin/python3", "-c", "pass"],
    "imports": ["/usr/bin/python3", "-c", "import numpy, pandas, matplotlib.pyplot"],
    "micro": ["/usr/bin/python3", "-c", MICRO],
}


def seccomp_of(config_text):
    return json.loads(config_text)["linux"]["seccomp"]


def main():
    before = seccomp_of(subprocess.run(["git", "-C", ROOT, "show", BEFORE + ":" + GOLDEN], check=True,
                                       capture_output=True, text=True).stdout)
    with open(os.path.join(ROOT, GOLDEN)) as f:
        after = seccomp_of(f.read())
    with open(os.path.join(BUNDLE, "config.userns.json")) as f:
        base = json.load(f)
    base["root"]["path"] = os.path.join(os.path.abspath(BUNDLE), "rootfs")
    base["process"]["env"] = base["process"].get("env", []) + ["MPLCONFIGDIR=/tmp", "HOME=/tmp"]
    # What the sandboxes' template /etc provides and these imports read: Debian's alternatives links
    # (numpy finds its BLAS through them) and matplotlib's defaults. Their mount points are made here:
    # runc's init, root of a user namespace, cannot create them in the rootfs.
    for path in ("/etc/alternatives", "/etc/matplotlibrc"):
        target = os.path.join(BUNDLE, "rootfs", path.lstrip("/"))
        if os.path.isdir(path):
            os.makedirs(target, exist_ok=True)
        elif not os.path.exists(target):
            open(target, "w").close()
        base["mounts"].append({"destination": path, "type": "none", "source": path,
                               "options": ["rbind", "ro", "nosuid", "nodev"]})
    compat = dict(after, architectures=after["architectures"] + ["SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_ARM"])
    variants = {"none": None, "before": before, "after": after, "compat": compat}
    work = os.path.join(os.path.dirname(os.path.abspath(BUNDLE)), "seccomp")
    times = {(w, v): [] for w in list(WORKLOADS) + ["getppid", "stat"] for v in variants}
    cid = "benchseccomp-%d" % os.getpid()
    for r in range(ROUNDS):
        order = list(variants)[r % len(variants):] + list(variants)[:r % len(variants)]
        for w, args in WORKLOADS.items():
            for v in order:
                d = os.path.join(work, w + "-" + v)
                os.makedirs(d, exist_ok=True)
                cfg = json.loads(json.dumps(base))
                cfg["process"]["args"] = args
                if variants[v] is None:
                    cfg["linux"].pop("seccomp", None)
                else:
                    cfg["linux"]["seccomp"] = variants[v]
                with open(os.path.join(d, "config.json"), "w") as f:
                    json.dump(cfg, f)
                t0 = time.perf_counter()
                p = subprocess.run(["runc", "run", "--bundle", d, cid], stdin=subprocess.DEVNULL,
                                   capture_output=True, text=True)
                elapsed = time.perf_counter() - t0
                if p.returncode != 0:
                    subprocess.run(["runc", "delete", "--force", cid], capture_output=True)
                    sys.exit("seccomp_cost: %s under %s failed (%d): %s" % (w, v, p.returncode, p.stderr.strip()[-500:]))
                if w == "micro":
                    for k, s in json.loads(p.stdout.strip().splitlines()[-1]).items():
                        times[(k, v)].append(s)
                else:
                    times[(w, v)].append(elapsed)
        print("[seccomp] round %d/%d" % (r + 1, ROUNDS), file=sys.stderr)
    for (w, v), xs in times.items():
        if xs:
            with open(os.path.join(OUT, "seccomp-%s-%s.json" % (w, v)), "w") as f:
                json.dump({"results": [{"command": "%s under %s" % (w, v), "times": xs}]}, f)


main()
