#!/usr/bin/env python3
"""Stockade benchmark helper: times host commands on request, for interleaving with SDK calls.

Reads one JSON argv per line on stdin, runs it with subprocess.run (output discarded), and answers
one line: the wall time in milliseconds (or "ERR <status>"). The same method as the timer that
bench/e2b-bench.mjs runs inside the sandbox, so host and sandbox figures compare like for like,
and no node process start-up is counted.
"""
import json
import subprocess
import sys
import time

for line in sys.stdin:
    argv = json.loads(line)
    t0 = time.perf_counter()
    rc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL).returncode
    ms = (time.perf_counter() - t0) * 1000
    sys.stdout.write(("%.4f\n" % ms) if rc == 0 else ("ERR %d\n" % rc))
    sys.stdout.flush()
