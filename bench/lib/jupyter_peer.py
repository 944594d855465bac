#!/usr/bin/env python3
"""Stockade benchmark peer: a Jupyter kernel driven by jupyter_client, on the host, unsandboxed.

    /usr/bin/python3 jupyter_peer.py WORKDIR

Debian's python3-ipykernel (the stock "python3" kernel spec, /usr/bin/python3 -m ipykernel_launcher)
started by jupyter_client's KernelManager and driven by its BlockingKernelClient, the way a
notebook server or a script drives a kernel. It runs as the calling user (root) directly on the
host: no container, no namespaces, no limits. Its working directory, IPYTHONDIR, Jupyter runtime
directory (connection files) and matplotlib cache live under WORKDIR (the first kernel fills the caches; later ones
find them, as a Jupyter user's would), and matplotlib uses ipykernel's default inline backend, so
plt.show() sends the figure as an image/png display_data.

Reads requests on stdin, one JSON object a line, and answers one JSON line each:
  {"op": "versions"}         -> {"jupyter_client", "ipykernel", "ipython", "python"}
  {"op": "start"}            -> {"ms"}: start_kernel + start_channels + wait_for_ready
  {"op": "exec", "code"}     -> {"ms", "status", "text", "png", "html", "stdout", "error"}: execute(),
                                then iopub messages until the kernel is idle for this request, then
                                the shell reply (the usual "execute, wait for idle" loop)
  {"op": "stop"}             -> {"ok": true}: shutdown_kernel (not timed)
Times are taken here (time.perf_counter around the jupyter_client calls). Errors: {"error": "..."}.
"""
import json
import os
import sys
import time


def main():
    work = sys.argv[1]
    for sub in ("cwd", "ipython", "runtime", "mpl"):
        os.makedirs(os.path.join(work, sub), exist_ok=True)
    os.environ["IPYTHONDIR"] = os.path.join(work, "ipython")
    os.environ["JUPYTER_RUNTIME_DIR"] = os.path.join(work, "runtime")
    os.environ["MPLCONFIGDIR"] = os.path.join(work, "mpl")
    os.environ.pop("MPLBACKEND", None)  # ipykernel then picks its inline backend
    os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # debugpy's frozen-modules warning
    from jupyter_client.manager import KernelManager

    kernel_log = open(os.path.join(work, "kernel.log"), "ab")
    km = kc = None
    started = 0

    def start():
        nonlocal km, kc, started
        started += 1
        t0 = time.perf_counter()
        # The connection file under WORKDIR too (jupyter_client's default is a temporary file in /tmp).
        km = KernelManager(kernel_name="python3",
                           connection_file=os.path.join(work, "runtime", "kernel-%d.json" % started))
        km.start_kernel(cwd=os.path.join(work, "cwd"), stdout=kernel_log, stderr=kernel_log)
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=120)
        return {"ms": (time.perf_counter() - t0) * 1000}

    def execute(code):
        out = {"status": None, "text": None, "png": 0, "html": 0, "stdout": "", "error": None}
        t0 = time.perf_counter()
        msg_id = kc.execute(code)
        while True:
            msg = kc.get_iopub_msg(timeout=120)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status" and content["execution_state"] == "idle":
                break
            if kind in ("execute_result", "display_data"):
                data = content["data"]
                if kind == "execute_result":
                    out["text"] = data.get("text/plain")
                out["png"] += "image/png" in data
                out["html"] += "text/html" in data
            elif kind == "stream" and content["name"] == "stdout":
                out["stdout"] += content["text"]
            elif kind == "error":
                out["error"] = "%s: %s" % (content["ename"], content["evalue"])
        while True:
            reply = kc.get_shell_msg(timeout=120)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        out["ms"] = (time.perf_counter() - t0) * 1000
        out["status"] = reply["content"]["status"]
        return out

    def stop():
        nonlocal km, kc
        if kc is not None:
            kc.stop_channels()
        if km is not None:
            km.shutdown_kernel()
        km = kc = None
        return {"ok": True}

    def versions():
        import IPython
        import ipykernel
        import jupyter_client
        return {"jupyter_client": jupyter_client.__version__, "ipykernel": ipykernel.__version__,
                "ipython": IPython.__version__, "python": sys.version.split()[0]}

    ops = {"start": lambda r: start(), "exec": lambda r: execute(r["code"]), "stop": lambda r: stop(),
           "versions": lambda r: versions()}
    try:
        for line in sys.stdin:
            req = json.loads(line)
            try:
                answer = ops[req["op"]](req)
            except Exception as e:  # reported to the driver, which fails the run
                answer = {"error": "%s: %s" % (type(e).__name__, e)}
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()
    finally:
        stop()


if __name__ == "__main__":
    main()
