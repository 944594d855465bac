"""Code contexts, the agent's half: the context_create, context_list, context_delete,
context_restart, context_warm and execute operations. A context is a named interpreter with its
user, working directory and variables; its current kernel process (kernels.Kernel) runs one cell
at a time, and is replaced when it dies. Around each cell the user's home is scanned, so that the
end of the cell names the files it wrote."""

import json
import shutil
import os
import stat
import threading
import time
import _thread

from . import settings
from .kernels import Cell, Kernel
from .protocol import (AgentError, ProtocolError, CHUNK, DATA, IDLE_CHECK, J, MAX_FRAME, STREAM_SEND_TIMEOUT,
                       peer_closed, req_int, resolve, send_frame, send_items, send_json)
from .settings import log, lookup_user

MAX_CONTEXTS = 64
BUSY_WAIT = 60.0                 # a cell waits this long for the previous cell of its context
SCAN_MAX_ENTRIES = 10_000        # file scan of the user's home around each cell
SCAN_MAX_SECONDS = 1.0
PRELOAD_TIMEOUT_MS = 120_000

CONTEXTS = {}                    # id -> Context, oldest first; guarded by CONTEXTS_LOCK
CONTEXTS_LOCK = _thread.allocate_lock()
DEFAULT_CONTEXT = None           # the python Context that cells without a contextId run in
DEFAULT_OTHERS = {}              # language -> the Context that cells of that language without a contextId run in
LANGUAGES = {None: "python", "": "python", "python": "python", "python3": "python", "bash": "bash",
             "javascript": "javascript", "js": "javascript"}


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

    def __init__(self, user, uid, gid, home, cwd, envs, preload=(), language="python"):
        self.id = str(_uuid4())
        self.language = language             # python, bash (kernel_bash.py) or javascript (kernel_js.py)
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
        return {"id": self.id, "language": self.language, "cwd": self.cwd, "user": self.user}

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
    language = LANGUAGES.get(req.get("language")) if isinstance(req.get("language"), (str, type(None))) else None
    if language is None:
        raise AgentError("invalid_argument", "language %r is not supported: contexts run python, bash or javascript"
                         % (req.get("language"),))
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
    python = language == "python"
    ctx = Context(user, uid, gid, home, cwd, envs, settings.PRELOAD if default and python else (), language)
    with CONTEXTS_LOCK:
        current = DEFAULT_CONTEXT if python else DEFAULT_OTHERS.get(language)
        if default and current is not None and not current.deleted:
            return current
        if len(CONTEXTS) >= MAX_CONTEXTS:
            raise AgentError("resource_exhausted", "this sandbox already has %d code contexts: delete one first"
                             % MAX_CONTEXTS)
        CONTEXTS[ctx.id] = ctx
        if default and python:
            DEFAULT_CONTEXT = ctx
        elif default:
            DEFAULT_OTHERS[language] = ctx
    return ctx


def default_context(language=None):
    """The context that cells without a contextId run in: one per language, created on first use."""
    language = LANGUAGES.get(language) if isinstance(language, (str, type(None))) else None
    if language is None:
        raise AgentError("invalid_argument", "language must be python, bash or javascript")
    with CONTEXTS_LOCK:
        ctx = DEFAULT_CONTEXT if language == "python" else DEFAULT_OTHERS.get(language)
    if ctx is not None and not ctx.deleted:
        return ctx
    return new_context({"language": language}, default=True)


def forget_context(ctx):
    global DEFAULT_CONTEXT
    with CONTEXTS_LOCK:
        CONTEXTS.pop(ctx.id, None)
        if DEFAULT_CONTEXT is ctx:
            DEFAULT_CONTEXT = None
        if DEFAULT_OTHERS.get(ctx.language) is ctx:
            del DEFAULT_OTHERS[ctx.language]
    ctx.delete()


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
    list_defaults()  # first, so that a list shows the new context last (E2B's tests look there)
    ctx = new_context(req)
    try:
        ctx.ensure_kernel()
    except BaseException:
        forget_context(ctx)
        raise
    send_json(sock, {"context": ctx.info()})


def list_defaults():
    """As E2B's server, which starts a python and a javascript context with the sandbox, a list
    shows the default context of each language the template has, ahead of those made by
    context_create. Only the entries are made here; their interpreters start with their first
    cell."""
    languages = ["python"]
    if shutil.which("node", path=settings.BASE_PATH):
        languages.append("javascript")
    for language in languages:
        try:
            default_context(language)
        except AgentError as e:
            log("cannot list the default %s context: %s" % (language, e.message))


def op_context_list(sock, req):
    list_defaults()
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
    ctx = default_context(req.get("language")) if cid is None else find_context(cid)
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
                    alive = False
                    cell.abandon()  # nobody waits for its output: the context must be free for the next cell
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
                cell.abandon()
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
