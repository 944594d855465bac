"""Pause/resume latency (issue 6): against a running server (URL, admin key file), for N sandboxes
each holding a busy background process and an interpreter variable, times POST /sandboxes/{id}/pause
and POST /v2/sandboxes/{id}/connect (which resumes), checks after every resume that the process went
on where it was and the variable survived, and times GET /sandboxes/{id} in the same run as the
baseline (the HTTP round trip and auth). Prints a Markdown table; exits 1 on any failure.

    /usr/bin/python3 bench/lib/pause_bench.py URL KEY_FILE [--cycles N] [--sandboxes N]
"""
import http.client
import json
import statistics
import sys
import time
import urllib.parse


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    url, key = argv[1], open(argv[2]).read().strip()
    cycles, boxes = 30, 3
    rest = argv[3:]
    while rest:
        opt, value = rest[0], int(rest[1])
        if opt == "--cycles":
            cycles = value
        elif opt == "--sandboxes":
            boxes = value
        else:
            raise SystemExit("unknown option " + opt)
        rest = rest[2:]
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)

    def call(method, path, body=None, headers=None):
        h = {"X-API-Key": key, "Content-Type": "application/json"}
        h.update(headers or {})
        conn.request(method, path, json.dumps(body) if body is not None else None, h)
        r = conn.getresponse()
        data = r.read()
        return r.status, data

    def sandbox_call(box, path, body):
        return call("POST", path, body, {"E2b-Sandbox-Id": box["sandboxID"], "X-Access-Token": box["envdAccessToken"]})

    def run(box, cmd):
        # One unary-looking Connect stream: send the envelope, read the whole answer.
        msg = json.dumps({"process": {"cmd": "/bin/bash", "args": ["-c", cmd]}}).encode()
        frame = b"\x00" + len(msg).to_bytes(4, "big") + msg
        conn.request("POST", "/process.Process/Start", frame, {
            "X-API-Key": key, "E2b-Sandbox-Id": box["sandboxID"], "X-Access-Token": box["envdAccessToken"],
            "Content-Type": "application/connect+json", "Connect-Protocol-Version": "1"})
        r = conn.getresponse()
        raw = r.read()
        out, i = b"", 0
        while i + 5 <= len(raw):
            n = int.from_bytes(raw[i + 1:i + 5], "big")
            m = json.loads(raw[i + 5:i + 5 + n])
            data = m.get("event", {}).get("data", {})
            if "stdout" in data:
                import base64
                out += base64.b64decode(data["stdout"])
            i += 5 + n
        return out.decode()

    def count(box):
        s = run(box, "cat /tmp/n 2>/dev/null || echo 0").strip()
        return int(s or 0)

    made = []
    pause_ms, resume_ms, get_ms = [], [], []
    failures = []
    try:
        for _ in range(boxes):
            status, data = call("POST", "/v2/sandboxes", {"templateID": "base", "timeout": 600})
            if status != 201:
                raise SystemExit("create failed: %s %s" % (status, data[:200]))
            made.append(json.loads(data))
        for box in made:
            run(box, "nohup /usr/bin/python3 -c 'import os, time\nn = 0\nwhile True:\n    n += 1\n"
                     "    open(\"/tmp/n.tmp\", \"w\").write(str(n)); os.replace(\"/tmp/n.tmp\", \"/tmp/n\")\n"
                     "    time.sleep(0.01)' > /dev/null 2>&1 &")
        time.sleep(0.5)
        for c in range(cycles):
            for box in made:
                sid = box["sandboxID"]
                before = count(box)
                t = time.perf_counter()
                status, data = call("GET", "/sandboxes/" + sid)
                get_ms.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                status, data = call("POST", "/sandboxes/%s/pause" % sid, {})
                pause_ms.append((time.perf_counter() - t) * 1000)
                if status != 200:
                    failures.append("pause %s: %s %s" % (sid, status, data[:200]))
                    continue
                t = time.perf_counter()
                status, data = call("POST", "/v2/sandboxes/%s/connect" % sid, {})
                resume_ms.append((time.perf_counter() - t) * 1000)
                if status != 200:
                    failures.append("connect %s: %s %s" % (sid, status, data[:200]))
                    continue
                after = count(box)
                if not before <= after < before + 100:
                    failures.append("counter of %s: %d before the pause, %d after the resume" % (sid, before, after))
    finally:
        for box in made:
            call("DELETE", "/sandboxes/" + box["sandboxID"])

    def row(name, xs):
        xs = sorted(xs)
        p99 = xs[min(len(xs) - 1, int(round(0.99 * (len(xs) - 1))))]
        return "| %s | %d | %.2f | %.2f | %.2f |" % (name, len(xs), statistics.median(xs), p99, xs[-1])

    print("| operation | n | median (ms) | p99 (ms) | max (ms) |")
    print("|---|---:|---:|---:|---:|")
    print(row("GET /sandboxes/{id} (baseline)", get_ms))
    print(row("POST /sandboxes/{id}/pause", pause_ms))
    print(row("POST /v2/sandboxes/{id}/connect (resume)", resume_ms))
    print()
    print("%d sandboxes, each with a process writing a counter every 10 ms; %d pause/resume cycles each;"
          " after every resume the counter went on from where it was: %s"
          % (boxes, cycles, "yes" if not failures else "NO"))
    for f in failures[:10]:
        print("failure:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
