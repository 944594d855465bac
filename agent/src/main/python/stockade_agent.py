"""Stockade's in-sandbox agent: spawns and signals processes, streams their output, does file
operations. The host talks to it over a unix socket; docs/agent-protocol.md is the contract.

Runs as the container's init (PID 1) or as an ordinary process in tests:

    /usr/bin/python3 -I -S agent.py --socket /run/stockade/agent.sock
        [--home NAME=DIR]...   override a user's home directory (tests, unusual templates)
        [--no-switch-user]     run every process as the agent's own uid/gid; required when the
                               agent is not root (tests on a developer machine)
        [--oom-counter FILE]   where to read the memory cgroup's oom_kill counter, when it is not
                               at the standard places inside the sandbox (tests, no cgroup namespace)
        [--kernel PATH]        the interpreter kernel of code contexts (default: "kernel" next to
                               this program, which is how /opt/stockade is laid out)
        [--warm-default]       start the default code context right after start-up (pre-warming)
        [--preload MODULES]    comma-separated modules the default context's kernel imports
                               before its first cell (e.g. numpy,pandas,matplotlib.pyplot)
        [--egress PATH]        the host's egress proxy socket: start the relay ("relay" next to this
                               program) on loopback and point every process's HTTP(S)_PROXY at it
        [--egress-port N]      the relay's loopback port (default 49990)

Standard library only, and only builtin modules before the socket listens: json, subprocess and
friends are imported by a warm-up thread afterwards, because start-up is on the create path.
The egress relay, if any, is spawned by its own supervisor thread, so the socket never waits for it.

Threads: the main thread accepts; one thread per connection runs one request; one pump thread
per process reads its stdout/stderr and delivers the end event; one reaper thread waits for
every child (as PID 1 it also reaps orphans); one deadline thread kills processes that time out;
with --egress, one supervisor thread keeps the relay running.
"""

import os
import sys
import select
import _socket
import _signal
import _thread

VERSION = "0.1.0"
PROTOCOL = 1

MAX_FRAME = (1 << 20) + 1        # type byte + 1 MiB payload
CHUNK = 1 << 20                  # file data frames
PIPE_READ = 1 << 16              # one read from a process pipe
REQUEST_TIMEOUT = 60.0           # waiting for the request frame
DATA_TIMEOUT = 300.0             # waiting for / sending one data frame of a file or input op
STREAM_SEND_TIMEOUT = 60.0       # a stream client that reads nothing for this long is dropped
SUBSCRIBER_BUFFER = 1 << 20      # output buffered per attached client before the pump waits
IDLE_CHECK = 2.0                 # how often an idle stream checks whether its client left
FINISHED_KEEP = 60.0             # an ended process can still be attached to for this long
FINISHED_MAX = 512
DRAIN_AFTER_EXIT = 0.1           # read what the exited process left in its pipes for at most this
LIST_LIMIT_MAX = 1_000_000
ITEMS_BUDGET = 512 * 1024        # bytes of JSON per item frame of list/ps answers

BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# name -> (uid, gid, home); the sandbox's fixed accounts (E2B's convention).
USERS = {"user": (1000, 1000, "/home/user"), "root": (0, 0, "/root")}
SWITCH_USER = True
OOM_COUNTER_FILES = ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control")

# errno -> error code of the protocol (see docs/agent-protocol.md)
_ERRNO_CODES = {
    2: "not_found",            # ENOENT
    17: "already_exists",      # EEXIST
    1: "permission_denied",    # EPERM
    13: "permission_denied",   # EACCES
    30: "permission_denied",   # EROFS
    20: "not_a_directory",     # ENOTDIR
    21: "is_a_directory",      # EISDIR
    28: "no_space",            # ENOSPC
    11: "resource_exhausted",  # EAGAIN: the pids limit (fork) or another sandbox limit
    12: "resource_exhausted",  # ENOMEM
    122: "no_space",           # EDQUOT
    27: "no_space",            # EFBIG
    22: "invalid_argument",    # EINVAL
    8: "invalid_argument",     # ENOEXEC (not an executable format)
    36: "invalid_argument",    # ENAMETOOLONG
    40: "invalid_argument",    # ELOOP
    39: "already_exists",      # ENOTEMPTY (moving onto a non-empty directory)
    3: "process_not_found",    # ESRCH
}


class _Lazy:
    """A module imported on first use, so that start-up pays only for what it needs."""

    def __init__(self, name):
        self._name = name
        self._module = None

    def __getattr__(self, attr):
        module = self._module
        if module is None:
            module = self._module = __import__(self._name)
        return getattr(module, attr)


threading = _Lazy("threading")
json = _Lazy("json")
subprocess = _Lazy("subprocess")
signal = _Lazy("signal")
stat = _Lazy("stat")
pwd = _Lazy("pwd")
grp = _Lazy("grp")
shutil = _Lazy("shutil")
time = _Lazy("time")
heapq = _Lazy("heapq")
collections = _Lazy("collections")
ctypes = _Lazy("ctypes")


def log(message):
    try:
        os.write(2, ("stockade-agent[%d]: %s\n" % (os.getpid(), message)).encode("utf-8", "replace"))
    except OSError:
        pass


class AgentError(Exception):
    """An error answered to the client as {"error": {"code", "message"}}."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class ProtocolError(Exception):
    """The peer broke the framing; the connection is closed."""


def wake(fd):
    """Wakes the thread waiting on eventfd fd (closed meanwhile: nobody waits any more)."""
    try:
        os.eventfd_write(fd, 1)
    except OSError:
        pass


def signal_group(pid, signo):
    """Signals the process group led by pid (every command leads its own), or the process alone."""
    try:
        os.killpg(pid, signo)
    except ProcessLookupError:
        try:
            os.kill(pid, signo)
        except ProcessLookupError:
            pass
    except PermissionError:
        pass


def os_error(err, what):
    code = _ERRNO_CODES.get(err.errno, "internal")
    reason = err.strerror or str(err)
    return AgentError(code, "%s: %s" % (what, reason))


# ---------------------------------------------------------------------------------------------
# Framing: 4-byte big-endian length N, then N bytes = type byte + payload.

def recv_exact(sock, n):
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise EOFError("connection closed")
        got += k
    return buf


def read_frame(sock):
    """Returns (type, memoryview payload). Raises EOFError at a clean end between frames."""
    header = recv_exact(sock, 4)
    n = int.from_bytes(header, "big")
    if n < 1 or n > MAX_FRAME:
        raise ProtocolError("frame length %d outside 1..%d" % (n, MAX_FRAME))
    try:
        body = recv_exact(sock, n)
    except EOFError:
        raise ProtocolError("connection closed inside a frame")
    return body[0], memoryview(body)[1:]


def send_frame(sock, kind, payload=b""):
    n = len(payload) + 1
    sock.sendall(n.to_bytes(4, "big") + bytes((kind,)) + payload)


def send_json(sock, obj):
    # Names that are not valid UTF-8 (surrogate-escaped by os) are sent with '?' in their place.
    data = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")
    if len(data) + 1 > MAX_FRAME:
        raise AgentError("internal", "answer of %d bytes does not fit in a frame" % len(data))
    send_frame(sock, J, data)


def send_items(sock, items):
    """Sends a list as {"items": [...]} frames of bounded size, then {"done": true}."""
    batch = []
    size = 0
    for item in items:
        encoded = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
        if size + len(encoded) > ITEMS_BUDGET and batch:
            send_json(sock, {"items": batch})
            batch = []
            size = 0
        batch.append(item)
        size += len(encoded) + 1
    if batch:
        send_json(sock, {"items": batch})
    send_json(sock, {"done": True})


J = ord("J")
OUT = ord("1")
ERR = ord("2")
DATA = ord("B")


class DataIn:
    """The 'B' frames a client sends after its request (write, input)."""

    def __init__(self, sock):
        self.sock = sock
        self.done = False

    def frames(self):
        """Yields the payloads until the zero-length frame."""
        while not self.done:
            try:
                kind, payload = read_frame(self.sock)
            except EOFError:
                raise ProtocolError("connection closed before the end-of-data frame")
            if kind != DATA:
                raise ProtocolError("expected a data frame, got type %r" % chr(kind))
            if len(payload) == 0:
                self.done = True
                return
            yield payload

    def drain(self):
        """Discards the rest, so that a client still sending can finish and read our answer."""
        try:
            for _ in self.frames():
                pass
        except (OSError, EOFError, ProtocolError):
            pass


def receiving(op):
    """For ops that take data: an error is answered at once, then the data is drained."""

    def run(sock, req):
        data = DataIn(sock)
        try:
            op(sock, req, data)
        except AgentError as e:
            send_json(sock, {"error": {"code": e.code, "message": e.message}})
            data.drain()

    return run


def peer_closed(sock):
    """True when the client has closed its end (checked without consuming anything or waiting).

    The socket is switched to non-blocking for the peek: with a timeout set, Python polls for
    readability for the whole timeout before recv, whatever MSG_DONTWAIT says, so an idle stream
    would stall here (and then count the timeout as a departed client)."""
    timeout = sock.gettimeout()
    sock.settimeout(0.0)
    try:
        return sock.recv(1, _socket.MSG_PEEK | _socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True
    finally:
        sock.settimeout(timeout)


# ---------------------------------------------------------------------------------------------
# Validation helpers

def req_str(req, key, optional=False, allow_empty=False):
    value = req.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise AgentError("invalid_argument", "%s must be a string" % key)
    if "\0" in value:
        raise AgentError("invalid_argument", "%s must not contain NUL bytes" % key)
    if not value and not allow_empty:
        raise AgentError("invalid_argument", "%s must not be empty" % key)
    return value


def req_int(req, key, default=None, minimum=0, maximum=(1 << 62)):
    value = req.get(key, default)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise AgentError("invalid_argument", "%s must be an integer in %d..%d" % (key, minimum, maximum))
    return value


def req_pid(req):
    return req_int(req, "pid", minimum=1, maximum=(1 << 22))


def lookup_user(req):
    name = req.get("user") or "user"
    if not isinstance(name, str) or name not in USERS:
        raise AgentError("invalid_argument", "unknown user %r: use \"user\" or \"root\"" % (name,))
    uid, gid, home = USERS[name]
    if not SWITCH_USER:
        uid, gid = os.getuid(), os.getgid()
    return name, uid, gid, home


def resolve(path, home, key="path"):
    """An absolute, lexically normalised path; relative ones and ~ are taken from the home."""
    if not isinstance(path, str) or not path:
        raise AgentError("invalid_argument", "%s must be a non-empty string" % key)
    if "\0" in path:
        raise AgentError("invalid_argument", "%s must not contain NUL bytes" % key)
    if path == "~" or path.startswith("~/"):
        path = home + path[1:]
    elif not path.startswith("/"):
        path = home + "/" + path
    path = os.path.normpath(path)
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    return path


# ---------------------------------------------------------------------------------------------
# Processes

LOCK = _thread.allocate_lock()   # guards RUNNING, FINISHED, subscriber lists and end transitions
RUNNING = {}                     # pid -> Proc
FINISHED = {}                    # pid -> Proc, oldest first; ended less than FINISHED_KEEP ago
CHILD_EVENT = None               # threading.Event set whenever a child is spawned (wakes the reaper)
DEADLINES = None                 # Deadlines
_STARTED = _thread.allocate_lock()


def start_process_threads():
    """Creates the reaper and the deadline keeper once; called by the warm-up and by spawn."""
    global CHILD_EVENT, DEADLINES
    with _STARTED:
        if CHILD_EVENT is None:
            CHILD_EVENT = threading.Event()
            DEADLINES = Deadlines()
            threading.Thread(target=reaper, name="reaper", daemon=True).start()


def oom_kills():
    """The memory cgroup's OOM-kill counter, or None when this host does not expose it."""
    for path in OOM_COUNTER_FILES:
        try:
            with open(path, "rb") as f:
                for line in f.read().split(b"\n"):
                    if line.startswith(b"oom_kill "):
                        return int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return None


def describe_duration(millis):
    if millis < 1000:
        return "%d ms" % millis
    seconds = millis / 1000.0
    if seconds == int(seconds):
        return "%d s" % seconds
    return "%.1f s" % seconds


def describe_bytes(n):
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return "%d %s" % (n // size, unit)
    return "%d bytes" % n


def signal_name(signo):
    try:
        return signal.Signals(signo).name
    except ValueError:
        return "SIG%d" % signo


class Subscriber:
    """One attached client's queue. The pump puts; the connection thread takes and sends."""

    def __init__(self):
        self.cond = threading.Condition(threading.Lock())
        self.items = collections.deque()
        self.buffered = 0
        self.dead = False

    def put(self, item, nbytes=0):
        """Queues an item; waits while this client is more than a buffer behind (backpressure)."""
        with self.cond:
            while self.buffered > SUBSCRIBER_BUFFER and not self.dead:
                self.cond.wait(1.0)
            if self.dead:
                return
            self.items.append((item, nbytes))
            self.buffered += nbytes
            self.cond.notify_all()

    def take(self, timeout):
        with self.cond:
            if not self.items:
                self.cond.wait(timeout)
                if not self.items:
                    return None
            item, nbytes = self.items.popleft()
            self.buffered -= nbytes
            self.cond.notify_all()
            return item

    def kill(self):
        with self.cond:
            self.dead = True
            self.items.clear()
            self.buffered = 0
            self.cond.notify_all()


class Proc:
    def __init__(self, argv, env, request_env, cwd, user, tag, timeout_ms, limit):
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

    def info(self):
        return {"pid": self.pid, "argv": self.argv, "env": self.request_env, "cwd": self.cwd,
                "user": self.user, "tag": self.tag, "startedMillis": int(self.started * 1000)}

    def kill_group(self, signo):
        signal_group(self.pid, signo)

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
        out = self.popen.stdout.fileno()
        err = self.popen.stderr.fileno()
        kinds = {out: OUT, err: ERR}
        poller = select.poll()
        poller.register(out, select.POLLIN)
        poller.register(err, select.POLLIN)
        poller.register(self.wake, select.POLLIN)
        open_fds = 2
        exited = False
        while not exited:
            for fd, _ in poller.poll():
                if fd == self.wake:
                    exited = True
                    continue
                data = os.read(fd, PIPE_READ)
                if data:
                    self._deliver(kinds[fd], data)
                else:
                    poller.unregister(fd)
                    open_fds -= 1
        # The process has exited: everything it wrote is already in the pipes. Take that, then
        # end; descendants that keep the pipes open don't hold the end event back.
        deadline = time.monotonic() + DRAIN_AFTER_EXIT
        while open_fds and time.monotonic() < deadline:
            ready = [fd for fd, _ in poller.poll(0) if fd != self.wake]
            if not ready:
                break
            for fd in ready:
                data = os.read(fd, PIPE_READ)
                if data:
                    self._deliver(kinds[fd], data)
                else:
                    poller.unregister(fd)
                    open_fds -= 1
        self._finish()
        # Keep reading (and discarding) what background descendants still write, so that they
        # don't die of SIGPIPE; the thread ends when the last of them closes the pipes.
        poller.unregister(self.wake)
        os.close(self.wake)
        while open_fds:
            for fd, _ in poller.poll():
                if not os.read(fd, PIPE_READ):
                    poller.unregister(fd)
                    open_fds -= 1
        self.popen.stdout.close()
        self.popen.stderr.close()

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
        if self.popen is not None:
            self.popen.returncode = exit_code  # so that Popen never waits for it itself
        for sub in subscribers:
            sub.put(("end", end))

    def _close_stdin(self):
        if self.stdin_fd >= 0:
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


def reaper():
    """Reaps every child. WNOWAIT first, so the pid cannot be reused before its record is
    marked; then waitpid under LOCK, which spawn also holds until the record is registered."""
    while True:
        try:
            result = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT)
        except ChildProcessError:
            CHILD_EVENT.wait(1.0)
            CHILD_EVENT.clear()
            continue
        except InterruptedError:
            continue
        if result is None:
            continue
        pid = result.si_pid
        with LOCK:
            try:
                _, status = os.waitpid(pid, 0)
            except ChildProcessError:
                continue  # Popen reaped a child whose exec failed
            proc = RUNNING.get(pid) or KERNELS.get(pid) or RELAYS.get(pid)
            if proc is not None and proc.status is None:
                proc.exited(status)


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


# Spawning as another user. glibc's setuid() applies to every thread of a process, so CPython
# forks (never vforks) a child that must switch users, and a fork of the agent copies its page
# tables and makes every page copy-on-write: about 2 ms of the ≈ 3 ms an exec took. Linux keeps
# credentials per thread, though: the spawning thread switches its own with raw syscalls (keeping
# saved uid 0 so that it can switch back), vforks a child that inherits them, and switches back.
# execve makes the child's saved ids its effective ones (the user's), and a non-root exec clears
# its capabilities, exactly as after setgroups([])/setgid/setuid. Only when the agent is plain root
# (all ids 0, no ambient capabilities, which such a thread would keep) on a known architecture;
# otherwise Popen switches in the forked child as before.
_CRED_SYSCALLS = {"x86_64": (116, 119, 117), "aarch64": (159, 149, 147)}  # setgroups, setresgid, setresuid
_THREAD_CREDS = None             # (libc, syscall numbers, agent's groups) when usable; False when not


def thread_creds():
    global _THREAD_CREDS
    if _THREAD_CREDS is None:
        usable = False
        numbers = _CRED_SYSCALLS.get(os.uname().machine)
        if numbers and SWITCH_USER and os.getresuid() == (0, 0, 0) and os.getresgid() == (0, 0, 0):
            try:
                with open("/proc/self/status", "rb") as f:
                    ambient = [line for line in f.read().split(b"\n") if line.startswith(b"CapAmb:")]
                # gVisor (2022) prints no CapAmb line: the bundle gives the agent no ambient
                # capabilities, and that kernel cannot show otherwise.
                usable = not ambient or (len(ambient) == 1 and int(ambient[0].split()[1], 16) == 0)
            except (OSError, ValueError, IndexError):
                usable = False
        if usable:
            groups = os.getgroups()
            _THREAD_CREDS = (_libc(), numbers, len(groups), (ctypes.c_uint * max(1, len(groups)))(*groups))
        else:
            _THREAD_CREDS = False
    return _THREAD_CREDS or None


def popen_as(uid, gid, argv, **kwargs):
    """subprocess.Popen(argv, user=uid, group=gid, extra_groups=[], **kwargs), through vfork when
    the calling thread can take the user's credentials for the spawn (see above)."""
    creds = thread_creds()
    if creds is None:
        return subprocess.Popen(argv, user=uid, group=gid, extra_groups=[], **kwargs)
    libc, (nr_setgroups, nr_setresgid, nr_setresuid), ngroups, groups = creds
    long = ctypes.c_long  # syscall() is variadic: every argument a full register
    popen = None
    try:
        if (libc.syscall(long(nr_setgroups), long(0), None) != 0
                or libc.syscall(long(nr_setresgid), long(gid), long(gid), long(0)) != 0
                or libc.syscall(long(nr_setresuid), long(uid), long(uid), long(0)) != 0):
            err = ctypes.get_errno()
            raise OSError(err, "cannot take uid %d gid %d for the spawn: %s" % (uid, gid, os.strerror(err)))
        popen = subprocess.Popen(argv, **kwargs)
        return popen
    finally:
        if (libc.syscall(long(nr_setresuid), long(0), long(0), long(0)) != 0
                or libc.syscall(long(nr_setresgid), long(0), long(0), long(0)) != 0
                or libc.syscall(long(nr_setgroups), long(ngroups), groups) != 0):
            # Never observed; this thread stays unprivileged until its request ends (threads
            # are per connection), and the child, if any, does not run unaccounted.
            if popen is not None:
                signal_group(popen.pid, 9)
            raise AgentError("internal", "could not switch the spawning thread back to root (errno %d)"
                             % ctypes.get_errno())


def set_oom_score_adj(pid):
    """The kernel's OOM killer should pick user code, not the agent."""
    try:
        fd = os.open("/proc/%d/oom_score_adj" % pid, os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.write(fd, b"1000")
    except OSError:
        pass
    finally:
        os.close(fd)


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

    start_process_threads()
    proc = Proc(argv, env, request_env, cwd, user, tag, timeout_ms, limit)
    proc.subscribers.append(subscriber)
    proc.oom_before = oom_kills()
    proc.wake = os.eventfd(0, os.EFD_CLOEXEC)
    options = dict(bufsize=0, cwd=cwd, env=env, close_fds=True, start_new_session=True,
                   stdin=subprocess.PIPE if want_stdin else subprocess.DEVNULL,
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with LOCK:
            if SWITCH_USER:
                proc.popen = popen_as(uid, gid, argv, **options)
            else:
                proc.popen = subprocess.Popen(argv, **options)
            proc.pid = proc.popen.pid
            RUNNING[proc.pid] = proc
    except OSError as e:
        os.close(proc.wake)
        what = e.filename if e.filename is not None else argv[0]
        if what == cwd and e.errno in (1, 13):
            raise AgentError("permission_denied", "cannot run %s: user %s may not enter cwd '%s'" % (argv[0], user, cwd))
        if e.errno == 2:
            raise AgentError("not_found", "cannot run %s: no such file or directory (PATH=%s)"
                             % (what, env.get("PATH", "")))
        raise os_error(e, "cannot run %s" % what)
    except AgentError:
        os.close(proc.wake)
        raise
    except (ValueError, subprocess.SubprocessError) as e:
        os.close(proc.wake)
        raise AgentError("invalid_argument", "cannot run %s: %s" % (argv[0], e))
    CHILD_EVENT.set()
    if want_stdin:
        proc.stdin_fd = proc.popen.stdin.fileno()
        os.set_blocking(proc.stdin_fd, False)
    set_oom_score_adj(proc.pid)
    if timeout_ms > 0:
        DEADLINES.add(time.monotonic() + timeout_ms / 1000.0, proc)
    _thread.start_new_thread(proc.pump, ())  # no threading.Thread: its start waits for a handshake
    return proc


def find_running(pid):
    with LOCK:
        proc = RUNNING.get(pid)
    if proc is None:
        raise AgentError("process_not_found", "no running process with pid %d" % pid)
    return proc


def serve_stream(sock, proc, sub):
    """Sends start, then the subscriber's output frames and end; runs on the connection thread."""
    sock.settimeout(STREAM_SEND_TIMEOUT)
    try:
        send_json(sock, {"ev": "start", "pid": proc.pid})
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
    finally:
        with LOCK:
            if sub in proc.subscribers:
                proc.subscribers.remove(sub)
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
    if proc.popen.stdin is None:
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
    proc.stdin_closing = True
    with proc.stdin_lock:
        proc._close_stdin()
    send_json(sock, {"ok": True})


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
    send_json(sock, {"ok": True})


# ---------------------------------------------------------------------------------------------
# Files. Every path resolves inside the sandbox's own mount namespace: symlinks lead wherever
# they lead within the sandbox, which is the sandbox's own business.

class Names:
    """uid/gid -> name lookups, cached for one request."""

    def __init__(self):
        self.users = {}
        self.groups = {}

    def user(self, uid):
        name = self.users.get(uid)
        if name is None:
            try:
                name = pwd.getpwuid(uid).pw_name
            except KeyError:
                name = str(uid)
            self.users[uid] = name
        return name

    def group(self, gid):
        name = self.groups.get(gid)
        if name is None:
            try:
                name = grp.getgrgid(gid).gr_name
            except KeyError:
                name = str(gid)
            self.groups[gid] = name
        return name


def entry(path, names, lst=None):
    if lst is None:
        lst = os.lstat(path)
    st = lst
    target = None
    if stat.S_ISLNK(lst.st_mode):
        target = os.path.realpath(path)
        try:
            st = os.stat(path)
        except OSError:
            st = None
    if st is None:
        kind = "symlink"
        st = lst
    elif stat.S_ISDIR(st.st_mode):
        kind = "dir"
    elif stat.S_ISREG(st.st_mode):
        kind = "file"
    else:
        kind = "other"
    return {"name": os.path.basename(path) or "/", "path": path, "type": kind, "size": st.st_size,
            "mode": stat.S_IMODE(st.st_mode), "permissions": stat.filemode(st.st_mode),
            "owner": names.user(st.st_uid), "group": names.group(st.st_gid),
            "modifiedMillis": st.st_mtime_ns // 1_000_000, "symlinkTarget": target}


def file_op(what, fn):
    try:
        return fn()
    except OSError as e:
        raise os_error(e, what)


def op_stat(sock, req):
    _, _, _, home = lookup_user(req)
    path = resolve(req.get("path"), home)
    send_json(sock, {"entry": file_op("cannot stat %s" % path, lambda: entry(path, Names()))})


def op_list(sock, req):
    _, _, _, home = lookup_user(req)
    path = resolve(req.get("path"), home)
    depth = req_int(req, "depth", 1, 1, 1 << 16)
    limit = req_int(req, "limit", 100_000, 1, LIST_LIMIT_MAX)
    st = file_op("cannot list %s" % path, lambda: os.stat(path))
    if not stat.S_ISDIR(st.st_mode):
        raise AgentError("not_a_directory", "cannot list %s: not a directory" % path)
    names = Names()
    items = []

    def walk(directory, level):
        try:
            with os.scandir(directory) as it:
                children = sorted(it, key=lambda e: e.name)
        except OSError as e:
            if level == 1:
                raise os_error(e, "cannot list %s" % directory)
            return  # an unreadable subdirectory is listed but not descended into
        for child in children:
            try:
                item = entry(child.path, names, child.stat(follow_symlinks=False))
            except OSError:
                continue  # vanished meanwhile
            if len(items) >= limit:
                raise AgentError("invalid_argument", "listing %s to depth %d exceeds %d entries: "
                                 "use a smaller depth or a deeper path" % (path, depth, limit))
            items.append(item)
            if level < depth and item["type"] == "dir" and item["symlinkTarget"] is None:
                walk(child.path, level + 1)

    walk(path, 1)
    send_items(sock, items)


def make_dirs(path, uid, gid):
    """mkdir -p that chowns what it creates. Returns True if the last component was created."""
    missing = []
    current = path
    while True:
        try:
            st = os.stat(current)
        except FileNotFoundError:
            missing.append(current)
            parent = os.path.dirname(current)
            if parent == current:
                break
            current = parent
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise AgentError("not_a_directory", "cannot create %s: %s exists and is not a directory"
                             % (path, current))
        break
    created = False
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o755)
        except FileExistsError:
            if not os.path.isdir(directory):
                raise AgentError("not_a_directory", "cannot create %s: %s exists and is not a directory"
                                 % (path, directory))
            created = False  # someone else was faster
            continue
        created = True
        if SWITCH_USER:
            os.lchown(directory, uid, gid)
    return created


def op_mkdir(sock, req):
    _, uid, gid, home = lookup_user(req)
    path = resolve(req.get("path"), home)
    created = file_op("cannot create directory %s" % path, lambda: make_dirs(path, uid, gid))
    send_json(sock, {"created": created, "entry": file_op("cannot stat %s" % path, lambda: entry(path, Names()))})


def op_move(sock, req):
    _, uid, gid, home = lookup_user(req)
    source = resolve(req.get("source"), home, "source")
    destination = resolve(req.get("destination"), home, "destination")
    what = "cannot move %s to %s" % (source, destination)

    def move():
        os.lstat(source)
        make_dirs(os.path.dirname(destination), uid, gid)
        try:
            os.rename(source, destination)
        except OSError as e:
            if e.errno != 18:  # EXDEV: another filesystem
                raise
            shutil.move(source, destination)
        return entry(destination, Names())

    send_json(sock, {"entry": file_op(what, move)})


def op_remove(sock, req):
    _, _, _, home = lookup_user(req)
    path = resolve(req.get("path"), home)
    if path == "/":
        raise AgentError("invalid_argument", "refusing to remove /")

    def remove():
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path)
        else:
            os.unlink(path)

    file_op("cannot remove %s" % path, remove)
    send_json(sock, {"ok": True})


def op_read(sock, req):
    _, _, _, home = lookup_user(req)
    path = resolve(req.get("path"), home)
    fd = file_op("cannot read %s" % path,
                 lambda: os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK))
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise AgentError("is_a_directory", "cannot read %s: it is a directory" % path)
        if not stat.S_ISREG(st.st_mode):
            raise AgentError("invalid_argument", "cannot read %s: not a regular file" % path)
        os.set_blocking(fd, True)
        sock.settimeout(DATA_TIMEOUT)
        if st.st_size < CHUNK:
            # Small, or a pseudo-file whose size says nothing (/proc: 0, /sys: 4096): read it
            # whole first, so that the announced size is exact.
            content = _read_small(fd, path)
            send_json(sock, {"size": len(content)})
            if content:
                send_frame(sock, DATA, content)
            send_frame(sock, DATA)
            return
        size = st.st_size
        send_json(sock, {"size": size})
        buf = bytearray(5 + CHUNK)
        view = memoryview(buf)
        buf[4] = DATA
        remaining = size
        while remaining > 0:
            n = os.readv(fd, [view[5:5 + min(CHUNK, remaining)]])
            if n == 0:
                break  # the file shrank meanwhile
            buf[0:4] = (n + 1).to_bytes(4, "big")
            sock.sendall(view[:5 + n])
            remaining -= n
        send_frame(sock, DATA)
    finally:
        os.close(fd)


def _read_small(fd, path):
    parts = []
    total = 0
    while True:
        part = os.read(fd, CHUNK - total)
        if not part:
            return b"".join(parts)
        parts.append(part)
        total += len(part)
        if total >= CHUNK:
            raise AgentError("invalid_argument", "cannot read %s: it grows while being read "
                             "(past 1 MiB although its size said less)" % path)


@receiving
def op_write(sock, req, data):
    _, uid, gid, home = lookup_user(req)
    path = resolve(req.get("path"), home)
    what = "cannot write %s" % path
    try:
        if os.path.islink(path):
            path = os.path.realpath(path)  # write through the link, like open(2) would
        try:
            existing = os.stat(path)
        except FileNotFoundError:
            existing = None
        if existing is not None and stat.S_ISDIR(existing.st_mode):
            raise AgentError("is_a_directory", "%s: it is a directory" % what)
        directory = os.path.dirname(path)
        make_dirs(directory, uid, gid)
        tmp = "%s/.%s.%s.stockade-tmp" % (directory, os.path.basename(path)[:200], os.urandom(6).hex())
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    except OSError as e:
        raise os_error(e, what)
    try:
        try:
            sock.settimeout(DATA_TIMEOUT)
            for payload in data.frames():
                while payload:
                    n = os.write(fd, payload)
                    payload = payload[n:]
            if existing is not None and stat.S_ISREG(existing.st_mode):
                os.fchmod(fd, stat.S_IMODE(existing.st_mode))
                if SWITCH_USER:
                    os.fchown(fd, existing.st_uid, existing.st_gid)
            elif SWITCH_USER:
                os.fchown(fd, uid, gid)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except OSError as e:
        _unlink_quietly(tmp)
        raise os_error(e, what)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    send_json(sock, {"entry": file_op("cannot stat %s" % path, lambda: entry(path, Names()))})


def _unlink_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------
# Code contexts: one interpreter kernel (stockade_kernel.py, "kernel" next to this program) per
# context, spawned as the context's user. Its stdout and stderr are pipes read here and forwarded
# to the running cell; its events (results, errors, end of cell) arrive on a dedicated pipe as
# length-prefixed JSON. Everything the kernel sends is user-controlled: it is bounded, parsed
# defensively and rebuilt before it reaches a client.

KERNEL_PATH = None               # --kernel PATH; default: "kernel" next to this program
MAX_CONTEXTS = 64
KERNEL_START_TIMEOUT = 60.0      # from spawn to the kernel's ready event
BUSY_WAIT = 60.0                 # a cell waits this long for the previous cell of its context
INTERRUPT_GRACE = 2.0            # SIGINT, then SIGKILL this much later if the cell goes on
KERNEL_EVENT_MAX = 64 << 20      # one event frame from a kernel; bigger breaks the protocol
KERNEL_REQUEST_TIMEOUT = 10.0    # an idle kernel must take its request within this
EVENTS_CLOSED_GRACE = 0.5        # a kernel whose event channel closed must have exited by then
STDERR_TAIL = 4096               # kernel stderr kept (outside cells) to explain a failed start
SCAN_MAX_ENTRIES = 10_000        # file scan of the user's home around each cell
SCAN_MAX_SECONDS = 1.0
PRELOAD_TIMEOUT_MS = 120_000
WARM_DEFAULT = False             # --warm-default: start the default context at start-up
PRELOAD = ()                     # --preload: modules the default context's kernel imports when it starts
PRELOAD_MAX_MODULES = 64         # bounds of --preload (the kernel checks the same)
PRELOAD_MAX_NAME = 200
_PRELOAD_LOGGED = set()          # modules whose failed preload was logged already
CELL_OUTCOMES = ("ok", "error", "timeout", "output_truncated", "killed")

CONTEXTS = {}                    # id -> Context, oldest first; guarded by CONTEXTS_LOCK
CONTEXTS_LOCK = _thread.allocate_lock()
DEFAULT_CONTEXT = None           # the Context that cells without a contextId run in
KERNELS = {}                     # pid -> Kernel while it runs; guarded by LOCK (the reaper's table)


def kernel_path():
    if KERNEL_PATH:
        return KERNEL_PATH
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernel")


def check_envs(envs, key="envs"):
    if envs is None:
        return {}
    if not isinstance(envs, dict):
        raise AgentError("invalid_argument", "%s must be an object of strings" % key)
    for name, value in envs.items():
        if not name or "=" in name or "\0" in name:
            raise AgentError("invalid_argument", "environment variable name %r is not valid" % name)
        if not isinstance(value, str) or "\0" in value:
            raise AgentError("invalid_argument", "environment variable %s must be a string without NUL" % name)
    return dict(envs)


class Context:
    """A named interpreter: its settings, its current kernel, and the one-cell-at-a-time lock."""

    def __init__(self, user, uid, gid, home, cwd, envs, preload=()):
        self.id = str(_uuid4())
        self.user, self.uid, self.gid, self.home = user, uid, gid, home
        self.cwd = cwd
        self.envs = envs
        self.created = time.time()
        self.busy = threading.Lock()         # held by the cell that runs (or waits to run)
        self.state_lock = threading.Lock()   # serialises kernel starts and restarts
        self.kernel = None
        self.count = 0                       # cells run by the current kernel
        self.pending_loss = None             # why the state was lost since the last cell
        self.deleted = False
        self.preload = preload               # modules each new kernel imports before it is ready

    def info(self):
        return {"id": self.id, "language": "python", "cwd": self.cwd, "user": self.user}

    def ensure_kernel(self):
        """The running, ready kernel; starts one if there is none or it died. Raises AgentError."""
        with self.state_lock:
            if self.deleted:
                raise AgentError("not_found", "context %s was deleted" % self.id)
            kernel = self.kernel
            if kernel is None or kernel.dead.is_set():
                if kernel is not None and not kernel.reported and kernel.intent not in ("restart", "delete"):
                    self.pending_loss = kernel.death_reason
                kernel = self.kernel = Kernel(self)
                self.count = 0
                kernel.start()
            try:
                kernel.wait_ready()
            except AgentError as e:
                if self.deleted:
                    raise AgentError("not_found", "context %s was deleted while its interpreter started" % self.id)
                if not kernel.preload:
                    raise
                # A module whose import crashes or hangs the kernel must not keep the context
                # from working: from now on its kernels start without the preload.
                log("context %s: its interpreter did not start with the preload of %s (%s); starting it without"
                    % (self.id, ",".join(kernel.preload), e.message[:300]))
                self.preload = ()
                kernel.kill("start", "it did not start with its preload")
                kernel = self.kernel = Kernel(self)
                self.count = 0
                kernel.start()
                kernel.wait_ready()
            return kernel

    def restart(self):
        with self.state_lock:
            if self.deleted:
                raise AgentError("not_found", "context %s was deleted" % self.id)
            old = self.kernel
            if old is not None:
                old.kill("restart")
                old.dead.wait(5.0)
            self.pending_loss = None
            kernel = self.kernel = Kernel(self)
            self.count = 0
            kernel.start()
            kernel.wait_ready()

    def delete(self):
        self.deleted = True
        kernel = self.kernel
        if kernel is not None:
            kernel.kill("delete")


def _uuid4():
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


def find_context(cid):
    if not isinstance(cid, str) or not cid:
        raise AgentError("invalid_argument", "id must be a non-empty string")
    with CONTEXTS_LOCK:
        ctx = CONTEXTS.get(cid)
    if ctx is None:
        raise AgentError("not_found", "no code context with id %s" % cid[:64])
    return ctx


def new_context(req, default=False):
    global DEFAULT_CONTEXT
    language = req.get("language")
    if language not in (None, "", "python", "python3"):
        raise AgentError("invalid_argument", "language %r is not supported: contexts run python" % (language,))
    user, uid, gid, home = lookup_user(req)
    cwd = req.get("cwd")
    cwd = home if cwd is None or cwd == "" else resolve(cwd, home, "cwd")
    try:
        st = os.stat(cwd)
    except OSError as e:
        raise AgentError("invalid_argument", "cwd '%s' is not usable: %s" % (cwd, e.strerror))
    if not stat.S_ISDIR(st.st_mode):
        raise AgentError("invalid_argument", "cwd '%s' is not a directory" % cwd)
    envs = check_envs(req.get("envs"))
    ctx = Context(user, uid, gid, home, cwd, envs, PRELOAD if default else ())
    with CONTEXTS_LOCK:
        if default and DEFAULT_CONTEXT is not None and not DEFAULT_CONTEXT.deleted:
            return DEFAULT_CONTEXT
        if len(CONTEXTS) >= MAX_CONTEXTS:
            raise AgentError("resource_exhausted", "this sandbox already has %d code contexts: delete one first"
                             % MAX_CONTEXTS)
        CONTEXTS[ctx.id] = ctx
        if default:
            DEFAULT_CONTEXT = ctx
    return ctx


def default_context():
    with CONTEXTS_LOCK:
        ctx = DEFAULT_CONTEXT
    if ctx is not None and not ctx.deleted:
        return ctx
    return new_context({}, default=True)


def forget_context(ctx):
    global DEFAULT_CONTEXT
    with CONTEXTS_LOCK:
        CONTEXTS.pop(ctx.id, None)
        if DEFAULT_CONTEXT is ctx:
            DEFAULT_CONTEXT = None
    ctx.delete()


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
        start_process_threads()
        req_r, req_w = os.pipe()
        ev_r, ev_w = os.pipe()
        self.req_fd, self.ev_fd = req_w, ev_r
        self.wake = os.eventfd(0, os.EFD_CLOEXEC)
        argv = [sys.executable or "/usr/bin/python3", kernel_path(), "--requests", str(req_r), "--events", str(ev_w)]
        if self.preload:
            argv += ["--preload", ",".join(self.preload)]
        ids = {"user": ctx.uid, "group": ctx.gid, "extra_groups": []} if SWITCH_USER else {}
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
            if isinstance(e, OSError):
                raise os_error(e, "cannot start the python interpreter of context %s" % ctx.id)
            raise AgentError("internal", "cannot start the python interpreter of context %s: %s" % (ctx.id, e))
        finally:
            os.close(req_r)
            os.close(ev_w)
        CHILD_EVENT.set()
        try:
            with open("/proc/%d/oom_score_adj" % self.pid, "w") as f:
                f.write("1000")
        except OSError:
            pass
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
                    self.kill("timeout" if cell.timed_out else "truncated")
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


# -- files a cell produced ------------------------------------------------------------------

def scan_files(root):
    """Regular files under root: path -> (size, mtime_ns, ctime_ns, inode). Skips hidden and
    __pycache__ directories, symlinks and other filesystems; stops after SCAN_MAX_ENTRIES entries
    or SCAN_MAX_SECONDS (then the second value is True)."""
    entries = {}
    try:
        root_dev = os.lstat(root).st_dev
    except OSError:
        return entries, False
    deadline = time.monotonic() + SCAN_MAX_SECONDS
    seen = 0
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            with os.scandir(directory) as it:
                children = list(it)
        except OSError:
            continue
        for child in children:
            seen += 1
            if seen > SCAN_MAX_ENTRIES or (seen & 255 == 0 and time.monotonic() > deadline):
                return entries, True
            try:
                st = child.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                name = child.name
                if not name.startswith(".") and name != "__pycache__" and st.st_dev == root_dev:
                    stack.append(child.path)
            elif stat.S_ISREG(st.st_mode):
                entries[child.path] = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    return entries, False


def file_changes(before, after, start_ns):
    old, old_cut = before
    new, _ = after
    changes = []
    for path in sorted(new):
        sig = new[path]
        previous = old.get(path)
        if previous == sig:
            continue
        if previous is None and old_cut and sig[1] < start_ns - 1_000_000_000:
            continue  # beyond the first scan's reach, and not written during the cell
        changes.append({"path": path, "name": os.path.basename(path), "size": sig[0]})
    return changes


# -- ops --------------------------------------------------------------------------------------

def send_cell_json(sock, payload):
    """A cell event; one that does not fit a frame goes as {"ev": "large"} and data frames."""
    if len(payload) + 1 <= MAX_FRAME:
        send_frame(sock, J, payload)
        return
    send_json(sock, {"ev": "large", "size": len(payload)})
    view = memoryview(payload)
    for i in range(0, len(payload), CHUNK):
        send_frame(sock, DATA, view[i:i + CHUNK])
    send_frame(sock, DATA)


def acquire_cell_slot(ctx, sock):
    """One cell at a time per context: waits up to BUSY_WAIT for the running one."""
    deadline = time.monotonic() + BUSY_WAIT
    while True:
        if ctx.busy.acquire(timeout=1.0):
            if ctx.deleted:
                ctx.busy.release()
                raise AgentError("not_found", "context %s was deleted while the cell waited" % ctx.id)
            return
        if ctx.deleted:
            raise AgentError("not_found", "context %s was deleted while the cell waited" % ctx.id)
        if sock is not None and peer_closed(sock):
            raise ProtocolError("the client left while its cell waited")
        if time.monotonic() >= deadline:
            raise AgentError("resource_exhausted", "context %s is busy: another cell has kept it for over %d s;"
                             " wait for it to end, restart the context, or use another one" % (ctx.id, BUSY_WAIT))


def op_context_create(sock, req):
    ctx = new_context(req)
    try:
        ctx.ensure_kernel()
    except BaseException:
        forget_context(ctx)
        raise
    send_json(sock, {"context": ctx.info()})


def op_context_list(sock, req):
    with CONTEXTS_LOCK:
        items = [c.info() for c in CONTEXTS.values() if not c.deleted]
    send_items(sock, items)


def op_context_delete(sock, req):
    forget_context(find_context(req.get("id")))
    send_json(sock, {"ok": True})


def op_context_restart(sock, req):
    ctx = find_context(req.get("id"))
    ctx.restart()
    send_json(sock, {"context": ctx.info()})


def op_context_warm(sock, req):
    preload = req.get("preload") or ""
    if not isinstance(preload, str):
        raise AgentError("invalid_argument", "preload must be a string")
    ctx = default_context()
    acquire_cell_slot(ctx, sock)
    try:
        kernel = ctx.ensure_kernel()
        if preload:
            cell = Cell(0, PRELOAD_TIMEOUT_MS, 0, silent=True)
            kernel.begin(cell, {"op": "execute", "code": preload, "n": 0, "silent": True})
            while True:
                item = cell.sub.take(IDLE_CHECK)
                if item is not None and item[0] == "done":
                    outcome, reason, _ = item[1]
                    if outcome != "ok":
                        log("preload of the default context: %s (%s)" % (outcome, reason))
                    break
    finally:
        ctx.busy.release()
    send_json(sock, {"context": ctx.info()})


def op_execute(sock, req):
    code = req.get("code")
    if not isinstance(code, str):
        raise AgentError("invalid_argument", "code must be a string")
    envs = check_envs(req.get("envs"))
    timeout_ms = req_int(req, "timeoutMillis", 0)
    limit = req_int(req, "outputLimitBytes", 0)
    cid = req.get("contextId")
    ctx = default_context() if cid is None else find_context(cid)
    sock.settimeout(STREAM_SEND_TIMEOUT)
    send_json(sock, {"ev": "accepted", "contextId": ctx.id})
    acquire_cell_slot(ctx, sock)
    try:
        kernel = ctx.ensure_kernel()
        lost = ctx.pending_loss
        ctx.pending_loss = None
        ctx.count += 1
        n = ctx.count
        before = scan_files(ctx.home)
        start_ns = time.time_ns()
        cell = Cell(n, timeout_ms, limit)
        kernel.begin(cell, {"op": "execute", "code": code, "envs": envs, "n": n})
        alive = True
        while True:
            item = cell.sub.take(IDLE_CHECK)
            if item is None:
                if alive and peer_closed(sock):
                    alive = False  # the cell runs on; its output is discarded
                continue
            kind, data = item
            if kind == "done":
                outcome, reason, state_lost = data
                break
            if not alive:
                continue
            try:
                if kind == "json":
                    send_cell_json(sock, data)
                else:
                    send_frame(sock, kind, data)
            except OSError:
                alive = False
        files = file_changes(before, scan_files(ctx.home), start_ns)
        if lost:
            state_lost = True
            reason += ("; before it ran, the context's interpreter had to be restarted, so the state of"
                       " earlier cells was lost (%s)" % lost)
        end = {"ev": "end", "executionCount": n, "outcome": outcome, "reason": reason,
               "stateLost": state_lost, "files": files}
        if alive:
            send_cell_json(sock, json.dumps(end, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace"))
    finally:
        ctx.busy.release()


def warm_default():
    try:
        default_context().ensure_kernel()
    except AgentError as e:
        log("cannot start the default context: %s" % e.message)


# ---------------------------------------------------------------------------------------------
# Egress. The sandbox's network namespace has loopback only; the server binds its egress proxy's
# unix socket into the sandbox (root-only). The relay (stockade_relay.py, "relay" next to this
# program) listens on 127.0.0.1:EGRESS_PORT and carries each connection to that socket, naming
# the client's pid and uid first; every process gets HTTP(S)_PROXY pointing at it. The relay runs
# as the agent's user in its own process group, outside RUNNING, so that ps and signal never see
# it; the supervisor thread restarts it when it exits and the agent kills it when it stops.

EGRESS_SOCKET = None             # --egress PATH; None: no relay, no proxy variables
EGRESS_PORT = 49990              # --egress-port N
CA_BUNDLE = "ca-bundle.pem"      # next to this program: trust for the egress proxy's TLS interception
CA_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT", "NODE_EXTRA_CA_CERTS")
RELAY_BACKOFF_FIRST = 0.2        # a relay that exits is restarted after this, doubling up to
RELAY_BACKOFF_MAX = 10.0
RELAY_STABLE = 30.0              # a relay that ran this long was fine: the backoff starts over
RELAYS = {}                      # pid -> Relay while it runs; guarded by LOCK (the reaper's table)
RELAY_STOPPING = False           # set under LOCK at shutdown: no relay is started any more
_EGRESS_ENV = {}


def agent_dir():
    return os.path.dirname(os.path.abspath(__file__))


def egress_env():
    """The variables that send a process's HTTP(S) traffic to the relay (empty without --egress).
    A request's own variables are applied after these, so a user can still choose otherwise."""
    if EGRESS_SOCKET is None:
        return _EGRESS_ENV
    env = dict(_EGRESS_ENV)
    bundle = os.path.join(agent_dir(), CA_BUNDLE)
    if os.path.isfile(bundle):  # one stat per spawn: the server may install it after we started
        for name in CA_VARIABLES:
            env[name] = bundle
    return env


def configure_egress(socket_path, port):
    global EGRESS_SOCKET, EGRESS_PORT, _EGRESS_ENV
    EGRESS_SOCKET = socket_path
    EGRESS_PORT = port
    proxy = "http://127.0.0.1:%d" % port
    no_proxy = "localhost,127.0.0.1,::1"
    _EGRESS_ENV = {"HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "http_proxy": proxy, "https_proxy": proxy,
                   "NO_PROXY": no_proxy, "no_proxy": no_proxy}


class Relay:
    """One run of the relay process; the reaper marks its end and wakes the supervisor."""

    def __init__(self):
        self.pid = 0
        self.status = None
        self.wake = os.eventfd(0, os.EFD_CLOEXEC)

    def exited(self, status):
        """Called by the reaper, under LOCK, once the relay has been reaped."""
        self.status = status
        wake(self.wake)


def bind_relay_listeners():
    """127.0.0.1:EGRESS_PORT and, where the namespace has it, [::1]:EGRESS_PORT. Bound here, once,
    and inherited by every run of the relay: a client that connects while the relay starts or
    restarts waits in the backlog rather than being refused, and no user program can take the
    port meanwhile. Inheritable, which is harmless: subprocess closes them in user processes."""
    listeners = []
    for family, host in ((_socket.AF_INET, "127.0.0.1"), (_socket.AF_INET6, "::1")):
        sock = None
        try:
            sock = _socket.socket(family, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
            if family == _socket.AF_INET6:
                sock.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_V6ONLY, 1)
            sock.bind((host, EGRESS_PORT))
            sock.listen(1024)
        except OSError as e:
            if sock is not None:
                sock.close()
            if family == _socket.AF_INET6:
                continue  # no IPv6 loopback here: IPv4 only
            for other in listeners:
                other.close()
            raise OSError(e.errno, "cannot listen on 127.0.0.1:%d: %s (is a program of the sandbox using the"
                          " port? --egress-port chooses it)" % (EGRESS_PORT, e.strerror))
        os.set_inheritable(sock.fileno(), True)
        listeners.append(sock)
    return listeners


def spawn_relay(listeners):
    """Starts the relay, or returns None when the agent is stopping. posix_spawn rather than
    subprocess: it needs no import, so the relay starts while the warm-up is still importing."""
    relay = Relay()
    python = sys.executable or "/usr/bin/python3"
    argv = [python, "-I", "-S", os.path.join(agent_dir(), "relay"), "--listen-port", str(EGRESS_PORT),
            "--upstream", EGRESS_SOCKET]
    for sock in listeners:
        argv += ["--listen-fd", str(sock.fileno())]
    env = {"PATH": BASE_PATH, "LANG": "C.UTF-8"}
    actions = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0), (os.POSIX_SPAWN_DUP2, 2, 1)]
    try:
        with LOCK:  # registered before the reaper can see it end
            if RELAY_STOPPING:
                os.close(relay.wake)
                return None
            relay.pid = os.posix_spawn(python, argv, env, file_actions=actions, setsid=True)
            RELAYS[relay.pid] = relay
    except OSError:
        os.close(relay.wake)
        raise
    return relay


def supervise_relay(listeners):
    """The supervisor thread: keeps a relay running, from the first connection on, until the agent
    stops. The relay starts only when a connection waits on one of the listeners (which main() bound
    before the agent's socket answers; None if it could not): an idle sandbox, or one that never
    uses the network, carries no relay process (≈ 9 MiB less per sandbox), and its start-up never
    competes with the agent's. The first connection waits in the backlog while the relay starts
    (≈ 30 ms); a relay that exits is restarted the same way, after its backoff."""
    backoff = RELAY_BACKOFF_FIRST
    while True:
        started = time.monotonic()
        relay = False
        try:
            if listeners is None:
                listeners = bind_relay_listeners()
            wait_for_a_client(listeners)
            relay = spawn_relay(listeners)
        except OSError as e:
            log("cannot start the egress relay: %s; retrying in %.1f s" % (e.strerror, backoff))
        if relay is None:
            return
        if relay:
            start_process_threads()  # the reaper reports its end
            CHILD_EVENT.set()
            try:
                os.eventfd_read(relay.wake)
            finally:
                os.close(relay.wake)
            with LOCK:
                RELAYS.pop(relay.pid, None)
                if RELAY_STOPPING:
                    return
            if time.monotonic() - started >= RELAY_STABLE:
                backoff = RELAY_BACKOFF_FIRST
            status = relay.status
            how = ("was killed by %s" % signal_name(os.WTERMSIG(status)) if os.WIFSIGNALED(status)
                   else "exited with code %d" % os.WEXITSTATUS(status))
            log("the egress relay (pid %d) %s; restarting it in %.1f s" % (relay.pid, how, backoff))
        time.sleep(backoff)
        backoff = min(backoff * 2, RELAY_BACKOFF_MAX)


def wait_for_a_client(listeners):
    """Blocks until a connection waits on a listener (it stays in the backlog for the relay)."""
    poller = select.poll()
    for sock in listeners:
        poller.register(sock.fileno(), select.POLLIN)
    while not poller.poll():
        pass


def stop_relays():
    """At shutdown: no new relay, and the running one killed (it leads its own process group)."""
    global RELAY_STOPPING
    with LOCK:
        RELAY_STOPPING = True
        relays = list(RELAYS.values())
        for relay in relays:
            if relay.status is None:
                signal_group(relay.pid, 9)
    if relays:
        start_process_threads()
    # Let the reaper collect it, so that no zombie outlives an agent that is not init.
    deadline = time.monotonic() + 1.0
    while any(r.status is None for r in relays) and time.monotonic() < deadline:
        time.sleep(0.005)


HELLO_REQUEST = b'{"op":"hello"}'


def hello_answer():
    """hello's answer, formatted by hand: it is the readiness probe on the create path."""
    return ('{"version":"%s","protocol":%d,"pid":%d,"init":%s,"uid":%d,"switchUser":%s,"python":"%s"}' % (
        VERSION, PROTOCOL, os.getpid(), "true" if os.getpid() == 1 else "false", os.getuid(),
        "true" if SWITCH_USER else "false", sys.version.split()[0])).encode()


def op_hello(sock, req):
    send_frame(sock, J, hello_answer())


# File operations act with the permissions of the user they are asked for: the handling thread
# switches its filesystem uid/gid (setfsuid/setfsgid are per thread, unlike setuid in glibc), which
# also drops the agent's file capabilities for the duration, and switches back afterwards.
FILE_OPS = frozenset(("stat", "list", "mkdir", "move", "remove", "read", "write"))
_LIBC = None


def _libc():
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
    return _LIBC


_FSUID_WORKS = None  # whether setfsuid/setfsgid switch this thread (gVisor 2022 does not implement them)


def run_as(uid, gid, fn):
    global _FSUID_WORKS
    libc = _libc()
    if _FSUID_WORKS is not False:
        libc.setfsgid(gid)
        libc.setfsuid(uid)
        switched = libc.setfsuid(-1) == uid  # setfsuid(-1) reads the current value
        if switched or _FSUID_WORKS:
            try:
                if not switched:
                    raise AgentError("internal", "could not switch the filesystem uid to %d" % uid)
                _FSUID_WORKS = True
                return fn()
            finally:
                libc.setfsuid(0)
                libc.setfsgid(0)
        _FSUID_WORKS = False
        libc.setfsuid(0)
        libc.setfsgid(0)
    return run_as_effective(uid, gid, fn)


def run_as_effective(uid, gid, fn):
    """run_as where setfsuid does not work: this thread alone takes the user's effective ids (raw
    syscalls; real and saved ids stay 0 so that it can switch back) and no supplementary groups,
    which also empties its effective capabilities for the duration, as setfsuid does."""
    creds = thread_creds()
    if creds is None:
        raise AgentError("internal", "cannot act as uid %d: neither setfsuid nor per-thread ids work here" % uid)
    libc, (nr_setgroups, nr_setresgid, nr_setresuid), ngroups, groups = creds
    long = ctypes.c_long
    keep = long(-1)
    try:
        if (libc.syscall(long(nr_setgroups), long(0), None) != 0
                or libc.syscall(long(nr_setresgid), keep, long(gid), keep) != 0
                or libc.syscall(long(nr_setresuid), keep, long(uid), keep) != 0):
            raise AgentError("internal", "could not switch to uid %d gid %d (errno %d)" % (uid, gid, ctypes.get_errno()))
        return fn()
    finally:
        if (libc.syscall(long(nr_setresuid), keep, long(0), keep) != 0
                or libc.syscall(long(nr_setresgid), keep, long(0), keep) != 0
                or libc.syscall(long(nr_setgroups), long(ngroups), groups) != 0):
            raise AgentError("internal", "could not switch the file thread back to root (errno %d)" % ctypes.get_errno())


OPS = {"hello": op_hello, "exec": op_exec, "attach": op_attach, "ps": op_ps, "input": op_input,
       "close_stdin": op_close_stdin, "signal": op_signal, "stat": op_stat, "list": op_list,
       "mkdir": op_mkdir, "move": op_move, "remove": op_remove, "read": op_read, "write": op_write,
       "context_create": op_context_create, "context_list": op_context_list, "context_delete": op_context_delete,
       "context_restart": op_context_restart, "context_warm": op_context_warm, "execute": op_execute}


# ---------------------------------------------------------------------------------------------
# Connections

def handle(fd):
    sock = _socket.socket(fileno=fd)
    try:
        sock.settimeout(REQUEST_TIMEOUT)
        try:
            kind, payload = read_frame(sock)
            if kind != J:
                raise ProtocolError("the first frame must be a JSON request")
            if payload == HELLO_REQUEST:  # answered without json, which may still be importing
                send_frame(sock, J, hello_answer())
                return
            try:
                req = json.loads(str(payload, "utf-8"))
            except (ValueError, RecursionError) as e:
                raise ProtocolError("the request is not valid JSON: %s" % e)
            if not isinstance(req, dict) or not isinstance(req.get("op"), str):
                raise ProtocolError("the request must be a JSON object with an \"op\" string")
            op = OPS.get(req["op"])
            if op is None:
                raise AgentError("invalid_argument", "unknown op %r" % req["op"][:64])
            if SWITCH_USER and req["op"] in FILE_OPS:
                _, uid, gid, _ = lookup_user(req)
                if uid != 0:
                    run_as(uid, gid, lambda: op(sock, req))
                    return
            op(sock, req)
        except AgentError as e:
            send_json(sock, {"error": {"code": e.code, "message": e.message}})
        except ProtocolError as e:
            send_json(sock, {"error": {"code": "invalid_argument", "message": "protocol error: %s" % e}})
    except (OSError, EOFError, ProtocolError, AgentError):
        pass  # the client left, or broke the framing: this connection only
    except Exception as e:
        log("request failed: %r" % e)
        try:
            send_json(sock, {"error": {"code": "internal", "message": "agent error: %r" % e}})
        except Exception:
            pass
    finally:
        sock.close()


def warm_up():
    """Imports what requests need, off the start-up path."""
    for module in (json, threading, time, collections, heapq, stat, signal, subprocess, pwd, grp):
        getattr(module, "__name__")
    if SWITCH_USER:
        _libc()
        thread_creds()
    json.loads(json.dumps({"a": [1, "b"]}))
    start_process_threads()
    if WARM_DEFAULT:
        warm_default()


def module_names(value):
    """--preload's comma-separated module names as a tuple, or None unless each is a dotted
    identifier (ASCII) and they are within bounds."""
    names = value.split(",")
    if len(names) > PRELOAD_MAX_MODULES:
        return None
    for name in names:
        if not 0 < len(name) <= PRELOAD_MAX_NAME:
            return None
        if not all(part.isascii() and part.isidentifier() for part in name.split(".")):
            return None
    return tuple(dict.fromkeys(names))


def parse_args(argv):
    global SWITCH_USER, OOM_COUNTER_FILES, KERNEL_PATH, WARM_DEFAULT, PRELOAD
    socket_path = None
    egress = None
    egress_port = EGRESS_PORT
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--socket" and i + 1 < len(argv):
            socket_path = argv[i + 1]
            i += 2
        elif arg == "--home" and i + 1 < len(argv) and "=" in argv[i + 1]:
            name, home = argv[i + 1].split("=", 1)
            if name not in USERS or not home.startswith("/"):
                raise SystemExit("stockade-agent: --home wants user=/absolute/dir with user in %s" % sorted(USERS))
            uid, gid, _ = USERS[name]
            USERS[name] = (uid, gid, home)
            i += 2
        elif arg == "--oom-counter" and i + 1 < len(argv):
            OOM_COUNTER_FILES = (argv[i + 1],)
            i += 2
        elif arg == "--no-switch-user":
            SWITCH_USER = False
            i += 1
        elif arg == "--kernel" and i + 1 < len(argv) and argv[i + 1].startswith("/"):
            KERNEL_PATH = argv[i + 1]
            i += 2
        elif arg == "--warm-default":
            WARM_DEFAULT = True
            i += 1
        elif arg == "--preload" and i + 1 < len(argv):
            names = module_names(argv[i + 1])
            if names is None:
                raise SystemExit("stockade-agent: --preload wants comma-separated module names (letters, digits,"
                                 " _ and dots, e.g. numpy,pandas,matplotlib.pyplot; at most %d names of at most"
                                 " %d characters), not %r" % (PRELOAD_MAX_MODULES, PRELOAD_MAX_NAME,
                                                              argv[i + 1][:100]))
            PRELOAD = names
            i += 2
        elif arg == "--egress" and i + 1 < len(argv) and argv[i + 1].startswith("/") \
                and len(argv[i + 1].encode()) <= 107:  # what a unix socket address holds
            egress = argv[i + 1]
            i += 2
        elif arg == "--egress-port" and i + 1 < len(argv) and argv[i + 1].isdigit() \
                and 1 <= int(argv[i + 1]) <= 65535:
            egress_port = int(argv[i + 1])
            i += 2
        else:
            raise SystemExit("stockade-agent: unknown or incomplete argument %r\n"
                             "usage: agent.py --socket PATH [--home user=DIR]... [--no-switch-user]"
                             " [--oom-counter FILE] [--kernel PATH] [--warm-default] [--preload MODULES]"
                             " [--egress SOCKET] [--egress-port N]" % arg)
    if not socket_path:
        raise SystemExit("stockade-agent: --socket PATH is required")
    if egress is not None:
        configure_egress(egress, egress_port)
    if SWITCH_USER and os.geteuid() != 0:
        raise SystemExit("stockade-agent: not running as root, so it cannot run processes as other users;"
                         " pass --no-switch-user to run them as uid %d" % os.geteuid())
    return socket_path


def listen(path):
    directory = os.path.dirname(path) or "."
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        pass
    try:
        os.chmod(directory, 0o700)  # only root inside the sandbox may reach the socket
    except OSError as e:
        log("cannot restrict %s to its owner (%s): make sure uid 1000 cannot write to it" % (directory, e.strerror))
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    os.umask(0o177)
    try:
        sock.bind(path)
    finally:
        os.umask(0o022)
    os.chmod(path, 0o600)
    sock.listen(128)
    return sock


class _Stop(BaseException):
    pass


def _stop(signo, frame):
    raise _Stop()


def main(argv):
    path = parse_args(argv)
    os.umask(0o022)
    os.chdir("/")
    server = listen(path)
    server.setblocking(False)
    # A signal may land on any thread, and Python runs its handler only when the main thread
    # gets back to the interpreter: the wake-up socket makes the main thread's poll return.
    wake_r, wake_w = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    wake_r.setblocking(False)
    wake_w.setblocking(False)
    _signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
    _signal.signal(_signal.SIGTERM, _stop)
    _signal.signal(_signal.SIGINT, _stop)
    _thread.start_new_thread(warm_up, ())
    if EGRESS_SOCKET is not None:
        try:  # before the first answer: a client that the answer lets start finds the port open
            listeners = bind_relay_listeners()
        except OSError as e:
            log("%s; the relay retries" % e.strerror)
            listeners = None
        _thread.start_new_thread(supervise_relay, (listeners,))
    start = _thread.start_new_thread
    poller = select.poll()
    poller.register(server.fileno(), select.POLLIN)
    poller.register(wake_r.fileno(), select.POLLIN)
    try:
        while True:
            for fd, _ in poller.poll():
                if fd == wake_r.fileno():
                    try:
                        wake_r.recv(64)
                    except OSError:
                        pass
                    continue
                while True:
                    try:
                        conn, _ = server._accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError as e:
                        log("accept failed: %s" % e)
                        break
                    try:
                        start(handle, (conn,))
                    except RuntimeError:
                        # No thread for it: user code has taken every pid of the sandbox (its
                        # pids limit). Hang up on this client (it sees "unavailable") and keep
                        # serving: letting this propagate would end the agent and the sandbox.
                        os.close(conn)
    except _Stop:
        pass
    finally:
        # Leave nothing behind: as init, the kernel would kill the rest anyway; in tests, this
        # keeps user processes from outliving the agent.
        try:
            with LOCK:
                procs = list(RUNNING.values())
                kernels = list(KERNELS.values())
            for proc in procs:
                proc.kill_group(9)
            for kernel in kernels:
                kernel.kill("delete")
            stop_relays()
        except BaseException:
            pass
        try:
            os.unlink(path)
        except OSError:
            pass


if __name__ == "__main__":
    main(sys.argv[1:])
