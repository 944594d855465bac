#!/usr/bin/env python3
"""Stockade benchmark diagnostic: a code cell through the agent alone, without the server or HTTP.

    cell_probe.py SOCKET

Reads requests on stdin, one JSON object a line: {"code": "...", "contextId": null | "...",
"expect": "2" (optional: the main result's text)}. For each, it connects to a running sandbox's
agent socket on the host (root only: the socket lives in the sandbox's state directory), sends an
`execute` request and reads its stream up to the end event (docs/agent-protocol.md, "Code
contexts"), and answers one line: the wall time in milliseconds and, after a space, the time at
which the agent's `accepted` event arrived (before the cell runs), or "ERR <why>". Persistent, so
that bench/ci-bench.mjs can interleave these cells with the same cell sent through the SDK and
through raw HTTP, and no Python start-up is counted. What is left above this figure in
POST /execute is the server and HTTP.
"""
import json
import socket
import sys
import time


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("agent closed the connection")
        buf += chunk
    return buf


def frame(s):
    n = int.from_bytes(recv_exact(s, 4), "big")
    body = recv_exact(s, n)
    return body[0:1], body[1:]


def execute(path, code, context_id, t0):
    """One cell: returns (main result text or None, end event, when `accepted` came)."""
    req = json.dumps({"op": "execute", "contextId": context_id, "code": code, "envs": {},
                      "timeoutMillis": 60000, "outputLimitBytes": 1 << 20}).encode()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(60)
    try:
        s.connect(path)
        s.sendall((len(req) + 1).to_bytes(4, "big") + b"J" + req)
        main = None
        accepted = None
        while True:
            kind, payload = frame(s)
            if kind != b"J":
                continue  # output bytes ('1', '2') or the data of a large event ('B')
            msg = json.loads(payload)
            ev = msg.get("ev")
            if ev is None:
                raise RuntimeError("agent error: %r" % msg)
            if ev == "accepted":
                accepted = time.perf_counter() - t0
            elif ev == "result" and msg.get("isMainResult"):
                main = msg.get("data", {}).get("text")
            elif ev == "end":
                return main, msg, accepted
    finally:
        s.close()


def main():
    path = sys.argv[1]
    for line in sys.stdin:
        req = json.loads(line)
        try:
            t0 = time.perf_counter()
            text, end, accepted = execute(path, req["code"], req.get("contextId"), t0)
            ms = (time.perf_counter() - t0) * 1000
            if end.get("outcome") != "ok":
                raise RuntimeError("cell ended %s: %s" % (end.get("outcome"), end.get("reason")))
            if "expect" in req and text != req["expect"]:
                raise RuntimeError("main result %r, expected %r" % (text, req["expect"]))
            sys.stdout.write("%.4f %.4f\n" % (ms, accepted * 1000))
        except Exception as e:  # reported to the driver, which fails the run
            sys.stdout.write("ERR %s\n" % str(e).replace("\n", " "))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
