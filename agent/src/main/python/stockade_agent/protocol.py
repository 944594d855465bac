"""The agent's side of the wire (docs/agent-protocol.md): framing, JSON answers, the error codes,
the validation of request fields, and the queue that streams a process's or a cell's output to
one client. Every operation module builds on this one; it imports builtin modules only."""

import os
import _socket

from .shared import Lazy

json = Lazy("json")
threading = Lazy("threading")
collections = Lazy("collections")

MAX_FRAME = (1 << 20) + 1        # type byte + 1 MiB payload
CHUNK = 1 << 20                  # file data frames
REQUEST_TIMEOUT = 60.0           # waiting for the request frame
DATA_TIMEOUT = 300.0             # waiting for / sending one data frame of a file or input op
STREAM_SEND_TIMEOUT = 60.0       # a stream client that reads nothing for this long is dropped
SUBSCRIBER_BUFFER = 1 << 20      # output buffered per attached client before the pump waits
IDLE_CHECK = 2.0                 # how often an idle stream checks whether its client left
ITEMS_BUDGET = 512 * 1024        # bytes of JSON per item frame of list/ps answers

J = ord("J")
OUT = ord("1")
ERR = ord("2")
PTY = ord("T")                   # a terminal's output (a process started with pty)
DATA = ord("B")

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
    6: "invalid_argument",     # ENXIO: a socket or device behind /proc/PID/fd/N, no file to read
    19: "invalid_argument",    # ENODEV
    95: "invalid_argument",    # EOPNOTSUPP (ENOTSUP): the file system refuses the operation
    26: "invalid_argument",    # ETXTBSY: writing an executable that is running
    36: "invalid_argument",    # ENAMETOOLONG
    40: "invalid_argument",    # ELOOP
    39: "already_exists",      # ENOTEMPTY (moving onto a non-empty directory)
    3: "process_not_found",    # ESRCH
}


class AgentError(Exception):
    """An error answered to the client as {"error": {"code", "message"}}."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class ProtocolError(Exception):
    """The peer broke the framing; the connection is closed."""


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
# Validation of request fields

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
# Streams

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

    def drain(self):
        """Takes every queued item at once."""
        with self.cond:
            items = [item for item, _ in self.items]
            self.items.clear()
            self.buffered = 0
            self.cond.notify_all()
            return items

    def kill(self):
        with self.cond:
            self.dead = True
            self.items.clear()
            self.buffered = 0
            self.cond.notify_all()
