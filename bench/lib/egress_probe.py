"""Times HTTP requests from where it runs: through the egress proxy named by $HTTP_PROXY (inside a
sandbox) or straight to the site (on the host, the baseline). One new TCP connection per request,
as most clients make through a proxy. Prints one JSON object.

    egress_probe.py --url http://site.test:PORT --n 300 [--direct HOST:PORT] [--big-runs 3]
"""
import http.client
import json
import os
import sys
import time
import urllib.parse


def connection(args, timeout=30):
    if args["direct"]:
        host, port = args["direct"].rsplit(":", 1)
        return http.client.HTTPConnection(host, int(port), timeout=timeout)
    proxy = urllib.parse.urlsplit(os.environ["HTTP_PROXY"])
    return http.client.HTTPConnection(proxy.hostname, proxy.port, timeout=timeout)


def get(args, path, sink=None):
    c = connection(args)
    try:
        target = path if args["direct"] else args["url"] + path
        c.request("GET", target)
        r = c.getresponse()
        n = 0
        while True:
            chunk = r.read(1 << 20)
            if not chunk:
                break
            n += len(chunk)
        if r.status != 200:
            raise SystemExit("GET %s: %d" % (target, r.status))
        return n
    finally:
        c.close()


def main(argv):
    args = {"url": None, "n": 300, "direct": None, "big_runs": 3}
    i = 0
    while i < len(argv):
        key = argv[i].lstrip("-").replace("-", "_")
        args[key] = argv[i + 1] if key in ("url", "direct") else int(argv[i + 1])
        i += 2
    for _ in range(20):  # warm-up
        get(args, "/small")
    small = []
    for _ in range(args["n"]):
        t = time.perf_counter()
        get(args, "/small")
        small.append((time.perf_counter() - t) * 1000)
    big = []
    for _ in range(args["big_runs"]):
        t = time.perf_counter()
        n = get(args, "/big")
        big.append(n / (1 << 20) / (time.perf_counter() - t))
    print(json.dumps({"small_ms": small, "big_mib_s": big, "big_bytes": n}))


if __name__ == "__main__":
    main(sys.argv[1:])
