"""Terminals: the pseudo-terminal a process started with `pty` runs on (see processes.py, which
spawns it, pumps its master and serves its input, resize and signal operations). Called on the
connection thread that spawns or resizes, except take_terminal, which runs in the child."""

import fcntl
import os
import struct
import termios

from .protocol import AgentError, os_error

PTY_MAX_SIZE = 9999              # columns and rows of a terminal


def pty_size(value):
    """The (cols, rows) of a request's "pty": {"cols": C, "rows": R}; None when absent."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise AgentError("invalid_argument", "pty must be an object with cols and rows")
    size = []
    for name in ("cols", "rows"):
        n = value.get(name)
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= PTY_MAX_SIZE:
            raise AgentError("invalid_argument", "pty.%s must be a whole number from 1 to %d" % (name, PTY_MAX_SIZE))
        size.append(n)
    return tuple(size)


def set_size(fd, size):
    cols, rows = size
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def open_terminal(proc, size, uid, gid):
    """Opens the process's pty pair: keeps the master (non-blocking) in proc.master, returns the
    slave, which belongs to the user as a login's terminal does."""
    try:
        master, slave = os.openpty()
    except OSError as e:
        raise os_error(e, "cannot open a pseudo-terminal")
    try:
        try:
            os.fchown(slave, uid, gid)
            os.fchmod(slave, 0o620)
        except PermissionError:
            pass  # an agent that cannot switch users runs everything as itself: the slave is its already
        set_size(master, size)
        os.set_blocking(master, False)
    except OSError as e:
        os.close(master)
        os.close(slave)
        raise os_error(e, "cannot set up the pseudo-terminal")
    proc.master = master
    return slave


def take_terminal():
    """Runs in the child between setsid and exec (as the user): the pty on fd 0 becomes the new
    session's controlling terminal, so that job control, ^C and SIGWINCH work."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def session_members(sid):
    """The pids of the processes in session sid (a terminal's shell and every job it started)."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 3 and fields[3] == b"%d" % sid:
            pids.append(int(name))
    return pids
