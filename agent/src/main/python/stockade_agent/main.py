"""The agent's start and its connections: the command line, the socket, the table of operations
and the thread per connection that reads one request and runs it. The entry program "agent" calls
main(); docs/agent-protocol.md is the contract with the host.

Runs as the container's init (PID 1) or as an ordinary process in tests:

    /usr/bin/python3 -I -S /opt/stockade/agent --socket /run/stockade/agent.sock
        [--home NAME=DIR]...   override a user's home directory (tests, unusual templates)
        [--no-switch-user]     run every process as the agent's own uid/gid; required when the
                               agent is not root (tests on a developer machine)
        [--oom-counter FILE]   where to read the memory cgroup's oom_kill counter, when it is not
                               at the standard places inside the sandbox (tests, no cgroup namespace)
        [--kernel PATH]        the interpreter kernel of code contexts (default: "kernel" in the
                               agent's directory, which is how /opt/stockade is laid out)
        [--warm-default]       start the default code context right after start-up (pre-warming)
        [--preload MODULES]    comma-separated modules the default context's kernel imports
                               before its first cell (e.g. numpy,pandas,matplotlib.pyplot)
        [--egress PATH]        the host's egress proxy socket: start the relay ("relay" in the
                               agent's directory) on loopback and point every process's HTTP(S)_PROXY at it
        [--egress-port N]      the relay's loopback port (default 49990)

Only builtin modules before the socket listens (every module of the package keeps to that at
import time): json, subprocess and friends are imported by a warm-up thread afterwards, because
start-up is on the create path. The egress relay, if any, is spawned by its own supervisor
thread, so the socket never waits for it.
"""

import os
import sys
import select
import _socket
import _signal
import _thread

from . import egress, settings
from .protocol import AgentError, ProtocolError, J, REQUEST_TIMEOUT, read_frame, send_frame, send_json
from .settings import USERS, log, lookup_user
from .shared import PRELOAD_MAX_MODULES, PRELOAD_MAX_NAME, Lazy, libc, module_names

json = Lazy("json")
children = Lazy(__package__ + ".children")  # not needed before the socket listens

VERSION = "0.1.0"
PROTOCOL = 1

HELLO_REQUEST = b'{"op":"hello"}'


def hello_answer():
    """hello's answer, formatted by hand: it is the readiness probe on the create path."""
    return ('{"version":"%s","protocol":%d,"pid":%d,"init":%s,"uid":%d,"switchUser":%s,"python":"%s"}' % (
        VERSION, PROTOCOL, os.getpid(), "true" if os.getpid() == 1 else "false", os.getuid(),
        "true" if settings.SWITCH_USER else "false", sys.version.split()[0])).encode()


def op_hello(sock, req):
    send_frame(sock, J, hello_answer())


# File operations act with the permissions of the user they are asked for (credentials.run_as,
# imported like the operations' modules).
FILE_OPS = frozenset(("stat", "list", "mkdir", "move", "remove", "read", "write", "watch"))

# Every operation: its name on the wire -> the module of this package whose function op_NAME runs
# it. Start-up imports none of them: processes is imported by the warm-up thread once the socket
# listens, the others by the first request that needs them (see warm_up).
OPS = {"hello": "main",
       "exec": "processes", "attach": "processes", "ps": "processes", "input": "processes",
       "close_stdin": "processes", "signal": "processes", "resize": "processes",
       "stat": "files", "list": "files", "mkdir": "files", "move": "files", "remove": "files", "read": "files",
       "write": "files", "watch": "watch", "watcher_create": "watch", "watcher_events": "watch",
       "watcher_remove": "watch",
       "context_create": "contexts", "context_list": "contexts", "context_delete": "contexts",
       "context_restart": "contexts", "context_warm": "contexts", "execute": "contexts"}


def module(name):
    """The package's module NAME, imported on first use (imports are thread-safe)."""
    full = __package__ + "." + name
    __import__(full)
    return sys.modules[full]


def operation(name):
    """The function that runs the operation NAME, or None when there is no such operation."""
    where = OPS.get(name)
    return None if where is None else getattr(module(where), "op_" + name)


# ---------------------------------------------------------------------------------------------
# Connections

def handle(fd):
    sock = _socket.socket(fileno=fd)
    try:
        sock.settimeout(REQUEST_TIMEOUT)
        try:
            kind, payload = read_frame(sock)
            if kind != J:
                raise ProtocolError("the first frame must be a JSON request")
            if payload == HELLO_REQUEST:  # answered without json, which may still be importing
                send_frame(sock, J, hello_answer())
                return
            try:
                req = json.loads(str(payload, "utf-8"))
            except (ValueError, RecursionError) as e:
                raise ProtocolError("the request is not valid JSON: %s" % e)
            if not isinstance(req, dict) or not isinstance(req.get("op"), str):
                raise ProtocolError("the request must be a JSON object with an \"op\" string")
            op = operation(req["op"])
            if op is None:
                raise AgentError("invalid_argument", "unknown op %r" % req["op"][:64])
            if settings.SWITCH_USER and req["op"] in FILE_OPS:
                _, uid, gid, _ = lookup_user(req)
                if uid != 0:
                    module("credentials").run_as(uid, gid, lambda: op(sock, req))
                    return
            op(sock, req)
        except AgentError as e:
            send_json(sock, {"error": {"code": e.code, "message": e.message}})
        except ProtocolError as e:
            send_json(sock, {"error": {"code": "invalid_argument", "message": "protocol error: %s" % e}})
    except (OSError, EOFError, ProtocolError, AgentError):
        pass  # the client left, or broke the framing: this connection only
    except Exception as e:
        log("request failed: %r" % e)
        try:
            send_json(sock, {"error": {"code": "internal", "message": "agent error: %r" % e}})
        except Exception:
            pass
    finally:
        sock.close()


def warm_up():
    """Imports what requests need, off the start-up path: json (every request but hello needs
    it) and processes with the standard modules it imports (exec is what a new sandbox is asked
    first, most often). The other operations' modules wait for their first request (files: a few
    tenths of a millisecond, once; contexts: beside a kernel's start): imported here, they would
    compete with that first exec for the interpreter (measured: ≈ 1 ms later to its end)."""
    json.loads(json.dumps({"a": [1, "b"]}))
    module("processes")
    if settings.SWITCH_USER:
        libc()
        module("credentials").thread_creds()
    children.start_reaper()
    if settings.WARM_DEFAULT:
        module("contexts").warm_default()


def parse_args(argv):
    socket_path = None
    egress_socket = None
    egress_port = egress.EGRESS_PORT
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--socket" and i + 1 < len(argv):
            socket_path = argv[i + 1]
            i += 2
        elif arg == "--home" and i + 1 < len(argv) and "=" in argv[i + 1]:
            name, home = argv[i + 1].split("=", 1)
            if name not in USERS or not home.startswith("/"):
                raise SystemExit("stockade-agent: --home wants user=/absolute/dir with user in %s" % sorted(USERS))
            uid, gid, _ = USERS[name]
            USERS[name] = (uid, gid, home)
            i += 2
        elif arg == "--oom-counter" and i + 1 < len(argv):
            settings.OOM_COUNTER_FILES = (argv[i + 1],)
            i += 2
        elif arg == "--no-switch-user":
            settings.SWITCH_USER = False
            i += 1
        elif arg == "--kernel" and i + 1 < len(argv) and argv[i + 1].startswith("/"):
            settings.KERNEL_PATH = argv[i + 1]
            i += 2
        elif arg == "--warm-default":
            settings.WARM_DEFAULT = True
            i += 1
        elif arg == "--preload" and i + 1 < len(argv):
            names = module_names(argv[i + 1])
            if names is None:
                raise SystemExit("stockade-agent: --preload wants comma-separated module names (letters, digits,"
                                 " _ and dots, e.g. numpy,pandas,matplotlib.pyplot; at most %d names of at most"
                                 " %d characters), not %r" % (PRELOAD_MAX_MODULES, PRELOAD_MAX_NAME,
                                                              argv[i + 1][:100]))
            settings.PRELOAD = names
            i += 2
        elif arg == "--egress" and i + 1 < len(argv) and argv[i + 1].startswith("/") \
                and len(argv[i + 1].encode()) <= 107:  # what a unix socket address holds
            egress_socket = argv[i + 1]
            i += 2
        elif arg == "--egress-port" and i + 1 < len(argv) and argv[i + 1].isdigit() \
                and 1 <= int(argv[i + 1]) <= 65535:
            egress_port = int(argv[i + 1])
            i += 2
        else:
            raise SystemExit("stockade-agent: unknown or incomplete argument %r\n"
                             "usage: agent.py --socket PATH [--home user=DIR]... [--no-switch-user]"
                             " [--oom-counter FILE] [--kernel PATH] [--warm-default] [--preload MODULES]"
                             " [--egress SOCKET] [--egress-port N]" % arg)
    if not socket_path:
        raise SystemExit("stockade-agent: --socket PATH is required")
    if egress_socket is not None:
        egress.configure_egress(egress_socket, egress_port)
    if settings.SWITCH_USER and os.geteuid() != 0:
        raise SystemExit("stockade-agent: not running as root, so it cannot run processes as other users;"
                         " pass --no-switch-user to run them as uid %d" % os.geteuid())
    return socket_path


def listen(path):
    directory = os.path.dirname(path) or "."
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        pass
    try:
        os.chmod(directory, 0o700)  # only root inside the sandbox may reach the socket
    except OSError as e:
        log("cannot restrict %s to its owner (%s): make sure uid 1000 cannot write to it" % (directory, e.strerror))
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    os.umask(0o177)
    try:
        sock.bind(path)
    finally:
        os.umask(0o022)
    os.chmod(path, 0o600)
    sock.listen(128)
    return sock


class _Stop(BaseException):
    pass


def _stop(signo, frame):
    raise _Stop()


def main(argv):
    path = parse_args(argv)
    os.umask(0o022)
    os.chdir("/")
    server = listen(path)
    server.setblocking(False)
    # A signal may land on any thread, and Python runs its handler only when the main thread
    # gets back to the interpreter: the wake-up socket makes the main thread's poll return.
    wake_r, wake_w = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    wake_r.setblocking(False)
    wake_w.setblocking(False)
    _signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
    _signal.signal(_signal.SIGTERM, _stop)
    _signal.signal(_signal.SIGINT, _stop)
    _thread.start_new_thread(warm_up, ())
    if egress.EGRESS_SOCKET is not None:
        try:  # before the first answer: a client that the answer lets start finds the port open
            listeners = egress.bind_relay_listeners()
        except OSError as e:
            log("%s; the relay retries" % e.strerror)
            listeners = None
        _thread.start_new_thread(egress.supervise_relay, (listeners,))
    start = _thread.start_new_thread
    poller = select.poll()
    poller.register(server.fileno(), select.POLLIN)
    poller.register(wake_r.fileno(), select.POLLIN)
    try:
        while True:
            for fd, _ in poller.poll():
                if fd == wake_r.fileno():
                    try:
                        wake_r.recv(64)
                    except OSError:
                        pass
                    continue
                while True:
                    try:
                        conn, _ = server._accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError as e:
                        log("accept failed: %s" % e)
                        break
                    try:
                        start(handle, (conn,))
                    except RuntimeError:
                        # No thread for it: user code has taken every pid of the sandbox (its
                        # pids limit). Hang up on this client (it sees "unavailable") and keep
                        # serving: letting this propagate would end the agent and the sandbox.
                        os.close(conn)
    except _Stop:
        pass
    finally:
        # Leave nothing behind: as init, the kernel would kill the rest anyway; in tests, this
        # keeps user processes from outliving the agent.
        try:
            with children.LOCK:
                procs = list(children.RUNNING.values())
                kernels = list(children.KERNELS.values())
            for proc in procs:
                proc.kill_group(9)
            for kernel in kernels:
                kernel.kill("delete")
            egress.stop_relays()
        except BaseException:
            pass
        try:
            os.unlink(path)
        except OSError:
            pass
