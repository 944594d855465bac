"""The agent's children, whatever they run: the tables by kind (user processes, kernels, relays),
the one reaper thread that waits for all of them, and how their ends are signalled and described.

Every table is guarded by LOCK; a child is registered under LOCK by whoever spawns it, and the
reaper reaps under LOCK, so a pid is never looked up (or signalled) after it was reused. Each
record has .status (None until reaped) and .exited(status), which the reaper calls under LOCK."""

import os
import resource
import signal
import threading
import _thread

from . import settings
from .protocol import AgentError

PIPE_READ = 1 << 16              # one read from a child's pipe
DRAIN_AFTER_EXIT = 0.1           # read what an exited child left in its pipes for at most this

LOCK = _thread.allocate_lock()   # guards the tables below, subscriber lists and end transitions
RUNNING = {}                     # pid -> processes.Proc
FINISHED = {}                    # pid -> processes.Proc, oldest first; ended a short while ago
KERNELS = {}                     # pid -> kernels.Kernel while it runs
RELAYS = {}                      # pid -> egress.Relay while it runs
CHILD_EVENT = None               # threading.Event set whenever a child is spawned (wakes the reaper)
_STARTED = _thread.allocate_lock()


def start_reaper():
    """Creates the reaper once; called by the warm-up and by whatever spawns a child."""
    global CHILD_EVENT
    with _STARTED:
        if CHILD_EVENT is None:
            CHILD_EVENT = threading.Event()
            threading.Thread(target=reaper, name="reaper", daemon=True).start()


def reaper():
    """Reaps every child. WNOWAIT first, so the pid cannot be reused before its record is
    marked; then waitpid under LOCK, which spawn also holds until the record is registered."""
    while True:
        try:
            result = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT)
        except ChildProcessError:
            CHILD_EVENT.wait(1.0)
            CHILD_EVENT.clear()
            continue
        except InterruptedError:
            continue
        if result is None:
            continue
        pid = result.si_pid
        with LOCK:
            try:
                _, status = os.waitpid(pid, 0)
            except ChildProcessError:
                continue  # Popen reaped a child whose exec failed
            proc = RUNNING.get(pid) or KERNELS.get(pid) or RELAYS.get(pid)
            if proc is not None and proc.status is None:
                proc.exited(status)


def wake(fd):
    """Wakes the thread waiting on eventfd fd (closed meanwhile: nobody waits any more)."""
    try:
        os.eventfd_write(fd, 1)
    except OSError:
        pass


def signal_group(pid, signo):
    """Signals the process group led by pid (every command leads its own), or the process alone."""
    try:
        os.killpg(pid, signo)
    except ProcessLookupError:
        try:
            os.kill(pid, signo)
        except ProcessLookupError:
            pass
    except PermissionError:
        pass


def oom_kills():
    """The memory cgroup's OOM-kill counter, or None when this host does not expose it."""
    for path in settings.OOM_COUNTER_FILES:
        try:
            with open(path, "rb") as f:
                for line in f.read().split(b"\n"):
                    if line.startswith(b"oom_kill "):
                        return int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return None


def describe_duration(millis):
    if millis < 1000:
        return "%d ms" % millis
    seconds = millis / 1000.0
    if seconds == int(seconds):
        return "%d s" % seconds
    return "%.1f s" % seconds


def describe_bytes(n):
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return "%d %s" % (n // size, unit)
    return "%d bytes" % n


def signal_name(signo):
    try:
        return signal.Signals(signo).name
    except ValueError:
        return "SIG%d" % signo


def set_oom_score_adj(pid):
    """The kernel's OOM killer should pick user code, not the agent."""
    try:
        fd = os.open("/proc/%d/oom_score_adj" % pid, os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.write(fd, b"1000")
    except OSError:
        pass
    finally:
        os.close(fd)


# Headroom. The sandbox's pids are two limits (docs/runtime-runc.md "Headroom"): RLIMIT_NPROC, which
# the runtime sets on the agent and every process inherits, bounds the tasks of each sandbox user
# (the kernel counts them per real uid, and the sandbox's uids are its own host range); the cgroup
# allows a reserve more, for the agent. So user code of uid 1000 at its limit is refused further
# forks, while the agent (uid 0) still runs commands, file operations and kills. Root's processes
# share uid 0 with the agent: they get a lower limit than the agent's, which leaves the agent
# ROOT_HEADROOM tasks of its own even when root's code takes all it may. Nobody in the sandbox can
# raise a hard limit (that needs CAP_SYS_RESOURCE in the host's namespace).
ROOT_HEADROOM = 16               # the agent's tasks beyond root's processes (at most a quarter of pids)


def user_pids():
    """The process limit of each sandbox user (the agent's RLIMIT_NPROC), or None when unlimited."""
    hard = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    return None if hard == resource.RLIM_INFINITY else hard


def root_pids():
    """The process limit given to root's processes, or None when the agent has none to share."""
    pids = user_pids()
    if pids is None:
        return None
    return max(1, pids - min(ROOT_HEADROOM, pids // 4))


def preexec_for(uid, then=None):
    """The preexec_fn of a child that runs as uid: for root, one that lowers its process limit
    below the agent's (then calls then, if any); for other users, then (they inherit theirs)."""
    limit = root_pids() if uid == 0 and settings.SWITCH_USER else None
    if limit is None:
        return then

    def lower():
        resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))
        if then is not None:
            then()
    return lower


def spawn_refused(what, user):
    """The error for a spawn the process limit refused (EAGAIN): the user's processes are at it."""
    if user == "root":
        limit = root_pids()
        return AgentError("resource_exhausted", "cannot run %s: root's processes have reached their limit of %s processes"
                          " and threads (the sandbox's pids, less the agent's reserve); end some of them (a kill"
                          " through the API needs no new process)" % (what, limit))
    return AgentError("resource_exhausted", "cannot run %s: user %s has reached the sandbox's process limit of %s"
                      " processes and threads; end some of its processes (a kill through the API, or a command as"
                      " root, needs none of them)" % (what, user, user_pids()))
