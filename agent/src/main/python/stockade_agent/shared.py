"""Helpers that the agent, the kernel and the relay all use: each program imports this module
rather than carrying its own copy. Builtin modules only at import time, because the agent imports
it before its socket listens (start-up is on the create path)."""

import os
import sys
import _socket

PRELOAD_MAX_MODULES = 64         # --preload (agent and kernel): at most this many names,
PRELOAD_MAX_NAME = 200           # each at most this long (characters)


class Lazy:
    """A module imported on first use, so that start-up pays only for what it needs: one of the
    standard library or one of this package ("stockade_agent.children")."""

    def __init__(self, name):
        self._name = name
        self._module = None

    def __getattr__(self, attr):
        module = self._module
        if module is None:
            __import__(self._name)
            module = self._module = sys.modules[self._name]
        return getattr(module, attr)


def write_log(program, message):
    """One line on stderr, prefixed with the program's name and pid; never fails."""
    try:
        os.write(2, ("%s[%d]: %s\n" % (program, os.getpid(), message)).encode("utf-8", "replace"))
    except OSError:
        pass


def module_names(value):
    """--preload's comma-separated module names as a tuple (duplicates dropped), or None unless
    each is a dotted identifier (ASCII) and they are within bounds."""
    names = value.split(",")
    if len(names) > PRELOAD_MAX_MODULES:
        return None
    for name in names:
        if not 0 < len(name) <= PRELOAD_MAX_NAME:
            return None
        if not all(part.isascii() and part.isidentifier() for part in name.split(".")):
            return None
    return tuple(dict.fromkeys(names))


_LIBC = None


def libc():
    """The C library through ctypes (imported on first use), with errno kept for ctypes.get_errno."""
    global _LIBC
    if _LIBC is None:
        import ctypes
        _LIBC = ctypes.CDLL(None, use_errno=True)
    return _LIBC


def set_fs_ids(c, uid, gid):
    """Sets the calling thread's filesystem uid and gid (setfsuid/setfsgid are per thread, unlike
    setuid in glibc), in the order that keeps the second call allowed: back to uid 0 first, away
    from it last. c is libc(). The caller checks whether it took (setfsuid(-1) reads it back)."""
    if uid == 0:
        c.setfsuid(0)
        c.setfsgid(gid)
    else:
        c.setfsgid(gid)
        c.setfsuid(uid)


def bind_loopback(port, flags=0):
    """Listening TCP sockets on 127.0.0.1:port and, where the namespace has IPv6 loopback,
    [::1]:port (IPv6 only, so the two never collide), as (socket, family, (host, port)) tuples;
    flags are added to the socket type (SOCK_NONBLOCK). Raises the OSError of 127.0.0.1, having
    closed whatever it opened; a failing ::1 is left out."""
    listeners = []
    for family, host in ((_socket.AF_INET, "127.0.0.1"), (_socket.AF_INET6, "::1")):
        sock = None
        try:
            sock = _socket.socket(family, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC | flags)
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
            if family == _socket.AF_INET6:
                sock.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_V6ONLY, 1)
            sock.bind((host, port))
            sock.listen(1024)
        except OSError:
            if sock is not None:
                sock.close()
            if family == _socket.AF_INET6:
                continue  # no IPv6 loopback here: IPv4 only
            for other, _, _ in listeners:
                other.close()
            raise
        listeners.append((sock, family, (host, port)))
    return listeners
