"""Acting as a sandbox user from the agent, which runs as the sandbox's root: spawning a process
with the user's ids, and running a file operation with the user's permissions. Both switch the
ids of the calling thread only (the connection's), never of the whole agent."""

import os
import subprocess

from . import settings
from .children import signal_group
from .protocol import AgentError
from .shared import Lazy, libc as _libc, set_fs_ids

ctypes = Lazy("ctypes")  # only where the agent switches users (as root)

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
        if numbers and settings.SWITCH_USER and os.getresuid() == (0, 0, 0) and os.getresgid() == (0, 0, 0):
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


# File operations act with the permissions of the user they are asked for: the handling thread
# switches its filesystem uid/gid (setfsuid/setfsgid are per thread, unlike setuid in glibc), which
# also drops the agent's file capabilities for the duration, and switches back afterwards.
_FSUID_WORKS = None  # whether setfsuid/setfsgid switch this thread (gVisor 2022 does not implement them)


def run_as(uid, gid, fn):
    global _FSUID_WORKS
    libc = _libc()
    if _FSUID_WORKS is not False:
        set_fs_ids(libc, uid, gid)
        switched = libc.setfsuid(-1) == uid  # setfsuid(-1) reads the current value
        if switched or _FSUID_WORKS:
            try:
                if not switched:
                    raise AgentError("internal", "could not switch the filesystem uid to %d" % uid)
                _FSUID_WORKS = True
                return fn()
            finally:
                set_fs_ids(libc, 0, 0)
        _FSUID_WORKS = False
        set_fs_ids(libc, 0, 0)
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


def as_root(uid, gid, fn):
    """Inside run_as(uid, gid, ...): runs fn with the agent's own (the sandbox root's) ids, then
    takes the user's again. For the one step E2B's envd does as root on a user's behalf: creating
    a missing parent directory of a file the user writes (files.make_parent_as_root)."""
    if uid == 0 or not settings.SWITCH_USER:
        return fn()
    libc = _libc()
    if _FSUID_WORKS:
        set_fs_ids(libc, 0, 0)
        try:
            return fn()
        finally:
            set_fs_ids(libc, uid, gid)
            if libc.setfsuid(-1) != uid:
                raise AgentError("internal", "could not switch the filesystem uid back to %d" % uid)
    creds = thread_creds()
    if creds is None:
        raise AgentError("internal", "cannot act as root: neither setfsuid nor per-thread ids work here")
    libc, (nr_setgroups, nr_setresgid, nr_setresuid), _, _ = creds
    long = ctypes.c_long
    keep = long(-1)
    if (libc.syscall(long(nr_setresuid), keep, long(0), keep) != 0
            or libc.syscall(long(nr_setresgid), keep, long(0), keep) != 0):
        raise AgentError("internal", "could not switch to root (errno %d)" % ctypes.get_errno())
    try:
        return fn()
    finally:
        if (libc.syscall(long(nr_setresgid), keep, long(gid), keep) != 0
                or libc.syscall(long(nr_setresuid), keep, long(uid), keep) != 0):
            raise AgentError("internal", "could not switch back to uid %d (errno %d)" % (uid, ctypes.get_errno()))
