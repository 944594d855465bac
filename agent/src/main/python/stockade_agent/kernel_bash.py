"""The kernel of a bash code context (E2B's `language: 'bash'`): kernel.py runs this instead of its
Python runners when started with --language bash.

One bash process lives as long as the kernel, so variables, functions and the working directory
persist from cell to cell, as in the bash kernel of E2B's template. bash reads a small driver
script from a pipe; each cell goes to a file of its own that the driver sources, with stdin from
/dev/null (a command that reads stdin must not eat the driver), and then the driver writes the
cell's exit status, one line, to a status pipe only the driver writes to. bash's stdout and stderr
are the kernel's (the agent's pipes), so output streams as it comes. Per-cell variables are
exported before the cell and afterwards set back to the kernel's own value, or unset (as E2B's
server does with its export/unset snippets).

Interrupts: the agent sends SIGINT to the kernel's process group. This program ignores it; the
running command dies of it, and bash's INT trap returns from the sourced cell (status 130), so the
cell ends there and the shell's state is kept. A cell that ends bash (`exit`) ends the kernel: the
agent then reports the context's state lost and starts a new one.

Runs as the context's user; the driver's status line is trusted no more than the rest of the
kernel (user code can write to it): at worst a cell ends early."""

import os
import re
import shlex
import signal
import subprocess
import tempfile

from . import kernel_events as events
from .kernel_events import STATE, publish_error

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class BashRunner:
    def __init__(self):
        self.status_r, status_w = os.pipe()
        self.dir = tempfile.mkdtemp(prefix="stockade-bash-")
        # SIGINT has Python's handler here, which exec resets to the default: bash can trap it.
        self.bash = subprocess.Popen(["/bin/bash", "--noprofile", "--norc"], stdin=subprocess.PIPE,
                                     pass_fds=(status_w,), close_fds=True)
        os.close(status_w)
        self.status_w = status_w  # its number inside bash
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.status = os.fdopen(self.status_r, "rb", buffering=0)
        self._send("trap 'return 130 2>/dev/null' INT\n")
        self._report()
        if self._read_status() is None:
            raise RuntimeError("bash did not start")

    def _send(self, text):
        self.bash.stdin.write(text.encode("utf-8", "surrogateescape"))
        self.bash.stdin.flush()

    def _report(self):
        self._send("builtin printf '%%s\\n' \"$__stockade_status\" >&%d\n" % self.status_w)

    def _read_status(self):
        line = b""
        while not line.endswith(b"\n"):
            part = self.status.read(1)
            if not part:
                return None
            line += part
        return line.decode("ascii", "replace").strip()

    def run(self, code, envs):
        """Runs one cell; returns its exit status, or None when bash is gone."""
        fd, path = tempfile.mkstemp(dir=self.dir, suffix=".sh")
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(code)
            if not code.endswith("\n"):
                f.write("\n")
        names = [k for k in envs if NAME.match(k)]
        before = "".join("export %s=%s\n" % (k, shlex.quote(envs[k])) for k in names)
        after = "".join(("export %s=%s\n" % (k, shlex.quote(os.environ[k]))) if k in os.environ
                        else "unset %s\n" % k for k in names)
        try:
            self._send("%s{ builtin source %s ; } < /dev/null\n__stockade_status=$?\n%s"
                       % (before, shlex.quote(path), after))
            self._report()
            status = self._read_status()
        except (BrokenPipeError, OSError):
            status = None
        finally:
            try:
                os.unlink(path)
            except OSError:
                pass
        if status is None:
            return None
        try:
            return int(status)
        except ValueError:
            return 1


def execute(runner, req):
    STATE.errored = False
    status = runner.run(events.cell_code(req), events.cell_envs(req))
    events.flush_std()
    if status is None:
        raise SystemExit(1)  # bash exited: the agent reports the lost state and starts a new kernel
    if status != 0:
        # As E2B's bash kernel reports a failing cell: an error whose value is the exit status.
        publish_error("", str(status), "")
    return "error" if STATE.errored else "ok"
