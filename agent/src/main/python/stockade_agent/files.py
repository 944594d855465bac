"""Files: the stat, list, mkdir, move, remove, read and write operations. Every path resolves
inside the sandbox's own mount namespace: symlinks lead wherever they lead within the sandbox,
which is the sandbox's own business. main runs these operations with the filesystem ids of the
user they are asked for (credentials.run_as), so the kernel checks that user's permissions."""

import grp
import os
import pwd
import stat

from . import file_metadata
from . import settings
from .protocol import (AgentError, CHUNK, DATA, DATA_TIMEOUT, os_error, receiving, req_int, resolve, send_frame,
                       send_items, send_json)
from .settings import lookup_user
from .shared import Lazy

shutil = Lazy("shutil")  # for moves across filesystems and removing trees only

LIST_LIMIT_MAX = 1_000_000


class Names:
    """uid/gid -> name lookups, cached for one request."""

    def __init__(self):
        self.users = {}
        self.groups = {}

    def user(self, uid):
        return self._name(self.users, uid, lambda: pwd.getpwuid(uid).pw_name)

    def group(self, gid):
        return self._name(self.groups, gid, lambda: grp.getgrgid(gid).gr_name)

    @staticmethod
    def _name(cache, number, lookup):
        name = cache.get(number)
        if name is None:
            try:
                name = lookup()
            except KeyError:
                name = str(number)  # no such account: the number itself
            cache[number] = name
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
    found = {"name": os.path.basename(path) or "/", "path": path, "type": kind, "size": st.st_size,
             "mode": stat.S_IMODE(st.st_mode), "permissions": stat.filemode(st.st_mode),
             "owner": names.user(st.st_uid), "group": names.group(st.st_gid),
             "modifiedMillis": st.st_mtime_ns // 1_000_000, "symlinkTarget": target}
    if kind in ("file", "dir"):
        metadata = file_metadata.read(path)
        if metadata:
            found["metadata"] = metadata
    return found


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
        if settings.SWITCH_USER:
            os.lchown(directory, uid, gid)
    return created


def make_parent_as_root(path, uid, gid):
    """As E2B's envd does for a file written as a user: when the user may not create the first
    missing directory of path because its existing parent is not theirs (/0 under /), the agent
    creates that one directory as the sandbox's root and gives it to the user, who creates the rest.
    Only where the user can already reach the parent (a directory they may not search, like /root,
    stays closed), only for a parent whose path has no symbolic link, and through a descriptor of
    that parent, so nothing the sandbox's user swaps meanwhile redirects root's mkdir. Returns
    whether it created the directory. Runs on the request's thread, inside credentials.run_as."""
    path = os.path.normpath(path)
    parent, first = path, None
    while True:
        try:
            os.lstat(parent)
            break
        except FileNotFoundError:
            up = os.path.dirname(parent)
            if up == parent:
                return False
            parent, first = up, os.path.basename(parent)
        except OSError:
            return False  # a directory on the way the user may not search: no help past it
    if first is None:
        return False  # nothing is missing: the refusal was about something else
    # As the user: the parent is searchable (a missing entry, not a refusal, answers the lookup).
    try:
        os.lstat(os.path.join(parent, first))
        return False
    except FileNotFoundError:
        pass
    except OSError:
        return False

    def create():
        fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            if os.readlink("/proc/self/fd/%d" % fd) != parent:
                return False  # a link on the way: the user's own mkdir already answered
            try:
                os.mkdir(first, 0o755, dir_fd=fd)
            except FileExistsError:
                return True  # someone else created it meanwhile: the user's retry decides
            os.chown(first, uid, gid, dir_fd=fd, follow_symlinks=False)
            return True
        finally:
            os.close(fd)

    from .credentials import as_root
    return as_root(uid, gid, create)


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
        if _is_agent_stdio(st):
            raise AgentError("invalid_argument", "cannot read %s: it is the agent's own output, not a file of the sandbox" % path)
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


def _is_agent_stdio(st):
    """Whether st is the agent's stdout or stderr (/proc/self/fd/1 names the agent's own): its log,
    which the runtime writes on the host and which carries the runtime's output, is the operator's
    (issue 15, item 4), not a file of the sandbox."""
    for own in (1, 2):
        try:
            o = os.fstat(own)
        except OSError:
            continue
        if (o.st_dev, o.st_ino) == (st.st_dev, st.st_ino):
            return True
    return False


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
    metadata = file_metadata.from_request(req)
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
        try:
            make_dirs(directory, uid, gid)
        except PermissionError:
            if not (settings.SWITCH_USER and uid != 0 and make_parent_as_root(directory, uid, gid)):
                raise
            make_dirs(directory, uid, gid)
        tmp = temp_name(directory, path, existing is None)
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
            # On the new file, before its mode and owner become the replaced file's: the user who
            # created it may set its attributes; the file it replaces takes its own along.
            file_metadata.apply(fd, metadata, path)
            if existing is not None and stat.S_ISREG(existing.st_mode):
                os.fchmod(fd, stat.S_IMODE(existing.st_mode))
                if settings.SWITCH_USER:
                    os.fchown(fd, existing.st_uid, existing.st_gid)
            elif settings.SWITCH_USER:
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


def temp_name(directory, path, new):
    """The temporary file a write fills before renaming it over path: hidden, unique, and telling
    whether path is new ("n") or replaced ("r"), so that a directory watcher reports the rename as
    the write it is (watch.agent_temp reads it)."""
    return "%s/.%s.%s%s.stockade-tmp" % (directory, os.path.basename(path)[:200], "n" if new else "r",
                                         os.urandom(6).hex())


def _unlink_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass
