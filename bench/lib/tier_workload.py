#!/usr/bin/env python3
"""Stockade benchmark helper for bench/tiers.sh: the two workloads, and a host-side timer.

    tier_workload.py cpu             a CPU-bound pure-Python workload (~0.5 s bare here)
    tier_workload.py sys DIR         a syscall-heavy workload in DIR (a private, writable directory)
    tier_workload.py spawn N         time N process starts of `bash -l -c "echo hi"`, `bash -c "echo hi"`, /bin/true
    tier_workload.py agent-hello SOCK N   (host, root) N round trips of the agent's hello over its socket
    tier_workload.py timer           read one JSON argv per line on stdin, run it, answer one JSON line

A workload prints one JSON line, {"workload": ..., "ms": ..., "check": ...}: the time it measured
itself (time.perf_counter around the work, interpreter start-up excluded), and a checksum, so the
harness can see that it ran to the end. The same file runs inside the sandboxes (uploaded to /tmp)
and bare on the host (/usr/bin/python3), so both sides run exactly the same code.

timer: runs each argv with subprocess.run (stdin from /dev/null, stdout captured, at most 1 MiB
kept, 600 s timeout) and answers {"ms": wall time in ms, "rc": exit status, "out": stdout}: the
end-to-end host figure that sits beside the sandbox's end-to-end figure (the same method as
bench/lib/host_timer.py, which discards the output).
"""
import hashlib
import json
import os
import subprocess
import sys
import time

# Sized so that each takes roughly half a second bare on this 2-core host (Python 3.11).
CPU_HASHES = 450_000          # sha256 chained over 32 bytes: C code behind one Python call each
CPU_LOOP = 6_000_000          # pure-Python integer arithmetic: the bytecode interpreter
SYS_STATS = 20_000            # os.stat of a path: one syscall each, no I/O
SYS_PIDS = 20_000             # os.getpid(): the cheapest syscall there is
SYS_FILES = 1_000             # open+write 4 KiB+close, open+read+close, unlink: ~8 syscalls each


def cpu():
    t0 = time.perf_counter()
    h = b"stockade"
    for _ in range(CPU_HASHES):
        h = hashlib.sha256(h).digest()
    s = 0
    for i in range(CPU_LOOP):
        s = (s + i * i) % 1_000_003
    ms = (time.perf_counter() - t0) * 1000
    return ms, "%s-%d" % (h.hex()[:16], s)


def syscalls(d):
    os.makedirs(d, exist_ok=True)
    payload = b"x" * 4096
    t0 = time.perf_counter()
    n = 0
    for _ in range(SYS_STATS):
        n += os.stat(d).st_nlink > 0
    for _ in range(SYS_PIDS):
        n += os.getpid() > 0
    for i in range(SYS_FILES):
        p = os.path.join(d, "f%d" % (i % 16))
        with open(p, "wb") as f:
            f.write(payload)
        with open(p, "rb") as f:
            n += len(f.read()) == 4096
        os.unlink(p)
    ms = (time.perf_counter() - t0) * 1000
    return ms, str(n)


def spawn(n):
    """Process creation alone, timed from inside: what every command through the API pays on top."""
    out = {"bash_l_echo": [], "bash_c_echo": [], "true": []}
    for _ in range(n):
        for key, argv in (("bash_l_echo", ["/bin/bash", "-l", "-c", "echo hi"]), ("bash_c_echo", ["/bin/bash", "-c", "echo hi"]),
                          ("true", ["/bin/true"])):
            t0 = time.perf_counter()
            subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=True)
            out[key].append(round((time.perf_counter() - t0) * 1000, 4))
    return out


def agent_hello(path, n):
    """connect + {"op":"hello"} + its answer, on a sandbox's agent socket: the transport alone."""
    import socket
    req = b'{"op":"hello"}'
    frame = (len(req) + 1).to_bytes(4, "big") + b"J" + req
    times = []
    for i in range(n + 5):
        t0 = time.perf_counter()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        try:
            s.connect(path)
            s.sendall(frame)
            head = b""
            while len(head) < 4:
                chunk = s.recv(4 - len(head))
                if not chunk:
                    raise EOFError("the agent closed the connection")
                head += chunk
            size = int.from_bytes(head, "big")
            if not 0 < size <= 1 << 16:
                raise ValueError("bad frame length %d" % size)
            body = b""
            while len(body) < size:
                chunk = s.recv(size - len(body))
                if not chunk:
                    raise EOFError("the agent closed the connection")
                body += chunk
        finally:
            s.close()
        if body[:1] != b"J" or b'"version"' not in body:
            raise ValueError("unexpected hello answer %r" % body[:200])
        if i >= 5:  # 5 warm-up
            times.append(round((time.perf_counter() - t0) * 1000, 4))
    return times


def timer():
    for line in sys.stdin:
        argv = json.loads(line)
        if not isinstance(argv, list) or not argv or len(argv) > 64 or not all(isinstance(a, str) for a in argv):
            sys.stdout.write(json.dumps({"ms": -1, "rc": -1, "out": "bad argv: a JSON list of 1..64 strings"}) + "\n")
            sys.stdout.flush()
            continue
        t0 = time.perf_counter()
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, timeout=600)
            rc, out = p.returncode, p.stdout[:1 << 20].decode("utf-8", "replace")
        except (OSError, subprocess.TimeoutExpired) as e:
            rc, out = -1, str(e)
        ms = (time.perf_counter() - t0) * 1000
        sys.stdout.write(json.dumps({"ms": round(ms, 4), "rc": rc, "out": out}) + "\n")
        sys.stdout.flush()


def main(argv):
    if len(argv) >= 2 and argv[1] == "cpu":
        ms, check = cpu()
    elif len(argv) >= 3 and argv[1] == "sys":
        ms, check = syscalls(argv[2])
        expected = str(SYS_STATS + SYS_PIDS + SYS_FILES)
        if check != expected:
            print(json.dumps({"workload": "sys", "error": "checksum %s, expected %s" % (check, expected)}))
            return 1
    elif len(argv) == 3 and argv[1] == "spawn" and argv[2].isdigit() and 0 < int(argv[2]) <= 1000:
        print(json.dumps({"workload": "spawn", "ms": spawn(int(argv[2])), "check": "ok"}))
        return 0
    elif len(argv) == 4 and argv[1] == "agent-hello" and argv[3].isdigit() and 0 < int(argv[3]) <= 10000:
        print(json.dumps({"workload": "agent-hello", "ms": agent_hello(argv[2], int(argv[3])), "check": "ok"}))
        return 0
    elif len(argv) == 2 and argv[1] == "timer":
        timer()
        return 0
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps({"workload": argv[1], "ms": round(ms, 4), "check": check}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
