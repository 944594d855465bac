"""Stockade's in-sandbox egress relay: the sandbox's only way out.

The sandbox's network namespace has loopback only. User programs reach the outside through the
HTTP proxy that the agent advertises in HTTP_PROXY (http://127.0.0.1:PORT): this relay listens
there and hands every TCP connection, byte for byte, to the host's egress proxy behind the unix
socket that the server binds into the sandbox (/run/stockade-egress/proxy.sock, root-only, so uid 1000
cannot reach it without us). Before the client's bytes, the host gets one line naming the client:

    STOCKADE-RELAY 1 pid=<pid or -> uid=<uid or ->\\n

The agent starts it as the sandbox's root, in its own process group, and restarts it if it exits:

    /usr/bin/python3 -I -S /opt/stockade/relay --listen-port N --upstream PATH [--max-connections N] [--listen-fd FD]...

With --listen-fd, it serves listening sockets it inherits instead of binding its own: the agent
binds 127.0.0.1:N and [::1]:N once and hands them to every run of the relay, so that a client
that connects while the relay (re)starts waits in the backlog instead of being refused, and no
other program of the sandbox can take the port meanwhile.

Threads: the main thread runs one epoll loop for every socket (accepts, connects, copies, timers);
the identify thread (relay_identify.py) finds the pid and uid behind each new connection
(sock_diag netlink, or /proc/net/tcp, for the client socket's inode and owner; then /proc/*/fd
for the process holding it), so that a slow /proc scan never stalls the copying. A connection
waits for its name at most IDENTIFY_WAIT; a name not found within IDENTIFY_BUDGET is sent as "-".

Memory is bounded: each direction of a connection holds at most one chunk; a side that does not
take what it is sent stops the reading of the other (backpressure). Connections are capped.
Standard library only; problems go to stderr, rate-limited, never one line per connection.
"""

import os
import sys
import select
import time
import _socket
import _thread
from _heapq import heappush, heappop

from .relay_identify import Identifier, Job, log
from .shared import bind_loopback

DEFAULT_PORT = 49990
DEFAULT_MAX_CONNECTIONS = 512
CHUNK = 1 << 16                  # the most one direction of a connection holds
CHUNKS_PER_TURN = 8              # reads per ready event before other connections get their turn
IDENTIFY_WAIT = 0.250            # a connection waits this long for its identity, then goes on without
CONNECT_RETRY_FIRST = 0.002      # the upstream's backlog is full: retry after this, doubling
CONNECT_RETRY_MAX = 0.050
CONNECT_GIVE_UP = 1.0            # ... and give up on the client after this
PARENT_CHECK = 1.0               # exit when the agent that started us is gone (tests; as init it takes us along)
FDS_RESERVED = 64                # file descriptors kept for listeners, epoll, eventfds, /proc reads

EPOLLIN = select.EPOLLIN
EPOLLOUT = select.EPOLLOUT
EPOLLERR = select.EPOLLERR
EAGAIN = 11
EINPROGRESS = 115
LINGER_RESET = (1).to_bytes(4, sys.byteorder) + (0).to_bytes(4, sys.byteorder)  # struct linger {1, 0}


# ---------------------------------------------------------------------------------------------
# Connections

class Flow:
    """One direction of a connection: reads src, writes dst, holds at most one chunk."""
    __slots__ = ("src", "dst", "pending", "eof", "shut", "enabled")

    def __init__(self, src, dst):
        self.src = src
        self.dst = dst
        self.pending = None     # memoryview of what dst has not taken yet
        self.eof = False        # src has ended
        self.shut = False       # ... and dst has been told (shutdown SHUT_WR)
        self.enabled = False    # reading src is allowed (after the preamble)

    def wants_read(self):
        return self.enabled and not self.eof and self.pending is None

    def pump(self):
        """Moves what it can without blocking. Returns False when a socket failed."""
        for _ in range(CHUNKS_PER_TURN):
            pending = self.pending
            if pending is not None:
                try:
                    n = self.dst.send(pending)
                except (BlockingIOError, InterruptedError):
                    return True
                except OSError:
                    return False
                if n < len(pending):
                    self.pending = pending[n:]
                    return True
                self.pending = None
            if self.eof:
                self.shut_dst()
                return True
            if not self.enabled:
                return True
            try:
                data = self.src.recv(CHUNK)
            except (BlockingIOError, InterruptedError):
                return True
            except OSError:
                return False
            if data:
                self.pending = memoryview(data)
            else:
                # The end is passed on now, not on a later turn: read on the turn's last read, it
                # would leave nothing pending and nothing to wait for, and no event would ever come
                # to pass it on (the receiver would wait for the end forever).
                self.eof = True
                self.shut_dst()
                return True
        return True

    def shut_dst(self):
        """Tells dst that src has ended (once), after everything src sent has been passed on."""
        if not self.shut:
            self.shut = True
            try:
                self.dst.shutdown(_socket.SHUT_WR)
            except OSError:
                pass  # dst already gone: the other direction finds out


class Conn:
    """A client connection and its upstream twin. Owned by the loop thread."""
    __slots__ = ("client", "upstream", "up", "down", "masks", "identity", "connected",
                 "open", "closed", "retry", "given_up_at", "family", "peer")

    def __init__(self, client, family, peer):
        self.client = client
        self.upstream = None
        self.up = None
        self.down = None
        self.masks = {}          # fd -> events registered with epoll (absent: not registered)
        self.identity = None     # (pid, uid) once known, or ("-", "-")
        self.connected = False
        self.open = False
        self.closed = False
        self.retry = CONNECT_RETRY_FIRST
        self.given_up_at = 0.0
        self.family = family
        self.peer = peer


class Relay:
    def __init__(self, port, upstream, max_connections, listen_fds=()):
        self.port = port
        self.listen_fds = listen_fds
        self.upstream_path = upstream
        self.max_connections = max_connections
        self.epoll = select.epoll()
        self.listeners = {}      # fd -> (socket, family, listen address)
        self.conns = {}          # fd -> Conn, for both of its sockets
        self.count = 0
        self.timers = []         # (when, seq, kind, conn)
        self.seq = 0
        self.identifier = Identifier()
        self.parent = os.getppid()

    # -- set-up ---------------------------------------------------------------------------------

    def listen(self):
        if self.listen_fds:
            self.inherit()
            return
        try:
            listeners = bind_loopback(self.port, _socket.SOCK_NONBLOCK)
        except OSError as e:
            raise SystemExit("stockade-relay: cannot listen on 127.0.0.1:%d: %s. Is another program using"
                             " the port? The agent's --egress-port chooses it." % (self.port, e.strerror))
        for sock, family, address in listeners:
            self.listeners[sock.fileno()] = (sock, family, address)
            self.epoll.register(sock.fileno(), EPOLLIN)


    def inherit(self):
        for fd in self.listen_fds:
            try:
                sock = _socket.socket(fileno=fd)
            except OSError as e:
                raise SystemExit("stockade-relay: --listen-fd %d is not an open socket: %s" % (fd, e.strerror))
            if sock.family not in (_socket.AF_INET, _socket.AF_INET6) or sock.type != _socket.SOCK_STREAM:
                raise SystemExit("stockade-relay: --listen-fd %d is not a TCP socket" % fd)
            os.set_inheritable(fd, False)  # ours alone from now on
            sock.setblocking(False)
            self.listeners[fd] = (sock, sock.family, sock.getsockname()[:2])
            self.epoll.register(fd, EPOLLIN)

    def limit_connections(self):
        """Two descriptors per connection: the cap must fit the open-files limit."""
        try:
            import resource
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
                try:
                    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
                    soft = hard
                except (OSError, ValueError):
                    pass
        except ImportError:
            return
        if soft != resource.RLIM_INFINITY:
            fit = max(1, (soft - FDS_RESERVED) // 2)
            if fit < self.max_connections:
                log("nofile", "the open-files limit (%d) allows %d connections, not %d"
                    % (soft, fit, self.max_connections))
                self.max_connections = fit

    # -- the loop -------------------------------------------------------------------------------

    def run(self):
        done = self.identifier.done
        self.epoll.register(done, EPOLLIN)
        _thread.start_new_thread(self.identifier.run, ())
        next_parent_check = time.monotonic() + PARENT_CHECK
        while True:
            now = time.monotonic()
            timeout = next_parent_check - now
            if self.timers:
                timeout = min(timeout, self.timers[0][0] - now)
            try:
                events = self.epoll.poll(max(timeout, 0.0))
            except InterruptedError:
                continue
            for fd, ev in events:
                conn = self.conns.get(fd)
                try:
                    if fd == done:
                        self.identified()
                    elif fd in self.listeners:
                        self.accept(*self.listeners[fd])
                    elif conn is not None and not conn.closed:
                        if ev & EPOLLERR and self.failed(conn, fd):
                            self.close(conn)
                        else:
                            self.pump(conn)
                except Exception as e:
                    self.contain(e, conn)
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                _, _, kind, conn = heappop(self.timers)
                try:
                    if not conn.closed and not conn.open:
                        if kind == "connect":
                            self.connect(conn)
                        elif conn.identity is None:  # "identify": go on without a name
                            conn.identity = ("-", "-")
                            self.maybe_open(conn)
                except Exception as e:
                    self.contain(e, conn)
            if now >= next_parent_check:
                next_parent_check = now + PARENT_CHECK
                if os.getppid() != self.parent:
                    return  # the agent is gone (as init, its end takes the sandbox with it anyway)

    def contain(self, error, conn):
        """A bug must cost one connection, not all of them (a crash would, and a restart)."""
        log("bug", "internal error: %r" % error)
        if conn is not None:
            try:
                self.close(conn)
            except Exception:
                pass

    @staticmethod
    def failed(conn, fd):
        """Whether the socket behind fd has an error. Asked rather than trusted: the event may be
        a stale one for a descriptor that a connection closed earlier in this round reused."""
        sock = conn.client if conn.client.fileno() == fd else conn.upstream
        try:
            return sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_ERROR) != 0
        except OSError:
            return True

    def timer(self, delay, kind, conn):
        self.seq += 1
        heappush(self.timers, (time.monotonic() + delay, self.seq, kind, conn))

    def accept(self, listener, family, address):
        for _ in range(64):
            try:
                fd, peer = listener._accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                # EMFILE and friends: the pending client stays queued until a descriptor frees up
                log("accept", "accept failed: %s" % e.strerror)
                return
            client = _socket.socket(family, _socket.SOCK_STREAM, 0, fd)
            if self.count >= self.max_connections:
                log("cap", "%d connections are open, the most allowed: refusing new ones" % self.count)
                reset(client)
                continue
            client.setblocking(False)
            try:
                client.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            except OSError:
                pass
            conn = Conn(client, family, peer)
            self.count += 1
            self.conns[client.fileno()] = conn
            self.connect(conn)
            if conn.closed:
                continue
            self.identifier.submit(Job(conn, family, peer, address))
            self.timer(IDENTIFY_WAIT, "identify", conn)

    def connect(self, conn):
        """Connects (or retries connecting) the upstream unix socket, without blocking."""
        if conn.upstream is None:
            try:
                conn.upstream = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC
                                               | _socket.SOCK_NONBLOCK)
            except OSError as e:
                log("socket", "cannot create a unix socket: %s" % e.strerror)
                self.close(conn, reset_client=True)
                return
            conn.given_up_at = time.monotonic() + CONNECT_GIVE_UP
        err = conn.upstream.connect_ex(self.upstream_path)
        if err == 0:
            conn.connected = True
            self.conns[conn.upstream.fileno()] = conn
            self.maybe_open(conn)
            return
        if err in (EAGAIN, EINPROGRESS) and time.monotonic() < conn.given_up_at:
            # The host's backlog is full: a unix socket says so at once instead of waiting.
            self.timer(conn.retry, "connect", conn)
            conn.retry = min(conn.retry * 2, CONNECT_RETRY_MAX)
            return
        log("upstream-%d" % err, "cannot reach the egress proxy at %s: %s. The sandbox has no network until"
            " the server binds it." % (self.upstream_path, os.strerror(err)))
        self.close(conn, reset_client=True)

    def identified(self):
        try:
            os.eventfd_read(self.identifier.done)
        except BlockingIOError:
            pass
        results = self.identifier.results
        while results:
            job = results.popleft()
            conn = job.conn
            if conn.closed or conn.identity is not None:
                continue
            conn.identity = ("-" if job.pid is None else job.pid, "-" if job.uid is None else job.uid)
            self.maybe_open(conn)

    def maybe_open(self, conn):
        """Once connected and named: the preamble goes first, then bytes flow both ways."""
        if conn.open or not conn.connected or conn.identity is None:
            return
        conn.open = True
        conn.up = Flow(conn.client, conn.upstream)
        conn.down = Flow(conn.upstream, conn.client)
        conn.up.pending = memoryview(("STOCKADE-RELAY 1 pid=%s uid=%s\n" % conn.identity).encode("ascii"))
        conn.up.enabled = True
        conn.down.enabled = True
        self.pump(conn)

    def pump(self, conn):
        if not conn.open:
            return
        if not conn.up.pump() or not conn.down.pump():
            self.close(conn)
            return
        if conn.up.shut and conn.down.shut:
            self.close(conn)
            return
        self.interest(conn, conn.client, (EPOLLIN if conn.up.wants_read() else 0)
                      | (EPOLLOUT if conn.down.pending is not None else 0))
        self.interest(conn, conn.upstream, (EPOLLIN if conn.down.wants_read() else 0)
                      | (EPOLLOUT if conn.up.pending is not None else 0))

    def interest(self, conn, sock, mask):
        """Registers what the loop waits for on sock; a socket waited on for nothing is removed,
        so that its hang-up is not reported over and over while the other side drains."""
        fd = sock.fileno()
        current = conn.masks.get(fd, 0)
        if current == mask:
            return
        if mask == 0:
            self.epoll.unregister(fd)
            del conn.masks[fd]
        elif current == 0:
            self.epoll.register(fd, mask)
            conn.masks[fd] = mask
        else:
            self.epoll.modify(fd, mask)
            conn.masks[fd] = mask

    def close(self, conn, reset_client=False):
        if conn.closed:
            return
        conn.closed = True
        self.count -= 1
        for sock in (conn.client, conn.upstream):
            if sock is None:
                continue
            fd = sock.fileno()
            if fd in conn.masks:
                self.epoll.unregister(fd)
            if self.conns.get(fd) is conn:
                del self.conns[fd]
            if sock is conn.client and reset_client:
                reset(sock)
            else:
                sock.close()
        conn.masks = {}


def reset(sock):
    """Closes with a reset, so that the client fails at once instead of waiting for an answer."""
    try:
        sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_LINGER, LINGER_RESET)
    except OSError:
        pass
    sock.close()


USAGE = "usage: relay --upstream PATH [--listen-port N] [--max-connections N] [--listen-fd FD]..."


def parse_args(argv):
    port = DEFAULT_PORT
    upstream = None
    max_connections = DEFAULT_MAX_CONNECTIONS
    listen_fds = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        value = argv[i + 1] if i + 1 < len(argv) else None
        if value is None:
            raise SystemExit("stockade-relay: %s needs a value\n%s" % (arg, USAGE))
        if arg == "--listen-port":
            port = int_arg(arg, value, 1, 65535)
        elif arg == "--upstream":
            if not value.startswith("/") or "\0" in value or len(value.encode()) > 107:
                raise SystemExit("stockade-relay: --upstream must be an absolute unix socket path of at most"
                                 " 107 bytes\n" + USAGE)
            upstream = value
        elif arg == "--max-connections":
            max_connections = int_arg(arg, value, 1, 65536)
        elif arg == "--listen-fd" and len(listen_fds) < 8:
            listen_fds.append(int_arg(arg, value, 3, 1 << 20))
        else:
            raise SystemExit("stockade-relay: unknown argument %r\n%s" % (arg, USAGE))
        i += 2
    if upstream is None:
        raise SystemExit("stockade-relay: --upstream PATH is required\n" + USAGE)
    return port, upstream, max_connections, tuple(listen_fds)


def int_arg(name, value, lo, hi):
    if not value.isdigit() or not lo <= int(value) <= hi:
        raise SystemExit("stockade-relay: %s must be an integer in %d..%d\n%s" % (name, lo, hi, USAGE))
    return int(value)


def main(argv):
    port, upstream, max_connections, listen_fds = parse_args(argv)
    relay = Relay(port, upstream, max_connections, listen_fds)
    relay.listen()
    relay.limit_connections()
    relay.run()
