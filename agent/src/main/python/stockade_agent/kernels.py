"""The agent's side of each kernel (the interpreter process of a code context, kernel.py, started
as the context's user from "kernel" in the agent's directory): starting it, handing it cells,
the pump thread that reads its stdout, stderr and event pipes, and the account of its death.
Its events (results, errors, end of cell) arrive as length-prefixed JSON (docs/agent-protocol.md,
"The kernel's channels"). Everything a kernel sends is user-controlled: it is bounded, parsed
defensively and rebuilt before it reaches a client."""

import json
import os
import select
import subprocess
import sys
import threading
import time

from . import children, settings
from .children import DRAIN_AFTER_EXIT, KERNELS, LOCK, PIPE_READ
from .children import describe_bytes, describe_duration, oom_kills, set_oom_score_adj, signal_group, signal_name, wake
from .egress import egress_env
from .protocol import AgentError, ERR, OUT, Subscriber, os_error
from .settings import BASE_PATH, log
from .shared import PRELOAD_MAX_MODULES

KERNEL_START_TIMEOUT = 60.0      # from spawn to the kernel's ready event
INTERRUPT_GRACE = 2.0            # SIGINT, then SIGKILL this much later if the cell goes on
KERNEL_EVENT_MAX = 64 << 20      # one event frame from a kernel; bigger breaks the protocol
KERNEL_REQUEST_TIMEOUT = 10.0    # an idle kernel must take its request within this
EVENTS_CLOSED_GRACE = 0.5        # a kernel whose event channel closed must have exited by then
STDERR_TAIL = 4096               # kernel stderr kept (outside cells) to explain a failed start
_PRELOAD_LOGGED = set()          # modules whose failed preload was logged already


def kernel_path():
    if settings.KERNEL_PATH:
        return settings.KERNEL_PATH
    return os.path.join(settings.INSTALL_DIR, "kernel")


class Cell:
    """One execution: counts its output against the limit and hands events to its subscriber.
    Fed by the kernel's pump thread; read by the connection thread that runs the execute op."""

    def __init__(self, n, timeout_ms, limit, silent=False):
        self.n = n
        self.timeout_ms = timeout_ms
        self.limit = limit
        self.silent = silent
        self.sub = Subscriber()
        self.kernel = None
        self.output = 0
        self.truncated = False
        self.timed_out = False
        self.interrupted = False
        self.abandoned = False      # its client went away: interrupted so that the context is free
        self.hard_killed = False
        self.deadline = None        # monotonic time of the SIGINT
        self.hard_deadline = None   # monotonic time of the SIGKILL
        self.first_error = None
        self.finished = False

    def deliver(self, kind, data):
        if self.truncated or self.finished:
            return
        if self.limit:
            room = self.limit - self.output
            if len(data) > room:
                data = data[:room]
                self._truncate()
        self.output += len(data)
        if data:
            self.sub.put((kind, data), len(data))

    def deliver_event(self, event):
        if self.truncated or self.finished:
            return
        if event["ev"] == "error" and self.first_error is None:
            self.first_error = event
        payload = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")
        if self.limit and self.output + len(payload) > self.limit:
            self._truncate()
            return
        self.output += len(payload)
        self.sub.put(("json", payload), len(payload))

    def abandon(self):
        """The client left: like E2B's server, interrupt the cell rather than let it hold the context."""
        self.abandoned = True
        if self.kernel is not None and not self.finished:
            self.kernel.interrupt(self)

    def _truncate(self):
        self.truncated = True
        if self.kernel is not None:
            self.kernel.interrupt(self)

    def kernel_done(self, status):
        if self.timed_out:
            outcome = "timeout"
            reason = ("interrupted (KeyboardInterrupt) after exceeding the %s timeout; the context's state is kept"
                      % describe_duration(self.timeout_ms))
        elif self.truncated:
            outcome = "output_truncated"
            reason = ("its output exceeded the limit of %s: the rest was discarded and the cell interrupted;"
                      " the context's state is kept" % describe_bytes(self.limit))
        elif status == "error":
            outcome = "error"
            err = self.first_error or {}
            reason = "the cell raised %s: %s" % (err.get("name", "an exception"), err.get("value", "")[:300])
        else:
            outcome, reason = "ok", "the cell completed"
        self.finish(outcome, reason, False)

    def finish(self, outcome, reason, state_lost):
        if self.finished:
            return
        self.finished = True
        self.sub.put(("done", (outcome, reason, state_lost)))


class Kernel:
    """One kernel process of a context, and the pump thread that reads its three pipes."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.popen = None
        self.pid = 0
        self.status = None            # raw wait status, set by the reaper
        self.lock = threading.Lock()  # guards cell, gone, intent
        self.cell = None
        self.gone = False             # death handled: no new cell, no more wakes
        self.intent = None            # why the agent killed it: restart, delete, timeout, truncated, start, protocol
        self.intent_detail = ""
        self.ready = threading.Event()   # set on the ready event, or on death
        self.ready_ok = False
        self.ipython = None
        self.dead = threading.Event()
        self.reported = False         # its death was reported in a cell's end
        self.death_reason = None
        self.wake = -1
        self.req_fd = -1
        self.ev_fd = -1
        self.stderr_tail = b""
        self.oom_before = None
        self.ev_closed_at = None
        self.preload = ctx.preload

    # -- start ------------------------------------------------------------------------------

    def start(self):
        ctx = self.ctx
        env = {"PATH": BASE_PATH, "HOME": ctx.home, "USER": ctx.user, "LOGNAME": ctx.user, "SHELL": "/bin/bash",
               "LANG": "C.UTF-8", "PWD": ctx.cwd, "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1", "PAGER": "cat"}
        env.update(egress_env())
        env.update(ctx.envs)
        children.start_reaper()
        req_r, req_w = os.pipe()
        ev_r, ev_w = os.pipe()
        self.req_fd, self.ev_fd = req_w, ev_r
        self.wake = os.eventfd(0, os.EFD_CLOEXEC)
        argv = [sys.executable or "/usr/bin/python3", kernel_path(), "--requests", str(req_r), "--events", str(ev_w)]
        if self.preload:
            argv += ["--preload", ",".join(self.preload)]
        if ctx.language != "python":
            argv += ["--language", ctx.language]
        ids = {"user": ctx.uid, "group": ctx.gid, "extra_groups": []} if settings.SWITCH_USER else {}
        preexec = children.preexec_for(ctx.uid)  # root's kernel: below the agent's process limit
        if preexec is not None:
            ids["preexec_fn"] = preexec
        self.oom_before = oom_kills()
        try:
            with LOCK:
                self.popen = subprocess.Popen(
                    argv, bufsize=0, cwd=ctx.cwd, env=env, close_fds=True, pass_fds=(req_r, ev_w),
                    start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, **ids)
                self.pid = self.popen.pid
                KERNELS[self.pid] = self
        except (OSError, ValueError, subprocess.SubprocessError) as e:
            for fd in (req_w, ev_r, self.wake):
                os.close(fd)
            self.gone = True
            self.dead.set()
            self.ready.set()
            if isinstance(e, OSError) and e.errno == 11:  # EAGAIN: the user's processes are at their limit
                raise children.spawn_refused("the python interpreter of context %s" % ctx.id, ctx.user)
            if isinstance(e, OSError):
                raise os_error(e, "cannot start the python interpreter of context %s" % ctx.id)
            raise AgentError("internal", "cannot start the python interpreter of context %s: %s" % (ctx.id, e))
        finally:
            os.close(req_r)
            os.close(ev_w)
        children.CHILD_EVENT.set()
        set_oom_score_adj(self.pid)
        threading.Thread(target=self.pump, name="kernel-%d" % self.pid, daemon=True).start()

    def wait_ready(self):
        self.ready.wait(KERNEL_START_TIMEOUT + 5)
        if not self.ready_ok or self.dead.is_set():
            raise AgentError("internal", "the python interpreter of context %s did not start: %s" % (
                self.ctx.id, self.death_reason or "no ready signal"))

    # -- signals (under LOCK, only while unreaped: a pid is never signalled after reuse) -----

    def _signal_group(self, signo):
        with LOCK:
            if self.status is not None or not self.pid or self.gone:
                return
            signal_group(self.pid, signo)

    def interrupt(self, cell):
        if cell.interrupted:
            return
        cell.interrupted = True
        cell.hard_deadline = time.monotonic() + INTERRUPT_GRACE
        self._signal_group(2)
        self._kick()

    def kill(self, intent, detail=""):
        with self.lock:
            if self.intent is None:
                self.intent = intent
                self.intent_detail = detail
        self._signal_group(9)

    def exited(self, status):
        """Called by the reaper, under LOCK, once the kernel has been reaped."""
        self.status = status
        wake(self.wake)

    def _kick(self):
        with self.lock:
            if not self.gone:
                try:
                    os.eventfd_write(self.wake, 1)
                except OSError:
                    pass

    # -- cells (connection threads) --------------------------------------------------------

    def begin(self, cell, request):
        """Hands a cell to the kernel; the pump ends it (done event or death)."""
        cell.kernel = self
        payload = json.dumps(request, separators=(",", ":")).encode("ascii")
        with self.lock:
            if self.gone:
                cell.finish("killed", "the context's interpreter died just before the cell started: %s"
                            % (self.death_reason or "unknown"), True)
                return
            self.cell = cell
            if cell.timeout_ms > 0:
                cell.deadline = time.monotonic() + cell.timeout_ms / 1000.0
            self.oom_before = oom_kills()
            os.eventfd_write(self.wake, 1)  # the pump takes the new deadline
        frame = memoryview(len(payload).to_bytes(4, "big") + payload)
        deadline = time.monotonic() + KERNEL_REQUEST_TIMEOUT
        try:
            while frame:
                try:
                    n = os.write(self.req_fd, frame)
                    frame = frame[n:]
                except BlockingIOError:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        self.kill("protocol", "it did not read its request within %d s" % KERNEL_REQUEST_TIMEOUT)
                        return
                    poller = select.poll()
                    poller.register(self.req_fd, select.POLLOUT)
                    poller.poll(min(left, 1.0) * 1000)
        except OSError:
            self.kill("protocol", "its request pipe is closed")

    # -- the pump thread -------------------------------------------------------------------

    def pump(self):
        try:
            self._pump()
        except Exception as e:
            log("kernel pump of %d failed: %r" % (self.pid, e))
            self.kill("protocol", "the agent failed reading it: %r" % e)
            self._died()

    def _pump(self):
        out = self.popen.stdout.fileno()
        err = self.popen.stderr.fileno()
        os.set_blocking(self.req_fd, False)
        for fd in (out, err, self.ev_fd):
            os.set_blocking(fd, False)
        kinds = {out: OUT, err: ERR}
        std = [out, err]
        poller = select.poll()
        for fd in (out, err, self.ev_fd, self.wake):
            poller.register(fd, select.POLLIN)
        buf = bytearray()
        ev_open = True
        ready_deadline = time.monotonic() + KERNEL_START_TIMEOUT
        exited = False
        while not exited:
            ready = poller.poll(self._timers(ready_deadline))
            fds = {fd for fd, _ in ready}
            for fd in list(std):
                if fd in fds and not self._read_std(fd, kinds[fd]):
                    poller.unregister(fd)
                    std.remove(fd)
            if ev_open and self.ev_fd in fds:
                for fd in list(std):  # output written before the event goes first
                    while self._read_std(fd, kinds[fd], drain=True) is True:
                        pass
                ev_open = self._read_events(buf)
                if not ev_open:
                    poller.unregister(self.ev_fd)
                    # Usually the kernel is exiting and the reaper is about to say so; if it still
                    # runs a moment later, it closed the channel itself (see _timers).
                    self.ev_closed_at = time.monotonic()
            if self.wake in fds:
                try:
                    os.eventfd_read(self.wake)
                except OSError:
                    pass
                exited = self.status is not None
        # Exited: take what it left in the pipes (descendants may hold them open: at most 100 ms).
        deadline = time.monotonic() + DRAIN_AFTER_EXIT
        while time.monotonic() < deadline:
            progressed = False
            for fd in list(std):
                r = self._read_std(fd, kinds[fd], drain=True)
                if r is False:
                    poller.unregister(fd)
                    std.remove(fd)
                elif r:
                    progressed = True
            if ev_open:
                try:
                    data = os.read(self.ev_fd, 1 << 20)
                except BlockingIOError:
                    data = None
                if data:
                    progressed = True
                    buf.extend(data)
                    self._parse_events(buf)
                elif data == b"":
                    ev_open = False
            if not progressed:
                break
        self._died()
        # Keep discarding what background descendants write, so they don't die of SIGPIPE.
        for fd in std:
            os.set_blocking(fd, True)
        while std:
            for fd, _ in poller.poll():
                if fd in std and not os.read(fd, PIPE_READ):
                    poller.unregister(fd)
                    std.remove(fd)
        self.popen.stdout.close()
        self.popen.stderr.close()

    def _read_std(self, fd, kind, drain=False):
        """Reads one chunk; True if data came, False at end of file, None if nothing was there."""
        try:
            data = os.read(fd, PIPE_READ)
        except BlockingIOError:
            return None
        if not data:
            return False
        with self.lock:
            cell = self.cell
        if cell is not None:
            cell.deliver(kind, data)
        elif kind == ERR:
            self.stderr_tail = (self.stderr_tail + data)[-STDERR_TAIL:]
        return True

    def _read_events(self, buf):
        while True:
            try:
                data = os.read(self.ev_fd, 1 << 20)
            except BlockingIOError:
                return True
            if not data:
                return False
            buf.extend(data)
            self._parse_events(buf)
            if len(data) < (1 << 20):
                return True

    def _parse_events(self, buf):
        while len(buf) >= 4:
            n = int.from_bytes(buf[:4], "big")
            if n > KERNEL_EVENT_MAX:
                del buf[:]
                self.kill("protocol", "it sent an event of %d bytes (the limit is %s)" % (n, describe_bytes(KERNEL_EVENT_MAX)))
                return
            if len(buf) < 4 + n:
                return
            payload = bytes(buf[4:4 + n])
            del buf[:4 + n]
            try:
                event = json.loads(payload)
            except (ValueError, RecursionError):
                self.kill("protocol", "it sent an event that is not JSON")
                return
            if isinstance(event, dict):
                self._on_event(event)

    def _on_event(self, event):
        ev = event.get("ev")
        if ev == "ready":
            self.ipython = event.get("ipython") is True
            self.ready_ok = True
            self.ready.set()
            if event.get("warning"):
                log("context %s: %s" % (self.ctx.id, str(event["warning"])[:500]))
            self._log_preload_failures(event.get("preloadFailed"))
            return
        with self.lock:
            cell = self.cell
            if ev == "done":
                self.cell = None
        if cell is None:
            return
        if ev == "done":
            cell.kernel_done("error" if event.get("status") == "error" else "ok")
        elif ev == "result":
            data = event.get("data")
            if isinstance(data, dict):
                data = {k: v for k, v in data.items() if isinstance(k, str) and 0 < len(k) <= 256 and v is not None}
                if data:
                    cell.deliver_event({"ev": "result", "data": data, "isMainResult": event.get("isMainResult") is True})
        elif ev == "error":
            cell.deliver_event({"ev": "error", "name": str(event.get("name", "Error"))[:256],
                                "value": str(event.get("value", "")), "traceback": str(event.get("traceback", ""))})

    def _log_preload_failures(self, failed):
        """One line per agent for each module that could not be preloaded (not once per kernel)."""
        if not isinstance(failed, list) or not self.preload:
            return
        lines = []
        for item in failed[:PRELOAD_MAX_MODULES]:
            if not (isinstance(item, list) and len(item) == 2 and item[0] in self.preload):
                continue
            with LOCK:
                if item[0] in _PRELOAD_LOGGED:
                    continue
                _PRELOAD_LOGGED.add(item[0])
            lines.append("%s (%s)" % (item[0], str(item[1])[:200].replace("\n", " ")))
        if lines:
            log("context %s: could not preload %s; ignored" % (self.ctx.id, "; ".join(lines)))

    def _timers(self, ready_deadline):
        """Fires due deadlines; returns the poll timeout in ms until the next one (-1: none)."""
        now = time.monotonic()
        wait = None
        if self.ev_closed_at is not None and self.status is None:
            left = self.ev_closed_at + EVENTS_CLOSED_GRACE - now
            if left <= 0:
                self.kill("protocol", "it closed its event channel")
            else:
                wait = left
        if not self.ready.is_set():
            if now >= ready_deadline:
                self.kill("start", "it was not ready within %d s" % KERNEL_START_TIMEOUT)
            else:
                wait = ready_deadline - now
        with self.lock:
            cell = self.cell
        if cell is not None:
            if cell.deadline is not None and not cell.interrupted:
                if now >= cell.deadline:
                    cell.timed_out = True
                    self.interrupt(cell)
                else:
                    wait = cell.deadline - now if wait is None else min(wait, cell.deadline - now)
            if cell.hard_deadline is not None and not cell.hard_killed:
                if now >= cell.hard_deadline:
                    cell.hard_killed = True
                    self.kill("timeout" if cell.timed_out else "abandoned" if cell.abandoned else "truncated")
                else:
                    left = cell.hard_deadline - now
                    wait = left if wait is None else min(wait, left)
        return -1 if wait is None else int(wait * 1000) + 1

    def _describe_death(self):
        status = self.status
        if status is None:
            how = "was lost track of"
        elif os.WIFSIGNALED(status):
            how = "was killed by %s" % signal_name(os.WTERMSIG(status))
        else:
            how = "exited with code %d" % os.WEXITSTATUS(status)
        intent, detail = self.intent, self.intent_detail
        lost = "its interpreter was killed and restarted, and the context's state (variables, imports) was lost"
        if intent == "timeout":
            return "timeout", "the cell did not stop within %d s of the interrupt sent at its timeout: %s" % (
                INTERRUPT_GRACE, lost)
        if intent == "truncated":
            return "output_truncated", ("its output exceeded the limit and the cell did not stop within %d s of the"
                                        " interrupt: %s" % (INTERRUPT_GRACE, lost))
        if intent == "abandoned":
            return "killed", ("its client went away and the cell did not stop within %d s of the interrupt: %s"
                              % (INTERRUPT_GRACE, lost))
        if intent == "restart":
            return "killed", "the context was restarted through the API while the cell ran: its state was lost"
        if intent == "delete":
            return "killed", "the context was deleted while the cell ran"
        if intent in ("protocol", "start"):
            return "killed", "the interpreter was killed because %s; the context was restarted and its state lost" % detail
        oom = False
        if status is not None and os.WIFSIGNALED(status) and os.WTERMSIG(status) == 9 and self.oom_before is not None:
            after = oom_kills()
            oom = after is not None and after > self.oom_before
        if oom:
            return "killed", ("the interpreter was killed by the kernel's out-of-memory killer (the sandbox ran out"
                              " of memory); the context was restarted and its state lost")
        return "killed", "the interpreter %s (a crash, os._exit or a signal); the context was restarted and its state lost" % how

    def _died(self):
        outcome, reason = self._describe_death()
        if not self.ready_ok:
            tail = self.stderr_tail.decode("utf-8", "replace").strip()
            reason = "it %s during start-up%s" % (
                "was killed" if self.intent else "exited",
                (": " + self.intent_detail) if self.intent_detail else "")
            if tail:
                reason += "; its stderr ended with: " + tail[-1000:]
        with self.lock:
            cell = self.cell
            self.cell = None
            self.gone = True
            self.death_reason = reason
            self.reported = cell is not None
            try:
                os.close(self.wake)
            except OSError:
                pass
        with LOCK:
            KERNELS.pop(self.pid, None)
        for fd in (self.req_fd, self.ev_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.popen is not None:
            self.popen.returncode = -1  # so that Popen never waits for it itself
        self.dead.set()
        self.ready.set()
        if cell is not None:
            cell.finish(outcome, reason, True)
        ctx = self.ctx
        if self.ready_ok and self.intent not in ("restart", "delete") and not ctx.deleted:
            threading.Thread(target=_restart_quietly, args=(ctx,), name="restart-" + ctx.id[:8], daemon=True).start()


def _restart_quietly(ctx):
    """A dead kernel is replaced at once, so that the context's next cell finds one ready."""
    try:
        ctx.ensure_kernel()
    except AgentError as e:
        log("cannot restart context %s: %s" % (ctx.id, e.message))
