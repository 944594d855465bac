"""Who is connecting to the egress relay (relay.py): its identify thread, which finds the pid and
uid behind each new connection so that the relay can name them to the host. The kernel's socket
table maps the client's end (its address is our peer address) to the socket's owner uid and
inode; the process whose fd table holds socket:[inode] is the pid. The table is asked through
sock_diag netlink (an exact lookup, ~20 us); /proc/net/tcp is the fallback: reading it walks the
whole established-hash of the kernel (~4 ms on a host). The thread switches its own filesystem
uid to read other users' /proc/PID/fd."""

import os
import sys
import time
import _socket
import _struct
from _collections import deque

from .shared import libc, set_fs_ids, write_log

IDENTIFY_BUDGET = 0.020          # the /proc/*/fd scan of one batch gives up after this (pid "-")
LOG_EVERY = 60.0                 # the same problem is logged at most once per this

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 1
NLMSG_ERROR = 2
IPPROTO_TCP = 6
NLMSG_HEADER = "=IHHII"
DIAG_REQUEST = "=BBBxI"
DIAG_TIMEOUT = 0.1
V4_MAPPED = bytes(10) + b"\xff\xff"

_logged = {}


def log(key, message):
    """Writes message to stderr unless the same key was logged less than LOG_EVERY ago (the
    relay's log, for both of its threads: never one line per connection)."""
    now = time.monotonic()
    last = _logged.get(key)
    if last is not None and now - last < LOG_EVERY:
        return
    _logged[key] = now
    write_log("stockade-relay", message)


class SockDiag:
    """Exact TCP socket lookups over NETLINK_SOCK_DIAG (the identify thread's own socket)."""

    def __init__(self):
        self.sock = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC, NETLINK_SOCK_DIAG)
        self.sock.settimeout(DIAG_TIMEOUT)
        self.sock.bind((0, 0))
        self.seq = 0

    def lookup(self, family, local, remote):
        """(uid, inode) of the socket whose local end is local=(host, port) and remote end remote,
        or None if there is none. Raises OSError if the kernel does not answer such requests."""
        self.seq = (self.seq + 1) & 0xFFFFFFFF
        src = _socket.inet_pton(family, local[0]).ljust(16, b"\0")
        dst = _socket.inet_pton(family, remote[0]).ljust(16, b"\0")
        sockid = (local[1].to_bytes(2, "big") + remote[1].to_bytes(2, "big") + src + dst
                  + _struct.pack("=III", 0, 0xFFFFFFFF, 0xFFFFFFFF))  # any interface, no cookie
        body = _struct.pack(DIAG_REQUEST, family, IPPROTO_TCP, 0, 0xFFFFFFFF) + sockid
        header = _struct.pack(NLMSG_HEADER, 16 + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, self.seq, 0)
        self.sock.send(header + body)
        for _ in range(16):  # answers to earlier, timed-out requests may still be queued
            data = self.sock.recv(8192)
            if len(data) < 20:
                continue
            length, kind, _, seq, _ = _struct.unpack_from(NLMSG_HEADER, data)
            if seq != self.seq:
                continue
            if kind == NLMSG_ERROR:
                err = -_struct.unpack_from("=i", data, 16)[0]
                if err == 2:  # ENOENT: no such socket (it closed meanwhile)
                    return None
                raise OSError(err, os.strerror(err))
            # A dual-stack client (Java's default) has an AF_INET6 socket with ::ffff:a.b.c.d
            # addresses: the kernel finds it for an IPv4 question and answers in its own terms.
            if (kind != SOCK_DIAG_BY_FAMILY or len(data) < 88 or data[20:24] != sockid[:4]
                    or data[24:40] not in (src, V4_MAPPED + src[:4])):
                return None
            uid, inode = _struct.unpack_from("=II", data, 80)
            return (uid, inode) if inode else None
        return None


def proc_net_address(family, host, port):
    """host:port as /proc/net/tcp{,6} prints it: the address's 32-bit words in host byte order."""
    raw = _socket.inet_pton(family, host)
    words = "".join("%08X" % int.from_bytes(raw[i:i + 4], sys.byteorder) for i in range(0, len(raw), 4))
    return ("%s:%04X" % (words, port)).encode("ascii")


def find_socket(table, local, remote):
    """(uid, inode) of the socket from local to remote in a /proc/net/tcp table, or None.

    A TIME_WAIT leftover of an earlier connection may share the addresses: it has inode 0."""
    needle = b" " + local + b" " + remote + b" "
    start = 0
    while True:
        at = table.find(needle, start)
        if at < 0:
            return None
        end = table.find(b"\n", at)
        fields = table[at:end if end >= 0 else len(table)].split()
        start = at + len(needle)
        # local rem st tx:rx tr:when retrnsmt uid timeout inode
        if len(fields) >= 9 and fields[8] != b"0":
            try:
                return int(fields[6]), int(fields[8])
            except ValueError:
                return None


class Job:
    """One connection to identify: the client's end (local) and ours (remote), both (host, port);
    uid and pid are filled in by the identify thread."""
    __slots__ = ("conn", "family", "local", "remote", "uid", "inode", "pid")

    def __init__(self, conn, family, local, remote):
        self.conn = conn
        self.family = family
        self.local = local[:2]
        self.remote = remote[:2]
        self.uid = None
        self.inode = None
        self.pid = None


class Identifier:
    """The identify thread: takes batches of jobs from the loop and hands results back through an
    eventfd. One /proc scan serves every job of a batch, so a burst of connections costs one scan."""

    def __init__(self):
        self.jobs = deque()
        self.results = deque()
        self.work = os.eventfd(0, os.EFD_CLOEXEC)
        self.done = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self.libc = None
        self.diag = None
        self.fsuid = 0
        self.fsgid = 0
        self.recent = deque(maxlen=8)   # pids found lately: a program that connects often is found first
        self.me = os.getpid()

    def submit(self, job):
        """Called by the loop thread."""
        self.jobs.append(job)
        os.eventfd_write(self.work, 1)

    def run(self):
        if os.geteuid() == 0:
            try:
                self.libc = libc()
            except (ImportError, OSError) as e:
                log("ctypes", "cannot switch the filesystem uid (%s): only root's processes will be named" % e)
        try:
            self.diag = SockDiag()
        except OSError as e:
            log("diag", "sock_diag netlink is unavailable (%s): reading /proc/net/tcp instead" % e.strerror)
        while True:
            os.eventfd_read(self.work)
            batch = []
            while self.jobs:
                batch.append(self.jobs.popleft())
            if not batch:
                continue
            try:
                self.identify(batch)
            except Exception as e:  # a surprise in /proc must not end identification for good
                log("identify", "identifying connections failed: %r" % e)
            self.results.extend(batch)
            os.eventfd_write(self.done, 1)

    def identify(self, batch):
        tables = {}
        wanted = {}
        for job in batch:
            found = None
            missed = False
            if self.diag is not None:
                try:
                    found = self.diag.lookup(job.family, job.local, job.remote)
                    missed = found is None
                except TimeoutError:
                    pass  # this one stays unnamed; the next may be luckier
                except OSError as e:
                    log("diag", "sock_diag lookup failed (%s): reading /proc/net/tcp instead" % e.strerror)
                    self.diag.sock.close()
                    self.diag = None
            if found is None:  # no sock_diag, or it knows no such socket: ask /proc to be sure
                found = self.find_in_proc(tables, job.family, job.local, job.remote)
                if found is None and job.family == _socket.AF_INET:  # a dual-stack client
                    found = self.find_in_proc(tables, _socket.AF_INET6, ("::ffff:" + job.local[0], job.local[1]),
                                              ("::ffff:" + job.remote[0], job.remote[1]))
                if found is not None and missed:
                    # e.g. a kernel without inet_diag answers ENOENT to everything
                    log("diag", "sock_diag missed a socket that /proc/net/tcp has: reading /proc/net/tcp from now on")
                    self.diag.sock.close()
                    self.diag = None
            if found is not None:
                job.uid, job.inode = found
                wanted.setdefault(("socket:[%d]" % job.inode), []).append(job)
        if wanted:
            self.scan(wanted)

    @staticmethod
    def find_in_proc(tables, family, local, remote):
        name = "/proc/net/tcp6" if family == _socket.AF_INET6 else "/proc/net/tcp"
        table = tables.get(name)
        if table is None:
            table = tables[name] = read_file(name)
        return find_socket(table, proc_net_address(family, *local), proc_net_address(family, *remote))

    def scan(self, wanted):
        """Finds the processes that hold the wanted sockets, most likely first, within the budget."""
        deadline = time.monotonic() + IDENTIFY_BUDGET
        uids = {jobs[0].uid for jobs in wanted.values()}
        seen = set()
        try:
            for pid in self.candidates():
                if pid in seen or pid == self.me:
                    continue
                seen.add(pid)
                if time.monotonic() > deadline:
                    return
                try:
                    st = os.stat("/proc/%d" % pid)
                except OSError:
                    continue
                if st.st_uid not in uids:
                    continue
                self.switch(st.st_uid, st.st_gid)
                fd_dir = "/proc/%d/fd/" % pid
                try:
                    fds = os.listdir(fd_dir)
                except OSError:
                    continue
                for fd in reversed(fds):  # listed in ascending order; the newest socket is usually last
                    try:
                        target = os.readlink(fd_dir + fd)
                    except OSError:
                        continue
                    jobs = wanted.pop(target, None)
                    if jobs is not None:
                        for job in jobs:
                            job.pid = pid
                        if pid not in self.recent:
                            self.recent.append(pid)
                        if not wanted:
                            return
        finally:
            self.switch(0, 0)

    def candidates(self):
        """Pids to search: those found lately (a program that connects often), then every process,
        newest first (the client usually is a recent one). /proc is listed only if needed."""
        yield from list(reversed(self.recent))
        try:
            names = os.listdir("/proc")
        except OSError:
            return
        pids = sorted((int(n) for n in names if n.isdigit()), reverse=True)
        # Pids grow until they wrap around: those above the pid handed out last are older.
        last = last_pid()
        if last is not None:
            pids = [p for p in pids if p <= last] + [p for p in pids if p > last]
        yield from pids

    def switch(self, uid, gid):
        """Sets this thread's filesystem uid/gid: /proc/PID/fd of another user is readable only
        with matching ones (we lack CAP_SYS_PTRACE). Per thread, so the loop is not affected."""
        if self.libc is None or (uid == self.fsuid and gid == self.fsgid):
            return
        set_fs_ids(self.libc, uid, gid)
        self.fsuid, self.fsgid = uid, gid


def last_pid():
    """The pid this pid namespace handed out last (the last field of /proc/loadavg), or None."""
    try:
        return int(read_file("/proc/loadavg").rsplit(b" ", 1)[1])
    except (IndexError, ValueError):
        return None


def read_file(path):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return b""
    try:
        parts = []
        total = 0
        while total < (64 << 20):  # bounded, although the kernel writes this table
            part = os.read(fd, 1 << 17)
            if not part:
                break
            parts.append(part)
            total += len(part)
        return b"".join(parts)
    except OSError:
        return b""
    finally:
        os.close(fd)
