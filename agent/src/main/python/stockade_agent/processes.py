"""Processes: the exec, attach, ps, input, close_stdin, resize and signal operations. Each process
leads its own process group and has a pump thread that reads its stdout and stderr, counts them
against its output limit and hands them to the attached clients; its end event (exit code, signal,
outcome, reason) is kept for a while after it ended so that a client can still attach.

A process started with `pty` runs on a pseudo-terminal instead of pipes (E2B's terminals): it leads
a new session whose controlling terminal is the pty's slave; the pump reads the master, input is
written to the master, resize sets the master's window size (the kernel sends SIGWINCH to the
foreground job) and signals go to every process of the session. While no client is attached, the
last PTY_BACKLOG bytes of its output are kept for the next one that attaches."""

import heapq
import json
import os
import select
import signal
import stat
import subprocess
import threading
import time
import _thread

from . import children, settings
from .children import FINISHED, LOCK, RUNNING, PIPE_READ, DRAIN_AFTER_EXIT
from .children import describe_bytes, describe_duration, oom_kills, set_oom_score_adj, signal_group, signal_name, wake
from .credentials import popen_as
from .egress import egress_env
from .terminals import open_terminal, pty_size, session_members, set_size, take_terminal
from .protocol import (AgentError, ProtocolError, os_error, DATA_TIMEOUT, ERR, IDLE_CHECK, ITEMS_BUDGET, OUT,
                       PTY, STREAM_SEND_TIMEOUT, Subscriber, peer_closed, receiving, req_int, req_pid, req_str,
                       resolve, send_frame, send_items, send_json)
from .settings import BASE_PATH, log, lookup_user

FINISHED_KEEP = 60.0             # an ended process can still be attached to for this long
FINISHED_MAX = 512
MAX_TERMINALS = 32               # running pty processes per sandbox (each holds a thread and a pty pair)
PTY_BACKLOG = 64 * 1024          # terminal output kept while no client is attached
_DEADLINES = None                # the Deadlines, created with the first timeout
_DEADLINES_LOCK = _thread.allocate_lock()


class Proc:
    def __init__(self, argv, env, request_env, cwd, user, tag, timeout_ms, limit, pty=None):
        self.argv = argv
        self.env = env
        self.request_env = request_env
        self.cwd = cwd
        self.user = user
        self.tag = tag
        self.timeout_ms = timeout_ms
        self.limit = limit
        self.popen = None
        self.pid = 0
        self.started = time.time()
        self.subscribers = []
        self.status = None          # raw wait status, set by the reaper
        self.end = None             # the end event, set by the pump
        self.ended_at = 0.0
        self.sent_signals = set()   # signals delivered through the signal op
        self.timed_out = False
        self.truncated = False
        self.output = 0
        self.oom_before = None
        self.wake = -1              # eventfd the reaper writes when the process has exited
        self.stdin_fd = -1
        self.stdin_lock = threading.Lock()
        self.stdin_closing = False
        self.pty = pty              # (cols, rows) asked for a terminal, else None
        self.master = -1            # the pty's master: read by the pump, written by input (stdin_fd)
        self.backlog = bytearray()  # terminal output while nobody is attached, under LOCK

    def info(self):
        return {"pid": self.pid, "argv": self.argv, "env": self.request_env, "cwd": self.cwd,
                "user": self.user, "tag": self.tag, "startedMillis": int(self.started * 1000)}

    def kill_group(self, signo):
        signal_group(self.pid, signo)
        if self.pty is not None:
            # An interactive shell puts each job in a process group of its own: reach them all.
            for pid in session_members(self.pid):
                try:
                    os.kill(pid, signo)
                except OSError:
                    pass

    def exited(self, status):
        """Called by the reaper, under LOCK, once the process has been reaped."""
        self.status = status
        wake(self.wake)

    # -- the pump thread --------------------------------------------------------------------

    def pump(self):
        try:
            self._pump()
        except Exception as e:  # never leave clients hanging
            log("pump of %d failed: %r" % (self.pid, e))
            self._finish()

    def _pump(self):
        if self.master >= 0:
            kinds = {self.master: PTY}
        else:
            kinds = {self.popen.stdout.fileno(): OUT, self.popen.stderr.fileno(): ERR}
        poller = select.poll()
        for fd in kinds:
            poller.register(fd, select.POLLIN)
        poller.register(self.wake, select.POLLIN)
        open_fds = len(kinds)
        exited = False
        while not exited:
            for fd, _ in poller.poll():
                if fd == self.wake:
                    exited = True
                elif not self._take(poller, fd, kinds[fd]):
                    open_fds -= 1
        # The process has exited: everything it wrote is already in the pipes. Take that, then
        # end; descendants that keep the pipes open don't hold the end event back.
        deadline = time.monotonic() + DRAIN_AFTER_EXIT
        while open_fds and time.monotonic() < deadline:
            ready = [fd for fd, _ in poller.poll(0) if fd != self.wake]
            if not ready:
                break
            for fd in ready:
                if not self._take(poller, fd, kinds[fd]):
                    open_fds -= 1
        self._finish()
        poller.unregister(self.wake)
        os.close(self.wake)
        if self.master >= 0:
            # Closing the master hangs the terminal up: what is left of its session gets SIGHUP.
            os.close(self.master)
            self.master = -1
            return
        # Keep reading (and discarding) what background descendants still write, so that they
        # don't die of SIGPIPE; the thread ends when the last of them closes the pipes.
        while open_fds:
            for fd, _ in poller.poll():
                if not os.read(fd, PIPE_READ):
                    poller.unregister(fd)
                    open_fds -= 1
        self.popen.stdout.close()
        self.popen.stderr.close()

    def _take(self, poller, fd, kind):
        """Delivers one read of the pipe fd; at its end, stops polling it and returns False."""
        try:
            data = os.read(fd, PIPE_READ)
        except BlockingIOError:
            return True     # the pty's master is non-blocking (for input): a spurious wake-up
        except OSError:
            data = b""      # EIO: every slave descriptor of the pty is closed
        if data:
            self._deliver(kind, data)
            return True
        poller.unregister(fd)
        return False

    def _deliver(self, kind, data):
        if self.truncated:
            return
        if self.limit:
            room = self.limit - self.output
            if len(data) > room:
                data = data[:room]
                self.truncated = True
                with LOCK:
                    if self.status is None:  # once reaped, the pid may belong to someone else
                        self.kill_group(9)
        self.output += len(data)
        if not data:
            return
        with LOCK:
            subscribers = list(self.subscribers)
            if not subscribers and self.pty is not None:
                self.backlog += data
                del self.backlog[:-PTY_BACKLOG]
        for sub in subscribers:
            sub.put((kind, data), len(data))

    def _finish(self):
        status = self.status
        signo = None
        if status is None:
            exit_code = -1
        elif os.WIFSIGNALED(status):
            signo = os.WTERMSIG(status)
            exit_code = -1
        else:
            exit_code = os.WEXITSTATUS(status)
        killed_hard = signo == 9 or exit_code == 128 + 9
        oom = False
        if killed_hard and self.oom_before is not None and not self.timed_out and not self.truncated:
            after = oom_kills()
            oom = after is not None and after > self.oom_before
        name = signal_name(signo) if signo else None
        if status is None:
            outcome, reason = "signal", "the agent lost track of the process"
        elif self.timed_out:
            outcome = "timeout"
            reason = "killed after exceeding the %s command timeout" % describe_duration(self.timeout_ms)
        elif self.truncated:
            outcome = "output_truncated"
            reason = "killed after its output exceeded the limit of %s" % describe_bytes(self.limit)
        elif oom:
            outcome = "oom_killed"
            reason = "killed by the kernel's out-of-memory killer: the sandbox ran out of memory"
        elif signo is not None and signo in self.sent_signals:
            outcome = "killed"
            reason = "killed by %s sent through the API" % name
        elif signo is not None:
            outcome = "signal"
            reason = "terminated by signal %s" % name
        else:
            outcome = "exited"
            reason = "exited with code %d" % exit_code
        end = {"ev": "end", "exitCode": exit_code, "signal": name, "outcome": outcome, "reason": reason}
        self.stdin_closing = True  # a writer waiting on a full pipe lets go within 200 ms
        with self.stdin_lock:
            self._close_stdin()
        with LOCK:
            self.end = end
            self.ended_at = time.monotonic()
            subscribers = self.subscribers
            self.subscribers = []
            RUNNING.pop(self.pid, None)
            FINISHED.pop(self.pid, None)
            FINISHED[self.pid] = self
            prune_finished()
            if self.pty is not None:  # bound what ended terminals keep for a late attach
                kept = [p for p in FINISHED.values() if p.backlog]
                for p in kept[:-MAX_TERMINALS]:
                    p.backlog.clear()
        if self.popen is not None:
            self.popen.returncode = exit_code  # so that Popen never waits for it itself
        for sub in subscribers:
            sub.put(("end", end))

    def _close_stdin(self):
        if self.stdin_fd >= 0 and self.master >= 0:
            self.stdin_fd = -1  # the master is the pump's to close
        elif self.stdin_fd >= 0:
            try:
                self.popen.stdin.close()
            except OSError:
                pass
            self.stdin_fd = -1


def prune_finished():
    now = time.monotonic()
    while FINISHED:
        pid = next(iter(FINISHED))
        if len(FINISHED) > FINISHED_MAX or now - FINISHED[pid].ended_at > FINISHED_KEEP:
            del FINISHED[pid]
        else:
            break


class Deadlines:
    """Kills process groups whose command timeout has passed. One thread for all processes."""

    def __init__(self):
        self.cond = threading.Condition(threading.Lock())
        self.heap = []
        self.thread = None

    def add(self, when, proc):
        with self.cond:
            heapq.heappush(self.heap, (when, proc.pid, proc))
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="deadlines", daemon=True)
                self.thread.start()
            self.cond.notify()

    def _run(self):
        while True:
            with self.cond:
                while not self.heap:
                    self.cond.wait()
                when, _, proc = self.heap[0]
                delay = when - time.monotonic()
                if delay > 0:
                    self.cond.wait(delay)
                    continue
                heapq.heappop(self.heap)
            with LOCK:
                if proc.end is None and proc.status is None:
                    proc.timed_out = True
                    proc.kill_group(9)


def deadlines():
    global _DEADLINES
    with _DEADLINES_LOCK:
        if _DEADLINES is None:
            _DEADLINES = Deadlines()
        return _DEADLINES


def build_env(req, user, home, cwd):
    extra = req.get("env") or {}
    if not isinstance(extra, dict):
        raise AgentError("invalid_argument", "env must be an object of strings")
    env = {"PATH": BASE_PATH, "HOME": home, "USER": user, "LOGNAME": user, "SHELL": "/bin/bash",
           "LANG": "C.UTF-8", "PWD": cwd}
    env.update(egress_env())
    for key, value in extra.items():
        if not key or "=" in key or "\0" in key:
            raise AgentError("invalid_argument", "environment variable name %r is not valid" % key)
        if not isinstance(value, str) or "\0" in value:
            raise AgentError("invalid_argument", "environment variable %s must be a string without NUL" % key)
        env[key] = value
    return env, extra


def spawn(req, subscriber):
    argv = req.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise AgentError("invalid_argument", "argv must be a non-empty list of strings")
    if any("\0" in a for a in argv):
        raise AgentError("invalid_argument", "argv must not contain NUL bytes")
    if not argv[0]:
        raise AgentError("invalid_argument", "argv[0] must not be empty")
    user, uid, gid, home = lookup_user(req)
    cwd = req.get("cwd")
    cwd = home if cwd is None or cwd == "" else resolve(cwd, home, "cwd")
    try:
        st = os.stat(cwd)
    except FileNotFoundError:
        raise AgentError("invalid_argument", "cwd '%s' does not exist" % cwd)
    except OSError as e:
        raise AgentError("invalid_argument", "cwd '%s' is not usable: %s" % (cwd, e.strerror))
    if not stat.S_ISDIR(st.st_mode):
        raise AgentError("invalid_argument", "cwd '%s' is not a directory" % cwd)
    env, request_env = build_env(req, user, home, cwd)
    timeout_ms = req_int(req, "timeoutMillis", 0)
    limit = req_int(req, "outputLimitBytes", 0)
    tag = req.get("tag")
    if tag is not None and not isinstance(tag, str):
        raise AgentError("invalid_argument", "tag must be a string")
    want_stdin = req.get("stdin", False)
    if not isinstance(want_stdin, bool):
        raise AgentError("invalid_argument", "stdin must be a boolean")
    size = pty_size(req.get("pty"))
    if size is not None:
        env.setdefault("TERM", "xterm-256color")

    children.start_reaper()
    proc = Proc(argv, env, request_env, cwd, user, tag, timeout_ms, limit, size)
    proc.subscribers.append(subscriber)
    proc.oom_before = oom_kills()
    options = dict(bufsize=0, cwd=cwd, env=env, close_fds=True, start_new_session=True,
                   stdin=subprocess.PIPE if want_stdin else subprocess.DEVNULL,
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    slave = -1
    if size is not None:
        slave = open_terminal(proc, size, uid, gid)
        options.update(stdin=slave, stdout=slave, stderr=slave)
    preexec = children.preexec_for(uid, take_terminal if size is not None else None)
    if preexec is not None:
        options["preexec_fn"] = preexec
    proc.wake = os.eventfd(0, os.EFD_CLOEXEC)
    try:
        with LOCK:
            if size is not None and sum(1 for p in RUNNING.values() if p.pty is not None) >= MAX_TERMINALS:
                raise AgentError("resource_exhausted", "this sandbox already runs %d terminals: kill one first"
                                 % MAX_TERMINALS)
            if settings.SWITCH_USER:
                proc.popen = popen_as(uid, gid, argv, **options)
            else:
                proc.popen = subprocess.Popen(argv, **options)
            proc.pid = proc.popen.pid
            RUNNING[proc.pid] = proc
    except OSError as e:
        close_spawn_fds(proc)
        what = e.filename if e.filename is not None else argv[0]
        if what == cwd and e.errno in (1, 13):
            raise AgentError("permission_denied", "cannot run %s: user %s may not enter cwd '%s'" % (argv[0], user, cwd))
        if e.errno == 2:
            raise AgentError("not_found", "cannot run %s: no such file or directory (PATH=%s)"
                             % (what, env.get("PATH", "")))
        if e.errno == 11:  # EAGAIN: the user's processes are at their limit (RLIMIT_NPROC)
            raise children.spawn_refused(argv[0], user)
        raise os_error(e, "cannot run %s" % what)
    except AgentError:
        close_spawn_fds(proc)
        raise
    except (ValueError, subprocess.SubprocessError) as e:
        close_spawn_fds(proc)
        raise AgentError("invalid_argument", "cannot run %s: %s" % (argv[0], e))
    finally:
        if slave >= 0:
            os.close(slave)  # the child has its copies: the master reads EIO once they are all closed
    children.CHILD_EVENT.set()
    if size is not None:
        proc.stdin_fd = proc.master
    elif want_stdin:
        proc.stdin_fd = proc.popen.stdin.fileno()
        os.set_blocking(proc.stdin_fd, False)
    set_oom_score_adj(proc.pid)
    if timeout_ms > 0:
        deadlines().add(time.monotonic() + timeout_ms / 1000.0, proc)
    _thread.start_new_thread(proc.pump, ())  # no threading.Thread: its start waits for a handshake
    return proc


def close_spawn_fds(proc):
    """Closes what spawn opened for a process that did not start."""
    os.close(proc.wake)
    if proc.master >= 0:
        os.close(proc.master)
        proc.master = -1


def op_resize(sock, req):
    pid = req_pid(req)
    size = pty_size(req.get("pty"))
    if size is None:
        raise AgentError("invalid_argument", "pty with cols and rows is required")
    proc = find_running(pid)
    if proc.pty is None:
        raise AgentError("invalid_argument", "process %d is not a terminal (it was started without pty)" % pid)
    with proc.stdin_lock:
        if proc.stdin_fd < 0:
            raise AgentError("process_not_found", "process %d has ended" % pid)
        set_size(proc.stdin_fd, size)
        proc.pty = size
    send_json(sock, {"ok": True})


def find_running(pid):
    with LOCK:
        proc = RUNNING.get(pid)
    if proc is None:
        raise AgentError("process_not_found", "no running process with pid %d" % pid)
    return proc


def serve_stream(sock, proc, sub):
    """Sends start, then the subscriber's output frames and end; runs on the connection thread.
    A terminal's output this client did not get goes back to the backlog for the next one."""
    sock.settimeout(STREAM_SEND_TIMEOUT)
    item = None
    try:
        start = {"ev": "start", "pid": proc.pid}
        if proc.pty is not None:
            start["pty"] = True
        send_json(sock, start)
        while True:
            item = sub.take(IDLE_CHECK)
            if item is None:
                if peer_closed(sock):
                    return
                continue
            kind, data = item
            if kind == "end":
                send_json(sock, data)
                return
            send_frame(sock, kind, data)
            item = None
    finally:
        with LOCK:
            if sub in proc.subscribers:
                proc.subscribers.remove(sub)
            if proc.pty is not None:
                unsent = [item] if item is not None else []
                unsent += sub.drain()
                kept = b"".join(data for kind, data in unsent if kind == PTY)
                if kept:
                    proc.backlog[:0] = kept
                    del proc.backlog[:-PTY_BACKLOG]
        sub.kill()


def op_exec(sock, req):
    sub = Subscriber()
    proc = spawn(req, sub)
    serve_stream(sock, proc, sub)


def op_attach(sock, req):
    pid = req_pid(req)
    with LOCK:
        proc = RUNNING.get(pid)
        if proc is None:
            prune_finished()
            proc = FINISHED.get(pid)
            if proc is None:
                raise AgentError("process_not_found", "no process with pid %d (or it ended over %d s ago)"
                                 % (pid, FINISHED_KEEP))
        sub = Subscriber()
        if proc.backlog:
            sub.put((PTY, bytes(proc.backlog)), len(proc.backlog))
            proc.backlog.clear()
        if proc.end is not None:
            sub.put(("end", proc.end))
        else:
            proc.subscribers.append(sub)
    serve_stream(sock, proc, sub)


def op_ps(sock, req):
    with LOCK:
        procs = [p for p in RUNNING.values() if p.end is None]
    items = []
    for p in procs:
        info = p.info()
        if len(json.dumps(info, ensure_ascii=False)) > ITEMS_BUDGET:
            info["env"] = {}
            info["argv"] = info["argv"][:1]
        items.append(info)
    send_items(sock, items)


@receiving
def op_input(sock, req, data):
    proc = find_running(req_pid(req))
    if proc.popen.stdin is None and proc.pty is None:
        raise AgentError("invalid_argument", "process %d was started without stdin" % proc.pid)
    sock.settimeout(DATA_TIMEOUT)
    for payload in data.frames():
        with proc.stdin_lock:  # per frame, so that ending the process never waits for a slow client
            write_stdin(sock, proc, payload)
    send_json(sock, {"ok": True})


def write_stdin(sock, proc, payload):
    """Writes to the process's non-blocking stdin pipe; waits while it is full, but gives up when
    stdin gets closed, the process ends or the client goes away."""
    view = memoryview(payload)
    while view:
        if proc.stdin_closing or proc.stdin_fd < 0:
            if proc.end is not None:
                raise AgentError("process_not_found", "process %d has ended" % proc.pid)
            raise AgentError("invalid_argument", "stdin of process %d is closed" % proc.pid)
        try:
            n = os.write(proc.stdin_fd, view)
            view = view[n:]
        except BlockingIOError:
            poller = select.poll()
            poller.register(proc.stdin_fd, select.POLLOUT)
            poller.poll(200)
            if peer_closed(sock):
                raise ProtocolError("client left during input")
        except BrokenPipeError:
            raise AgentError("invalid_argument", "process %d no longer reads its stdin" % proc.pid)


def op_close_stdin(sock, req):
    proc = find_running(req_pid(req))
    if proc.pty is not None:
        raise AgentError("invalid_argument", "process %d runs on a terminal, which has no stdin to close: "
                         "send ^D (0x04) as input for end-of-file" % proc.pid)
    proc.stdin_closing = True
    with proc.stdin_lock:
        proc._close_stdin()
    send_json(sock, {"ok": True})


KILL_REAP_WAIT = 2.0  # seconds a SIGKILL's answer waits for the process to be reaped


def op_signal(sock, req):
    pid = req_pid(req)
    name = req_str(req, "signal")
    signo = signal.Signals.__members__.get(name) if name.startswith("SIG") else None
    if signo is None:
        raise AgentError("invalid_argument", "unknown signal %r: use a name such as SIGTERM or SIGKILL" % name)
    with LOCK:
        proc = RUNNING.get(pid)
        if proc is None or proc.status is not None:
            raise AgentError("process_not_found", "no running process with pid %d" % pid)
        proc.sent_signals.add(int(signo))
        proc.kill_group(int(signo))
    if signo == signal.SIGKILL:
        # The SDKs' kill() promises the process is gone when it returns (E2B's tests check with
        # `kill -0 PID` at once): a killed process is a zombie until the reaper has waited for it.
        deadline = time.monotonic() + KILL_REAP_WAIT
        while proc.status is None and time.monotonic() < deadline:
            time.sleep(0.005)
    send_json(sock, {"ok": True})
