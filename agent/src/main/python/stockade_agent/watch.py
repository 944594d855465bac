"""Directory watching (E2B's filesystem WatchDir) with the kernel's inotify: the stream (op watch)
and the polled form (watcher_create, watcher_events, watcher_remove).

One inotify instance serves the whole agent (created by the first watch, kept until the agent
ends): every sandbox then costs the host at most one inotify instance, however many watchers it
runs, and instances are counted against the host's root (fs.inotify.max_user_instances). Its
reader thread only sorts raw events by watch descriptor into the queues of the watchers that
subscribed to it; everything else (names, subdirectories added, entry info) is done by the
watcher's own thread with the user's permissions: a stream's connection thread (main runs it with
credentials.run_as), a polled watcher's thread of its own. So a recursive watch adds only
directories that user may read (the agent opens each one as the user first: gVisor's inotify does
not check) and entry info is what that user may see.

Events follow envd (which uses fsnotify): a name relative to the watched directory ("." for the
directory itself), one event per kind in the order create, rename, chmod, write, remove:

    IN_CREATE, IN_MOVED_TO -> create       IN_MOVED_FROM, IN_MOVE_SELF -> rename
    IN_ATTRIB -> chmod                     IN_MODIFY -> write
    IN_DELETE, IN_DELETE_SELF -> remove

The agent's own atomic writes (files.temp_name: data into a hidden temporary file renamed over
the destination) are reported as envd's in-place writes are: chmod (its chown) then write, after
create for a new file;
the temporary file itself is never reported. Unlike envd, a watch ends (cleanly) when the watched
directory is removed or moved away, after reporting it: nothing is left to watch.

Bounds: MAX_WATCHERS watchers and MAX_DIRS watched directories per sandbox; QUEUE_MAX events
waiting for one watcher's client. Past a queue bound, or when the kernel's own queue overflows
(IN_Q_OVERFLOW), events were lost and the watch ends with an error that says so.
"""

import os
import select
import struct
import _thread

from . import settings
from .files import Names, entry
from .protocol import AgentError, os_error, resolve, send_json
from .settings import log, lookup_user
from .shared import Lazy, libc

threading = Lazy("threading")
collections = Lazy("collections")
re = Lazy("re")
ctypes = Lazy("ctypes")
credentials = Lazy(__package__ + ".credentials")  # the polled form drains as its creator

MAX_WATCHERS = 32                # watch streams at once in one sandbox
MAX_DIRS = 8192                  # directories watched by one sandbox's watchers together
QUEUE_MAX = 4096                 # events waiting for one watcher's client
HOST_CHECK = 30.0                # how often an idle watcher wakes up (the host's hang-up wakes it at once)

IN_MODIFY, IN_ATTRIB, IN_MOVED_FROM, IN_MOVED_TO = 0x2, 0x4, 0x40, 0x80
IN_CREATE, IN_DELETE, IN_DELETE_SELF, IN_MOVE_SELF = 0x100, 0x200, 0x400, 0x800
IN_UNMOUNT, IN_Q_OVERFLOW, IN_IGNORED = 0x2000, 0x4000, 0x8000
IN_ONLYDIR, IN_ISDIR = 0x01000000, 0x40000000
IN_NONBLOCK, IN_CLOEXEC = 0o4000, 0o2000000
MASK = (IN_CREATE | IN_MODIFY | IN_DELETE | IN_DELETE_SELF | IN_MOVED_TO | IN_MOVED_FROM | IN_MOVE_SELF
        | IN_ATTRIB | IN_ONLYDIR)
EVENT = struct.Struct("iIII")    # struct inotify_event: wd, mask, cookie, len (then the name)

# (the kinds an inotify mask stands for, in envd's order)
KINDS = (("create", IN_CREATE | IN_MOVED_TO), ("rename", IN_MOVED_FROM | IN_MOVE_SELF), ("chmod", IN_ATTRIB),
         ("write", IN_MODIFY), ("remove", IN_DELETE | IN_DELETE_SELF))
WITH_ENTRY = frozenset(("create", "write", "chmod"))  # kinds whose path still names the entry (envd's rule)

_LOCK = _thread.allocate_lock()  # guards _INOTIFY's creation and WATCHERS
_INOTIFY = None
WATCHERS = 0

_TEMP = None


def agent_temp(name):
    """For a name of files.temp_name's form, (destination name up to 200 characters, whether the
    destination was new); else None."""
    global _TEMP
    if not name.endswith(".stockade-tmp"):
        return None
    if _TEMP is None:
        _TEMP = re.compile(r"\.(.+)\.([nr])[0-9a-f]{12}\.stockade-tmp", re.S)
    m = _TEMP.fullmatch(name)
    return None if m is None else (m.group(1), m.group(2) == "n")


class Inotify:
    """The agent's inotify instance: subscriptions (watch descriptor -> watchers) and the reader
    thread that hands each raw event to the watchers subscribed to its descriptor."""

    def __init__(self):
        c = libc()
        c.inotify_add_watch.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32)
        fd = c.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise os_error(OSError(err, os.strerror(err)), "cannot start watching directories")
        self.fd = fd
        self.lock = threading.Lock()
        self.subs = {}  # wd -> set of Watcher
        _thread.start_new_thread(self._read, ())

    def add(self, watcher, path):
        """Watches the directory path for watcher, with the calling thread's permissions (the
        user's); returns its watch descriptor. Raises OSError, or AgentError past MAX_DIRS."""
        c = libc()
        # inotify_add_watch needs read permission on Linux; gVisor does not check it, so the
        # agent does, by opening the directory for reading as the user.
        os.close(os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
        with self.lock:
            if len(self.subs) >= MAX_DIRS:
                raise AgentError("invalid_argument", "cannot watch %s: this sandbox already watches %d directories,"
                                 " its limit: watch a smaller tree or stop another watcher" % (path, MAX_DIRS))
            wd = c.inotify_add_watch(self.fd, os.fsencode(path), MASK)
            if wd < 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err))
            self.subs.setdefault(wd, set()).add(watcher)
            return wd

    def drop(self, watcher, wd):
        """Ends watcher's subscription to wd; the last one removes the kernel's watch."""
        with self.lock:
            subscribers = self.subs.get(wd)
            if subscribers is None:
                return
            subscribers.discard(watcher)
            if not subscribers:
                del self.subs[wd]
                libc().inotify_rm_watch(self.fd, wd)  # fails harmlessly when the kernel dropped it

    def _read_events(self):
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        while True:
            poller.poll()
            try:
                data = os.read(self.fd, 64 * 1024)
            except (BlockingIOError, InterruptedError):
                continue
            offset = 0
            while offset + EVENT.size <= len(data):
                wd, mask, cookie, length = EVENT.unpack_from(data, offset)
                name = os.fsdecode(data[offset + EVENT.size:offset + EVENT.size + length].rstrip(b"\0"))
                offset += EVENT.size + length
                with self.lock:
                    if mask & IN_Q_OVERFLOW:
                        everyone = set().union(*self.subs.values()) if self.subs else set()
                        for w in everyone:
                            w.fail("the kernel's queue of filesystem events overflowed (more than %s events waited):"
                                   " events were lost; watch again to go on" % _max_queued())
                        continue
                    subscribers = self.subs.get(wd)
                    if not subscribers:
                        continue
                    if mask & (IN_IGNORED | IN_UNMOUNT):
                        del self.subs[wd]  # the kernel removed the watch (directory gone, unmounted)
                    for w in subscribers:
                        w.push((wd, mask, cookie, name))

    def _read(self):
        while True:
            try:
                self._read_events()
            except Exception as e:  # never leave the sandbox's watchers without their reader
                log("directory watching: %r" % e)


def _max_queued():
    try:
        with open("/proc/sys/fs/inotify/max_queued_events") as f:
            return f.read().strip()
    except OSError:
        return "the kernel's limit of"


def inotify():
    global _INOTIFY
    with _LOCK:
        if _INOTIFY is None:
            _INOTIFY = Inotify()
        return _INOTIFY


class Watcher:
    """One watch: its directories (watch descriptor -> path as this watcher sees it) and the
    queue of raw events the reader hands it. push and fail run on the reader thread, the rest on
    the watcher's connection thread."""

    def __init__(self, notify, root, recursive, include_entry):
        self.notify = notify
        self.root = root
        self.recursive = recursive
        self.include_entry = include_entry
        self.dirs = {}
        self.root_wd = None
        self.names = Names()
        self.moved_temps = {}  # cookie -> whether the destination is new (an agent write's rename)
        self.queue = collections.deque()
        self.failure = None
        self.wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.uid = self.gid = 0          # whose permissions the polled form drains with
        self.over = None                 # the polled form: why it ended, once it has
        self.drain_lock = threading.Lock()  # the polled form: its thread against the requests

    def push(self, raw):
        if self.failure is not None:
            return
        if len(self.queue) >= QUEUE_MAX:
            self.fail("more than %d filesystem events waited for the client: events were lost;"
                      " watch again to go on" % QUEUE_MAX)
            return
        self.queue.append(raw)
        os.eventfd_write(self.wake, 1)  # the fd lives while subscribed: close() unsubscribes first

    def fail(self, message):
        if self.failure is None:
            self.failure = message
        os.eventfd_write(self.wake, 1)

    def watch(self, path):
        try:
            wd = self.notify.add(self, path)
        except OSError:
            return None  # gone meanwhile, or not readable by the user: not watched
        self.dirs[wd] = path
        return wd

    def watch_tree(self, top, emit):
        """Watches top's subdirectories (top itself is watched); with emit, reports what is found
        in a directory that just appeared as created: it may have been filled before its watch."""
        pending = [top]
        while pending:
            directory = pending.pop()
            try:
                with os.scandir(directory) as it:
                    children = list(it)
            except OSError:
                continue
            for child in children:
                try:
                    is_dir = child.is_dir(follow_symlinks=False)
                except OSError:
                    continue
                if emit is not None:
                    emit("create", child.path)
                if is_dir and self.watch(child.path) is not None:
                    pending.append(child.path)

    def unwatch_under(self, path):
        prefix = path + "/"
        for wd, p in list(self.dirs.items()):
            if p == path or p.startswith(prefix):
                del self.dirs[wd]
                self.notify.drop(self, wd)

    def unsubscribe(self):
        """Drops every watch of this watcher (it is over); the queue takes nothing more."""
        for wd in list(self.dirs):
            self.notify.drop(self, wd)
        self.dirs.clear()
        self.queue.clear()

    def close(self):
        self.unsubscribe()
        os.close(self.wake)

    def changes(self, raw, emit):
        """Turns one raw event into emitted changes; returns a reason when the watch is over."""
        wd, mask, cookie, name = raw
        base = self.dirs.get(wd)
        if base is None:
            return None  # a directory this watcher no longer watches
        if mask & (IN_IGNORED | IN_UNMOUNT):
            del self.dirs[wd]
            return "the watched directory is gone" if wd == self.root_wd else None
        if mask & (IN_DELETE_SELF | IN_MOVE_SELF):
            if wd != self.root_wd:
                return None  # its parent, watched too, reports it by name
            if mask & IN_MOVE_SELF:
                emit("rename", self.root)
                return "the watched directory was moved away"
            emit("remove", self.root)
            return None  # IN_IGNORED follows
        path = base + "/" + name if name else base
        temp = agent_temp(name) if name else None
        if temp is not None:
            if mask & IN_MOVED_FROM and cookie:
                if len(self.moved_temps) > 64:
                    self.moved_temps.clear()
                self.moved_temps[cookie] = temp
            return None  # the agent's temporary file: never reported itself
        if mask & IN_MOVED_TO and cookie in self.moved_temps:
            (short, new) = self.moved_temps.pop(cookie)
            if short == name[:200]:
                # As envd's upload: open(O_CREAT) (create, when new), chown to the user (chmod), the
                # data (write). E2B's Python tests count these three for a new file.
                if new:
                    emit("create", path)
                emit("chmod", path)
                emit("write", path)
                return None
        for kind, bits in KINDS:
            if mask & bits:
                emit(kind, path)
        if self.recursive and mask & IN_ISDIR:
            if mask & IN_MOVED_FROM:
                self.unwatch_under(path)
            if mask & (IN_CREATE | IN_MOVED_TO) and self.watch(path) is not None:
                self.watch_tree(path, emit)
        return None


def open_watcher(req):
    """A watcher of the request's directory, counted against MAX_WATCHERS (close_watcher gives
    the place back). Runs as the request's user."""
    global WATCHERS
    _, uid, gid, home = lookup_user(req)
    root = resolve(req.get("path"), home)
    what = "cannot watch %s" % root
    try:
        st = os.stat(root)
    except OSError as e:
        raise os_error(e, what)
    if not (st.st_mode & 0o170000 == 0o040000):
        raise AgentError("not_a_directory", "%s: not a directory" % what)
    with _LOCK:
        if WATCHERS >= MAX_WATCHERS:
            raise AgentError("invalid_argument", "%s: this sandbox already has %d directory watchers, its limit:"
                             " stop one first" % (what, MAX_WATCHERS))
        WATCHERS += 1
    watcher = None
    try:
        watcher = Watcher(inotify(), root, req.get("recursive") is True, req.get("includeEntry") is True)
        watcher.uid, watcher.gid = uid, gid
        try:
            watcher.root_wd = watcher.notify.add(watcher, root)
        except OSError as e:
            raise os_error(e, what)
        watcher.dirs[watcher.root_wd] = root
        if watcher.recursive:
            watcher.watch_tree(root, None)
        return watcher
    except BaseException:
        close_watcher(watcher)
        raise


def close_watcher(watcher):
    global WATCHERS
    if watcher is not None:
        watcher.close()
    with _LOCK:
        WATCHERS -= 1


def op_watch(sock, req):
    watcher = open_watcher(req)
    try:
        send_json(sock, {"ev": "start"})
        _serve(sock, watcher)
    finally:
        close_watcher(watcher)


def _emitter(watcher, out, base):
    """emit(kind, path) for Watcher.changes: appends the event, as base plus type, name and entry, to out."""

    def emit(kind, path):
        event = dict(base, type=kind, name=os.path.relpath(path, watcher.root))
        if watcher.include_entry and kind in WITH_ENTRY:
            try:
                event["entry"] = entry(path, watcher.names)
            except OSError:
                pass  # gone meanwhile: best effort, as envd
        out.append(event)

    return emit


def _serve(sock, watcher):
    """Sends the watcher's events until the host hangs up (its only message after the request),
    the watched directory is gone, or events were lost."""
    out = []
    emit = _emitter(watcher, out, {"ev": "fs"})

    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    poller.register(watcher.wake, select.POLLIN)
    while True:
        for fd, _ in poller.poll(HOST_CHECK * 1000):
            if fd == sock.fileno():
                return  # the host closed the stream (or sent something it must not): stop watching
        try:
            os.eventfd_read(watcher.wake)
        except BlockingIOError:
            pass
        over = None
        while watcher.queue and over is None:
            over = watcher.changes(watcher.queue.popleft(), emit)
        for event in out:
            send_json(sock, event)
        out.clear()
        if watcher.failure is not None:
            raise AgentError("internal", "watching %s stopped: %s" % (watcher.root, watcher.failure))
        if over is not None:
            send_json(sock, {"ev": "end", "reason": over})
            return


# ---------------------------------------------------------------------------------------------
# The polled form (envd's CreateWatcher, GetWatcherEvents, RemoveWatcher): the watcher outlives
# its request. A thread of its own, running as the user who created it, turns its raw events into
# changes as they come (adding new subdirectories at once, as the stream does); the changes wait
# (2 * QUEUE_MAX at most) for the next watcher_events. It ends with watcher_remove or the agent.

POLLED = {}                      # watcher id -> Watcher


def op_watcher_create(sock, req):
    # As the user for the watch itself, but not around the thread's start: a thread inherits its
    # creator's ids, and one started with the user's effective ids (gVisor) could not switch back.
    _, uid, gid, _ = lookup_user(req)
    if settings.SWITCH_USER and uid != 0:
        watcher = credentials.run_as(uid, gid, lambda: open_watcher(req))
    else:
        watcher = open_watcher(req)
    watcher.ready = []
    watcher.closed = False
    watcher_id = "w" + os.urandom(12).hex()
    with _LOCK:
        POLLED[watcher_id] = watcher
    try:
        _thread.start_new_thread(_poll_loop, (watcher,))
    except RuntimeError:
        with _LOCK:
            POLLED.pop(watcher_id, None)
        close_watcher(watcher)
        raise AgentError("resource_exhausted", "cannot watch %s: no thread for the watcher (the sandbox's"
                         " pids limit)" % watcher.root)
    send_json(sock, {"watcherId": watcher_id})


def _poll_loop(watcher):
    emit = _emitter(watcher, watcher.ready, {})

    def loop():
        poller = select.poll()
        poller.register(watcher.wake, select.POLLIN)
        while True:
            poller.poll(HOST_CHECK * 1000)
            with watcher.drain_lock:
                if watcher.closed:
                    return
                try:
                    os.eventfd_read(watcher.wake)
                except BlockingIOError:
                    pass
                while watcher.queue and watcher.over is None:
                    watcher.over = watcher.changes(watcher.queue.popleft(), emit)
                if watcher.over is not None:
                    watcher.unsubscribe()  # the directory is gone: what is left to report was reported
                if len(watcher.ready) > 2 * QUEUE_MAX:
                    watcher.ready.clear()
                    watcher.fail("more than %d filesystem events waited for GetWatcherEvents: events were lost;"
                                 " watch again to go on" % (2 * QUEUE_MAX))

    try:
        if settings.SWITCH_USER and watcher.uid != 0:
            credentials.run_as(watcher.uid, watcher.gid, loop)
        else:
            loop()
    except Exception as e:
        log("directory watcher of %s: %r" % (watcher.root, e))
    finally:
        with watcher.drain_lock:
            watcher.closed = True
            close_watcher(watcher)


def _polled(req):
    watcher_id = req.get("watcherId")
    with _LOCK:
        watcher = POLLED.get(watcher_id) if isinstance(watcher_id, str) else None
    if watcher is None:
        raise AgentError("not_found", "watcher %s not found" % str(watcher_id)[:80])
    return watcher_id, watcher


def op_watcher_events(sock, req):
    _, watcher = _polled(req)
    with watcher.drain_lock:
        events = list(watcher.ready)
        watcher.ready.clear()
        failure = watcher.failure
    if failure is not None and not events:
        raise AgentError("internal", "watching %s stopped: %s" % (watcher.root, failure))
    send_json(sock, {"events": events})


def op_watcher_remove(sock, req):
    watcher_id, watcher = _polled(req)
    with _LOCK:
        POLLED.pop(watcher_id, None)
    with watcher.drain_lock:  # its thread closes it, under this lock, once it sees closed
        if not watcher.closed:
            watcher.closed = True
            os.eventfd_write(watcher.wake, 1)
    send_json(sock, {"ok": True})
