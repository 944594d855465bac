"""Egress, the agent's half: the proxy variables every process gets, and the supervision of the
relay (relay.py, "relay" in the agent's directory). The sandbox's network namespace has loopback
only; the server binds its egress proxy's unix socket into the sandbox (root-only). The relay
listens on 127.0.0.1:EGRESS_PORT and carries each connection to that socket, naming the client's
pid and uid first; every process gets HTTP(S)_PROXY pointing at it. The relay runs as the agent's
user in its own process group, outside RUNNING, so that ps and signal never see it; the supervisor
thread restarts it when it exits and the agent kills it when it stops."""

import os
import sys
import select

from . import settings
from .settings import BASE_PATH, log
from .shared import Lazy, bind_loopback

time = Lazy("time")
children = Lazy(__package__ + ".children")  # not needed before the agent listens

EGRESS_SOCKET = None             # --egress PATH; None: no relay, no proxy variables
EGRESS_PORT = 49990              # --egress-port N
CA_BUNDLE = "ca-bundle.pem"      # in the agent's directory: trust for the egress proxy's TLS interception
CA_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT", "NODE_EXTRA_CA_CERTS")
RELAY_BACKOFF_FIRST = 0.2        # a relay that exits is restarted after this, doubling up to
RELAY_BACKOFF_MAX = 10.0
RELAY_STABLE = 30.0              # a relay that ran this long was fine: the backoff starts over
RELAY_STOPPING = False           # set under LOCK at shutdown: no relay is started any more
_EGRESS_ENV = {}


def egress_env():
    """The variables that send a process's HTTP(S) traffic to the relay (empty without --egress).
    A request's own variables are applied after these, so a user can still choose otherwise."""
    if EGRESS_SOCKET is None:
        return _EGRESS_ENV
    env = dict(_EGRESS_ENV)
    bundle = os.path.join(settings.INSTALL_DIR, CA_BUNDLE)
    if os.path.isfile(bundle):  # one stat per spawn: the server may install it after we started
        for name in CA_VARIABLES:
            env[name] = bundle
    return env


def configure_egress(socket_path, port):
    global EGRESS_SOCKET, EGRESS_PORT, _EGRESS_ENV
    EGRESS_SOCKET = socket_path
    EGRESS_PORT = port
    proxy = "http://127.0.0.1:%d" % port
    no_proxy = "localhost,127.0.0.1,::1"
    _EGRESS_ENV = {"HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "http_proxy": proxy, "https_proxy": proxy,
                   "NO_PROXY": no_proxy, "no_proxy": no_proxy}


class Relay:
    """One run of the relay process; the reaper marks its end and wakes the supervisor."""

    def __init__(self):
        self.pid = 0
        self.status = None
        self.wake = os.eventfd(0, os.EFD_CLOEXEC)

    def exited(self, status):
        """Called by the reaper, under LOCK, once the relay has been reaped."""
        self.status = status
        children.wake(self.wake)


def bind_relay_listeners():
    """127.0.0.1:EGRESS_PORT and, where the namespace has it, [::1]:EGRESS_PORT. Bound here, once,
    and inherited by every run of the relay: a client that connects while the relay starts or
    restarts waits in the backlog rather than being refused, and no user program can take the
    port meanwhile. Inheritable, which is harmless: subprocess closes them in user processes."""
    try:
        listeners = [sock for sock, _, _ in bind_loopback(EGRESS_PORT)]
    except OSError as e:
        raise OSError(e.errno, "cannot listen on 127.0.0.1:%d: %s (is a program of the sandbox using the"
                      " port? --egress-port chooses it)" % (EGRESS_PORT, e.strerror))
    for sock in listeners:
        os.set_inheritable(sock.fileno(), True)
    return listeners


def spawn_relay(listeners):
    """Starts the relay, or returns None when the agent is stopping. posix_spawn rather than
    subprocess: it needs no import, so the relay starts while the warm-up is still importing."""
    relay = Relay()
    python = sys.executable or "/usr/bin/python3"
    argv = [python, "-I", "-S", os.path.join(settings.INSTALL_DIR, "relay"), "--listen-port", str(EGRESS_PORT),
            "--upstream", EGRESS_SOCKET]
    for sock in listeners:
        argv += ["--listen-fd", str(sock.fileno())]
    env = {"PATH": BASE_PATH, "LANG": "C.UTF-8"}
    actions = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0), (os.POSIX_SPAWN_DUP2, 2, 1)]
    try:
        with children.LOCK:  # registered before the reaper can see it end
            if RELAY_STOPPING:
                os.close(relay.wake)
                return None
            relay.pid = os.posix_spawn(python, argv, env, file_actions=actions, setsid=True)
            children.RELAYS[relay.pid] = relay
    except OSError:
        os.close(relay.wake)
        raise
    return relay


def supervise_relay(listeners):
    """The supervisor thread: keeps a relay running, from the first connection on, until the agent
    stops. The relay starts only when a connection waits on one of the listeners (which main() bound
    before the agent's socket answers; None if it could not): an idle sandbox, or one that never
    uses the network, carries no relay process (≈ 9 MiB less per sandbox), and its start-up never
    competes with the agent's. The first connection waits in the backlog while the relay starts
    (≈ 30 ms); a relay that exits is restarted the same way, after its backoff."""
    backoff = RELAY_BACKOFF_FIRST
    while True:
        started = time.monotonic()
        relay = False
        try:
            if listeners is None:
                listeners = bind_relay_listeners()
            wait_for_a_client(listeners)
            relay = spawn_relay(listeners)
        except OSError as e:
            log("cannot start the egress relay: %s; retrying in %.1f s" % (e.strerror, backoff))
        if relay is None:
            return
        if relay:
            children.start_reaper()  # the reaper reports its end
            children.CHILD_EVENT.set()
            try:
                os.eventfd_read(relay.wake)
            finally:
                os.close(relay.wake)
            with children.LOCK:
                children.RELAYS.pop(relay.pid, None)
                if RELAY_STOPPING:
                    return
            if time.monotonic() - started >= RELAY_STABLE:
                backoff = RELAY_BACKOFF_FIRST
            status = relay.status
            how = ("was killed by %s" % children.signal_name(os.WTERMSIG(status)) if os.WIFSIGNALED(status)
                   else "exited with code %d" % os.WEXITSTATUS(status))
            log("the egress relay (pid %d) %s; restarting it in %.1f s" % (relay.pid, how, backoff))
        time.sleep(backoff)
        backoff = min(backoff * 2, RELAY_BACKOFF_MAX)


def wait_for_a_client(listeners):
    """Blocks until a connection waits on a listener (it stays in the backlog for the relay)."""
    poller = select.poll()
    for sock in listeners:
        poller.register(sock.fileno(), select.POLLIN)
    while not poller.poll():
        pass


def stop_relays():
    """At shutdown: no new relay, and the running one killed (it leads its own process group)."""
    global RELAY_STOPPING
    with children.LOCK:
        RELAY_STOPPING = True
        relays = list(children.RELAYS.values())
        for relay in relays:
            if relay.status is None:
                children.signal_group(relay.pid, 9)
    if relays:
        children.start_reaper()
    # Let the reaper collect it, so that no zombie outlives an agent that is not init.
    deadline = time.monotonic() + 1.0
    while any(r.status is None for r in relays) and time.monotonic() < deadline:
        time.sleep(0.005)
