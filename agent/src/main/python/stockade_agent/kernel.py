"""Stockade's interpreter kernel: one per code context, started by the agent as the context's user.

    /usr/bin/python3 /opt/stockade/kernel --requests FD --events FD [--preload MODULES]

It runs cells with Jupyter's semantics: state persists between cells, the last expression's value
is a result with its MIME bundle, display() adds more, open matplotlib figures come back as PNG,
exceptions come back with a traceback of the cell's lines. With IPython importable (and the
environment variable STOCKADE_KERNEL_IPYTHON not "0"), cells run through an IPython
InteractiveShell, so magics (%time, !ls, %pip) and IPython.display work; otherwise through a small
plain-Python runner with the same rules.

Channels (docs/agent-protocol.md, "The kernel"): requests arrive on the requests descriptor (read
here) and events leave on the events descriptor (kernel_events.py, with results and figures),
both as frames of a 4-byte big-endian length and a UTF-8 JSON object. stdout and stderr (fds 1
and 2) are pipes the agent reads: print(), C extensions and subprocesses all write there, and the
agent forwards that output to the running cell. stdin is /dev/null. The agent interrupts a cell with SIGINT to the kernel's process group; outside a cell,
SIGINT is ignored, and while an event is being written it is held back until the frame is complete.

Everything here runs in the context's own process, as its user: the agent treats what this
program writes as untrusted (user code can write to the same descriptors).
"""

import os
import sys
import _signal

from . import kernel_events as events
from .kernel_events import STATE, PyplotHook, before_cell, display, flush_figures, flush_std, plain_format
from .kernel_events import publish, publish_error, safe_str
from .shared import module_names

HIGH_FD = 200                # where the channel descriptors are moved, out of user code's way


def read_exact(fd, n):
    parts = []
    while n > 0:
        part = os.read(fd, n)
        if not part:
            raise EOFError
        parts.append(part)
        n -= len(part)
    return b"".join(parts)


# ---------------------------------------------------------------------------------------------
# Runners

class PlainRunner:
    """Cells through exec/eval: the last expression statement is evaluated for its value."""

    ipython = False

    def __init__(self):
        import ast
        import builtins
        import linecache
        import traceback
        import types
        self.ast = ast
        self.linecache = linecache
        self.traceback = traceback
        self.kernel_module = sys.modules.get("__main__")  # keeps the entry program's globals alive
        main = types.ModuleType("__main__")
        main.__dict__["__builtins__"] = builtins
        sys.modules["__main__"] = main
        self.ns = main.__dict__
        builtins.display = display

    def run(self, code, n, silent):
        ast = self.ast
        filename = "<cell-%d>" % n if not silent else "<preload>"
        self.linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        try:
            tree = compile(code, filename, "exec", ast.PyCF_ONLY_AST | flags)
            last = None
            if tree.body and isinstance(tree.body[-1], ast.Expr):
                last = ast.Expression(tree.body.pop().value)
            body = compile(tree, filename, "exec", flags)
            tail = compile(last, filename, "eval", flags) if last is not None else None
        except (SyntaxError, ValueError, OverflowError) as e:
            lines = self.traceback.format_exception_only(type(e), e)
            publish_error(type(e).__name__, safe_str(e), "".join(lines).rstrip("\n"))
            return
        try:
            STATE.in_cell = True
            self._eval(body)
            if tail is not None:
                value = self._eval(tail)
                if value is not None:
                    self.ns["_"] = value
                    STATE.in_cell = True
                    publish(plain_format(value), True)
        except BaseException as e:  # noqa: the cell's exception, KeyboardInterrupt and SystemExit too
            STATE.in_cell = False
            self._report(e, filename)

    def _eval(self, code):
        result = eval(code, self.ns)
        if code.co_flags & 0x80:  # CO_COROUTINE: the cell used top-level await
            import asyncio
            result = asyncio.new_event_loop().run_until_complete(result)
        return result

    def _report(self, e, filename):
        tb = e.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != filename:
            tb = tb.tb_next  # skip the kernel's own frames
        try:
            text = "".join(self.traceback.format_exception(type(e), e, tb)).rstrip("\n")
        except Exception:
            text = "%s: %s" % (type(e).__name__, safe_str(e))
        publish_error(type(e).__name__, safe_str(e), text)


class IPythonRunner:
    """Cells through an IPython InteractiveShell whose display hooks publish to the agent."""

    ipython = True

    def __init__(self):
        from IPython.core.interactiveshell import InteractiveShell
        from IPython.core.displayhook import DisplayHook
        from IPython.core.displaypub import DisplayPublisher
        from traitlets.config import Config

        class Hook(DisplayHook):
            def start_displayhook(self):
                pass

            def write_output_prompt(self):
                pass

            def write_format_data(self, format_dict, md_dict=None):
                publish(format_dict, True)

            def finish_displayhook(self):
                pass

        class Publisher(DisplayPublisher):
            def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):
                publish(data, False)

            def clear_output(self, wait=False):
                pass

        class Shell(InteractiveShell):
            def _showtraceback(self, etype, evalue, stb):
                text = self.InteractiveTB.stb2text(stb) if isinstance(stb, list) else str(stb)
                publish_error(getattr(etype, "__name__", "Exception"), safe_str(evalue), text.strip("\n"))

            def enable_gui(self, gui=None):
                pass

            # !cmd and %pip: the command writes straight to the kernel's stdout and stderr
            # pipes (the default pipes them through pexpect, which needs a pty).
            system = InteractiveShell.system_raw

        config = Config()
        config.HistoryManager.enabled = False
        config.InteractiveShell.colors = "NoColor"
        config.InteractiveShell.xmode = "Context"
        self.shell = Shell.instance(config=config, displayhook_class=Hook, display_pub_class=Publisher)
        formatters = self.shell.display_formatter
        formatters.formatters["e2b/data"] = _data_formatter()(parent=formatters)

    def run(self, code, n, silent):
        shell = self.shell
        if not silent:
            shell.execution_count = n
        STATE.in_cell = True
        try:
            shell.run_cell(code, store_history=not silent, silent=silent)
        finally:
            STATE.in_cell = False


def _data_formatter():
    """An IPython formatter for E2B's "e2b/data" form (kernel_events.dataframe_data)."""
    from IPython.core.formatters import BaseFormatter
    from traitlets import ObjectName, Unicode

    class DataFormatter(BaseFormatter):
        format_type = Unicode("e2b/data")
        print_method = ObjectName("_repr_e2b_data_")
        _return_type = (dict,)

        def __call__(self, obj):
            frame = events.dataframe_data(obj)
            return frame if frame is not None else super().__call__(obj)

    return DataFormatter


# ---------------------------------------------------------------------------------------------

def _move_fd(fd):
    """Out of the low numbers user code reuses, and closed on exec (subprocesses don't get it)."""
    import fcntl
    try:
        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, HIGH_FD)
    except OSError:
        os.set_inheritable(fd, False)
        return fd
    os.close(fd)
    return high


USAGE = ("stockade-kernel: usage: kernel --requests FD --events FD [--preload MODULE[,MODULE]...]"
         " [--language python|bash|javascript]")


def parse_args(argv):
    fds = {}
    preload = []
    language = "python"
    i = 0
    while i < len(argv):
        if argv[i] in ("--requests", "--events") and i + 1 < len(argv) and argv[i + 1].isdigit():
            fds[argv[i][2:]] = int(argv[i + 1])
            i += 2
        elif argv[i] == "--preload" and i + 1 < len(argv) and module_names(argv[i + 1]) is not None:
            preload = module_names(argv[i + 1])
            i += 2
        elif argv[i] == "--language" and i + 1 < len(argv) and argv[i + 1] in ("python", "bash", "javascript"):
            language = argv[i + 1]
            i += 2
        else:
            raise SystemExit(USAGE)
    if len(fds) != 2:
        raise SystemExit(USAGE)
    return fds["requests"], fds["events"], preload, language


def execute(runner, req):
    envs = req.get("envs") or {}
    silent = bool(req.get("silent"))
    saved = {}
    for key, value in envs.items():
        if isinstance(key, str) and isinstance(value, str) and key and "=" not in key and "\0" not in key + value:
            saved[key] = os.environ.get(key)
            os.environ[key] = value
    STATE.errored = False
    STATE.pending = False
    STATE.silent = silent
    try:
        before_cell()
        try:
            runner.run(req.get("code", ""), int(req.get("n", 0)), silent)
            STATE.in_cell = True
            flush_figures()
        except BaseException as e:  # an interrupt between the user's code and our bookkeeping
            STATE.in_cell = False
            publish_error(type(e).__name__, safe_str(e), "%s: %s" % (type(e).__name__, safe_str(e)))
        finally:
            STATE.in_cell = False
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
        STATE.silent = False
    return "error" if STATE.errored else "ok"


def _ensure_user_site():
    """Puts the user's site-packages on the path even before it exists: Python adds it at start-up only
    if it is there, so a package that `%pip install` (pip --user) puts there would otherwise not be
    importable until the kernel restarts."""
    try:
        import site
        if not site.ENABLE_USER_SITE:
            return
        user_site = site.getusersitepackages()
        if user_site not in sys.path:
            os.makedirs(user_site, exist_ok=True)
            site.addsitedir(user_site)
    except (OSError, ImportError, AttributeError):
        pass


def preload(names):
    """Imports the modules named by --preload into sys.modules, before any cell: the user's namespace,
    the execution count and every cell's output are untouched (the output of the imports goes to
    /dev/null). Returns [[name, "Error: message"], ...] for those that failed; the agent logs them.
    matplotlib.pyplot goes through PyplotHook like a user's import (so plt.show() is patched), and
    one tiny figure is drawn outside pyplot's figure list, so that the font cache, the Agg backend
    and the PNG writer are loaded before the user's first figure."""
    if not names:
        return []
    import importlib
    failed = []
    flush_std()
    saved = (os.dup(1), os.dup(2))
    null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        for name in names:
            try:
                importlib.import_module(name)
                if name == "matplotlib.pyplot":
                    _draw_hidden_figure()
            except BaseException as e:  # noqa: whatever a module raises (SystemExit too) only skips it
                failed.append([name, ("%s: %s" % (type(e).__name__, safe_str(e)))[:300]])
    finally:
        flush_std()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved + (null,):
            os.close(fd)
    return failed


def _draw_hidden_figure():
    import io
    from matplotlib.figure import Figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    fig = Figure(figsize=(1, 1), dpi=10)
    axes = fig.add_subplot()
    axes.plot([0, 1])
    axes.set_title("x")
    FigureCanvasAgg(fig).print_png(io.BytesIO())


def main(argv):
    req_fd, ev_fd, modules, language = parse_args(argv)
    req_fd, ev_fd = _move_fd(req_fd), _move_fd(ev_fd)
    _signal.signal(_signal.SIGINT, events.on_sigint)
    events.open_channel(ev_fd)
    if language == "bash":
        from . import kernel_bash
        runner = kernel_bash.BashRunner()
        events.EVENTS.send({"ev": "ready", "ipython": False, "pid": os.getpid(), "warning": None, "preloadFailed": []})
        serve(req_fd, lambda req: kernel_bash.execute(runner, req))
        return
    if language == "javascript":
        from . import kernel_js
        runner = kernel_js.NodeRunner()
        events.EVENTS.send({"ev": "ready", "ipython": False, "pid": os.getpid(), "warning": None, "preloadFailed": []})
        serve(req_fd, lambda req: kernel_js.execute(runner, req))
        return
    # Like Jupyter: the working directory comes first on the path, not the directory of the
    # agent's programs (the entry program "kernel" put it first, to import this package).
    if sys.path and sys.path[0] == os.path.dirname(os.path.dirname(os.path.abspath(__file__))):
        sys.path[0] = ""
    elif "" not in sys.path:
        sys.path.insert(0, "")
    _ensure_user_site()
    sys.meta_path.insert(0, PyplotHook())
    runner = None
    failure = None
    if os.environ.get("STOCKADE_KERNEL_IPYTHON", "1") != "0":
        try:
            runner = IPythonRunner()
        except ImportError:
            runner = None
        except Exception as e:
            failure = "IPython failed to start (%r); cells run as plain Python" % (e,)
            runner = None
    if runner is None:
        runner = PlainRunner()
    # The preload runs before the ready event, so a cell cannot start before it is over (cells
    # wait for ready); SIGINT is still ignored here, as outside any cell.
    failed = preload(modules)
    events.EVENTS.send({"ev": "ready", "ipython": runner.ipython, "pid": os.getpid(),
                        "python": sys.version.split()[0], "warning": failure, "preloadFailed": failed})
    serve(req_fd, lambda req: execute(runner, req))


def serve(req_fd, run_cell):
    """Answers the agent's requests until it closes the request pipe."""
    json = events.json
    while True:
        try:
            n = int.from_bytes(read_exact(req_fd, 4), "big")
            req = json.loads(read_exact(req_fd, n))
        except EOFError:
            return
        except KeyboardInterrupt:
            continue
        if not isinstance(req, dict):
            continue
        op = req.get("op")
        if op == "execute":
            status = run_cell(req)
            STATE.in_cell = False
            events.EVENTS.send({"ev": "done", "status": status})
        elif op == "ping":
            events.EVENTS.send({"ev": "pong"})
