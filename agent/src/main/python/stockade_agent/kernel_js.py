"""The kernel of a JavaScript code context (E2B's `language: 'javascript'` or `'js'`): kernel.py
runs this instead of its Python runners when started with --language javascript.

One node process lives as long as the kernel, so globals, functions and required modules persist
from cell to cell, as in the JavaScript kernel of E2B's template. Every cell is a script run in
node's own global context (so a top-level `let` or `const` of one cell is seen by the next); the
value of its last expression is the cell's result, shown as node's util.inspect shows it (a string
loses its quotes, as E2B's server does). A cell that uses `await` at top level runs as the body of
an async function: its declarations stay inside it and its result is what it returns. A promise as
a cell's value is awaited. `require` resolves from the context's working directory.

This Python process stays in between because the agent's kernel protocol (the event channel,
ready/done, per-cell envs) is the one every language speaks: node reads each cell as one JSON line
on a pipe of its own and answers one JSON line on another; its stdout and stderr are the kernel's
(the agent's pipes), so output streams as it comes and reaches the agent before the answer does
(node writes to pipes synchronously on Linux). The driver is given to node on its command line, so
the agent's directory holds only Python (AgentScript compiles every file in it).

Interrupts: the agent sends SIGINT to the kernel's process group. This program ignores it; node
breaks off a running script (vm's breakOnSigint) or gives up waiting on the cell's promise, and
the cell ends with an error while the context's state is kept. A cell that ends node
(`process.exit()`) ends the kernel: the agent reports the context's state lost and starts a new one.

Runs as the context's user; node's answers are trusted no more than the rest of the kernel (user
code can write to the same pipe): at worst a cell ends early or shows the wrong result."""

import json
import os
import shutil
import signal
import subprocess

from . import kernel_events as events
from .kernel_events import STATE, publish_error

ANSWER_LIMIT = events.EVENT_BUDGET + (64 << 10)   # bytes of one answer line node may send

DRIVER = r"""
'use strict';
const fs = require('fs'), vm = require('vm'), util = require('util'), path = require('path');
const Module = require('module');
const [reqFd, ansFd] = process.argv.slice(-2).map(Number);
let n = 0, waiting = null;
const answer = (obj) => {
  const line = Buffer.from(JSON.stringify(obj) + '\n');
  for (let off = 0; off < line.length;) off += fs.writeSync(ansFd, line, off);
};
globalThis.require = Module.createRequire(path.join(process.cwd(), '[cell]'));
globalThis.module = { exports: {} };
// The kernel outlives what a cell leaves behind: an error thrown later by a timer or an unhandled
// rejection is reported on stderr instead of ending node.
process.on('uncaughtException', (e) => { console.error(e && e.stack ? e.stack : String(e)); });
process.on('unhandledRejection', (e) => { console.error('Unhandled rejection:', e && e.stack ? e.stack : e); });
process.on('SIGINT', () => { if (waiting) waiting(new Error('Interrupted: the cell was stopped by SIGINT')); });
const show = (v) => util.inspect(v, { depth: 4, maxArrayLength: 200, maxStringLength: 1 << 20, breakLength: 80 });
const compile = (code, filename) => {
  try {
    return new vm.Script(code, { filename });
  } catch (e) {
    if (!(e instanceof SyntaxError) || !/await|return/.test(e.message)) throw e;
    return new vm.Script('(async () => {\n' + code + '\n})()', { filename, lineOffset: -1 });
  }
};
async function run(req) {
  const envs = req.envs && typeof req.envs === 'object' ? req.envs : {};
  const saved = {};
  for (const [k, v] of Object.entries(envs)) {
    if (typeof v !== 'string') continue;
    saved[k] = Object.prototype.hasOwnProperty.call(process.env, k) ? process.env[k] : undefined;
    process.env[k] = v;
  }
  try {
    const script = compile(typeof req.code === 'string' ? req.code : '', 'cell[' + (++n) + ']');
    let value = script.runInThisContext({ breakOnSigint: true, displayErrors: false });
    if (value !== null && typeof value === 'object' && typeof value.then === 'function') {
      value = await new Promise((resolve, reject) => { waiting = reject; Promise.resolve(value).then(resolve, reject); });
    }
    return { ok: true, text: value === undefined ? null : show(value) };
  } catch (e) {
    const err = e instanceof Error ? e : new Error(show(e));
    return { ok: false, name: err.name || 'Error', value: String(err.message), traceback: String(err.stack || '') };
  } finally {
    waiting = null;
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k]; else process.env[k] = v;
    }
  }
}
let buffered = '';
let queue = Promise.resolve();
answer({ ready: true, node: process.version });
// A libuv pipe, not fs.createReadStream: a blocking read in the thread pool would hold
// process.exit() back.
new (require('net').Socket)({ fd: reqFd, readable: true, writable: false }).setEncoding('utf8').on('data', (chunk) => {
  buffered += chunk;
  let i;
  while ((i = buffered.indexOf('\n')) >= 0) {
    const line = buffered.slice(0, i);
    buffered = buffered.slice(i + 1);
    let req;
    try { req = JSON.parse(line); } catch (e) { continue; }
    queue = queue.then(() => run(req)).then(answer);
  }
}).on('end', () => process.exit(0));
"""


class NodeRunner:
    def __init__(self):
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("this sandbox's template has no node: JavaScript cells need node on the PATH")
        req_r, req_w = os.pipe()
        ans_r, ans_w = os.pipe()
        # SIGINT has Python's handler here, which exec resets to the default: node can handle it.
        self.node = subprocess.Popen([node, "--stack-size=4096", "-e", DRIVER, "--", str(req_r), str(ans_w)],
                                     stdin=subprocess.DEVNULL, pass_fds=(req_r, ans_w), close_fds=True)
        os.close(req_r)
        os.close(ans_w)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.requests = os.fdopen(req_w, "wb", buffering=0)
        self.answers = os.fdopen(ans_r, "rb")
        ready = self._answer()
        if not ready or not ready.get("ready"):
            raise RuntimeError("node did not start")
        self.version = ready.get("node")

    def _answer(self):
        line = self.answers.readline(ANSWER_LIMIT)
        if not line.endswith(b"\n"):
            return None  # node is gone, or sent more than any answer may take
        try:
            value = json.loads(line)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def run(self, code, envs):
        """Runs one cell; returns node's answer, or None when node is gone."""
        try:
            self.requests.write((json.dumps({"code": code, "envs": envs}) + "\n").encode("utf-8", "surrogatepass"))
            return self._answer()
        except (BrokenPipeError, OSError, UnicodeError):
            return None


def execute(runner, req):
    STATE.errored = False
    answer = runner.run(events.cell_code(req), events.cell_envs(req))
    events.flush_std()
    if answer is None:
        raise SystemExit(1)  # node exited: the agent reports the lost state and starts a new kernel
    if answer.get("ok"):
        text = answer.get("text")
        if isinstance(text, str):
            events.publish({"text/plain": text}, True)
    else:
        publish_error(events.safe_str(answer.get("name", "Error")), events.safe_str(answer.get("value", "")),
                      events.safe_str(answer.get("traceback", "")))
    return "error" if STATE.errored else "ok"
