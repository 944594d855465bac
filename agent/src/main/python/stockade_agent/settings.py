"""The agent's settings: its command line (main.parse_args sets them once, before the socket
listens; other modules read them as settings.NAME when they act, never copy them at import), the
sandbox's accounts and where the agent's directory is."""

import os

from .protocol import AgentError
from .shared import write_log

BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# The directory of the agent's programs (/opt/stockade in a sandbox): the package's parent. The
# kernel, the relay and the CA bundle lie there.
INSTALL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name -> (uid, gid, home); the sandbox's fixed accounts (E2B's convention). --home changes a home.
USERS = {"user": (1000, 1000, "/home/user"), "root": (0, 0, "/root")}
SWITCH_USER = True               # cleared by --no-switch-user
OOM_COUNTER_FILES = ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control")
KERNEL_PATH = None               # --kernel PATH; default: "kernel" in INSTALL_DIR
WARM_DEFAULT = False             # --warm-default: start the default context at start-up
PRELOAD = ()                     # --preload: modules the default context's kernel imports when it starts


def log(message):
    write_log("stockade-agent", message)


def lookup_user(req):
    name = req.get("user") or "user"
    if not isinstance(name, str) or name not in USERS:
        raise AgentError("invalid_argument", "unknown user %r: use \"user\" or \"root\"" % (name,))
    uid, gid, home = USERS[name]
    if not SWITCH_USER:
        uid, gid = os.getuid(), os.getgid()
    return name, uid, gid, home
