#!/usr/bin/env python3
"""Stockade benchmark diagnostic: the agent alone, without the server or HTTP.

    agent_probe.py SOCKET N OUT.json

Connects to a running sandbox's agent socket on the host (root only: it lives in the sandbox's
state directory) and times N `exec /bin/echo hi` round trips: connect, request frame, the start
event, stdout, the end event. This is the floor under the server's process.Process/Start: what is
left above it is the server and HTTP. Frames: 4-byte big-endian length, type byte, payload
(docs/agent-protocol.md); 'J' frames are JSON.
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


def exec_once(path):
    req = json.dumps({"op": "exec", "argv": ["/bin/echo", "hi"], "env": {}, "user": "user",
                      "stdin": False, "timeoutMillis": 0, "outputLimitBytes": 1 << 20}).encode()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect(path)
        s.sendall((len(req) + 1).to_bytes(4, "big") + b"J" + req)
        out = b""
        while True:
            kind, payload = frame(s)
            if kind == b"1":
                out += payload
            elif kind == b"J":
                msg = json.loads(payload)
                if msg.get("ev") == "end":
                    break
                if "ev" not in msg:
                    raise RuntimeError("agent error: %r" % msg)
        if out != b"hi\n":
            raise RuntimeError("unexpected output %r" % out)
    finally:
        s.close()


def main():
    path, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    for _ in range(10):
        exec_once(path)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        exec_once(path)
        times.append((time.perf_counter() - t0) * 1000)
    with open(out, "w") as f:
        json.dump({"agent_exec_echo": times}, f)


if __name__ == "__main__":
    main()
