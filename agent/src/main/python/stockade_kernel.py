"""Stockade's interpreter kernel: one per code context, started by the agent as the context's user.

    /usr/bin/python3 /opt/stockade/kernel --requests FD --events FD [--preload MODULES]

It runs cells with Jupyter's semantics: state persists between cells, the last expression's value
is a result with its MIME bundle, display() adds more, open matplotlib figures come back as PNG,
exceptions come back with a traceback of the cell's lines. With IPython importable (and the
environment variable STOCKADE_KERNEL_IPYTHON not "0"), cells run through an IPython
InteractiveShell, so magics (%time, !ls, %pip) and IPython.display work; otherwise through a small
plain-Python runner with the same rules.

Channels (docs/agent-protocol.md, "The kernel"): requests arrive on the requests descriptor and
events leave on the events descriptor, both as frames of a 4-byte big-endian length and a UTF-8
JSON object. stdout and stderr (fds 1 and 2) are pipes the agent reads: print(), C extensions and
subprocesses all write there, and the agent forwards that output to the running cell. stdin is
/dev/null. The agent interrupts a cell with SIGINT to the kernel's process group; outside a cell,
SIGINT is ignored, and while an event is being written it is held back until the frame is complete.

Everything here runs in the context's own process, as its user: the agent treats what this
program writes as untrusted (user code can write to the same descriptors).
"""

import os
import sys

EVENT_BUDGET = 16 << 20      # most bytes of JSON one result may take; bigger entries are dropped
TEXT_LIMIT = 256 << 10       # characters of an error's value or traceback, or of an oversized text result
HIGH_FD = 200                # where the channel descriptors are moved, out of user code's way
PRELOAD_MAX_MODULES = 64     # --preload: at most this many names,
PRELOAD_MAX_NAME = 200       # each at most this long (characters)
ORDER_WAIT = 1.0             # seconds a display waits for the agent to take it before output goes on

MIME_KEYS = {
    "text/plain": "text", "text/html": "html", "text/markdown": "markdown", "image/svg+xml": "svg",
    "image/png": "png", "image/jpeg": "jpeg", "application/pdf": "pdf", "text/latex": "latex",
    "application/json": "json", "application/javascript": "javascript",
}
BINARY_KEYS = ("png", "jpeg", "pdf")
REPR_METHODS = (("_repr_html_", "text/html"), ("_repr_markdown_", "text/markdown"),
                ("_repr_svg_", "image/svg+xml"), ("_repr_png_", "image/png"),
                ("_repr_jpeg_", "image/jpeg"), ("_repr_pdf_", "application/pdf"),
                ("_repr_latex_", "text/latex"), ("_repr_json_", "application/json"),
                ("_repr_javascript_", "application/javascript"))

json = None                  # imported in main(), after the descriptors are safe
_signal = None
_thread = None


class _State:
    in_cell = False          # user code is running: SIGINT raises KeyboardInterrupt
    emitting = 0             # an event frame is being written: SIGINT waits
    pending = False          # a SIGINT arrived while emitting
    errored = False          # the running cell reported an exception
    silent = False           # a warm-up cell: no events


STATE = _State()


def _on_sigint(signo, frame):
    if not STATE.in_cell:
        return
    if STATE.emitting:
        STATE.pending = True
        return
    raise KeyboardInterrupt


class Channel:
    """Length-prefixed JSON frames on one descriptor; writes are whole frames, never torn by SIGINT."""

    def __init__(self, fd):
        self.fd = fd
        self.lock = _thread.allocate_lock()

    def send(self, obj):
        data = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=_json_default)
        payload = data.encode("utf-8", "replace")
        frame = len(payload).to_bytes(4, "big") + payload
        _flush_std()
        STATE.emitting += 1
        try:
            with self.lock:
                view = memoryview(frame)
                while view:
                    n = os.write(self.fd, view)
                    view = view[n:]
                if obj.get("ev") == "result" and not obj.get("isMainResult"):
                    self._wait_taken()
        finally:
            STATE.emitting -= 1
        if STATE.pending and not STATE.emitting:
            STATE.pending = False
            if STATE.in_cell:
                raise KeyboardInterrupt

    def _wait_taken(self):
        """Waits (at most ORDER_WAIT) until the agent has read everything from the event pipe.
        Output and events travel on different pipes; the agent takes what is on the output pipes
        before each event it reads, so output written after this returns cannot overtake the
        display (plt.show() then print()). FIONREAD works on a pipe's write end too."""
        import fcntl
        import termios
        import time
        count = bytearray(4)
        deadline = time.monotonic() + ORDER_WAIT
        pause = 0.00005
        while True:
            try:
                fcntl.ioctl(self.fd, termios.FIONREAD, count)
            except OSError:
                return
            if int.from_bytes(count, sys.byteorder) == 0 or time.monotonic() >= deadline:
                return
            time.sleep(pause)
            pause = min(pause * 2, 0.002)


def _json_default(value):
    if isinstance(value, (bytes, bytearray)):
        import base64
        return base64.b64encode(bytes(value)).decode("ascii")
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays in JSON output
    if callable(tolist):
        try:
            return tolist()
        except Exception:
            pass
    return str(value)


def _flush_std():
    """Output written before an event reaches its pipe before the event does (the agent keeps the order)."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except Exception:
            pass


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
# Results

EVENTS = None  # the Channel


def to_data(format_dict):
    """A MIME bundle -> the protocol's data map (short keys, binary formats in base64)."""
    import base64
    data = {}
    for mime, value in format_dict.items():
        if value is None:
            continue
        key = MIME_KEYS.get(mime, mime)
        if key in BINARY_KEYS:
            if isinstance(value, (bytes, bytearray)):
                value = base64.b64encode(bytes(value)).decode("ascii")
            elif isinstance(value, str):
                value = value.replace("\n", "")
            else:
                continue
        elif key == "json" or mime.endswith("+json"):
            if isinstance(value, (bytes, bytearray, str)):
                try:
                    value = json.loads(value)
                except ValueError:
                    continue
        elif isinstance(value, (bytes, bytearray)):
            value = bytes(value).decode("utf-8", "replace")
        elif not isinstance(value, str):
            value = str(value)
        data[key] = value
    return data


def publish(format_dict, main):
    if STATE.silent or EVENTS is None:
        return
    data = to_data(format_dict)
    if not data:
        return
    event = {"ev": "result", "data": data, "isMainResult": bool(main)}
    sizes = {k: _size(v) for k, v in data.items()}
    total = sum(sizes.values())
    for key in sorted(sizes, key=lambda k: -sizes[k]):
        if total <= EVENT_BUDGET:
            break
        if key != "text":
            total -= sizes[key]
            del data[key]
            sys.stderr.write("stockade: dropped the %s form of a result: over %d MiB\n" % (key, EVENT_BUDGET >> 20))
    if "text" in data and total > EVENT_BUDGET:
        data["text"] = _cut(data["text"])
    EVENTS.send(event)


def publish_error(name, value, traceback_text):
    STATE.errored = True
    if STATE.silent or EVENTS is None:
        return
    EVENTS.send({"ev": "error", "name": _cut(name, 256), "value": _cut(value), "traceback": _cut(traceback_text)})


def _safe_str(value):
    try:
        return str(value)
    except Exception as e:
        return "<str() of %s failed: %s>" % (type(value).__name__, type(e).__name__)


def _size(value):
    if isinstance(value, str):
        return len(value)
    try:
        return len(json.dumps(value, default=_json_default))
    except Exception:
        return EVENT_BUDGET + 1


def _cut(text, limit=TEXT_LIMIT):
    if len(text) <= limit:
        return text
    return text[:limit] + "\n... (%d more characters cut by stockade)" % (len(text) - limit)


def plain_format(obj):
    """The MIME bundle of an object without IPython: repr plus its _repr_*_ methods."""
    data = {}
    try:
        data["text/plain"] = repr(obj)
    except Exception as e:
        data["text/plain"] = "<repr of %s failed: %r>" % (type(obj).__name__, e)
    if isinstance(obj, type):
        return data
    bundle = _call_repr(obj, "_repr_mimebundle_")
    if isinstance(bundle, dict):
        for mime, value in bundle.items():
            if isinstance(mime, str) and value is not None:
                data[mime] = value
    for method, mime in REPR_METHODS:
        if mime in data:
            continue
        value = _call_repr(obj, method)
        if value is not None:
            data[mime] = value
    return data


def _call_repr(obj, method):
    try:
        fn = getattr(obj, method, None)
        if not callable(fn):
            return None
        value = fn()
        if isinstance(value, tuple) and len(value) == 2:
            value = value[0]  # (data, metadata)
        return value
    except Exception as e:
        sys.stderr.write("stockade: %s.%s() failed: %r\n" % (type(obj).__name__, method, e))
        return None


def display(*objs, **kwargs):
    """display() without IPython: each object becomes a non-main result."""
    raw = kwargs.get("raw", False)
    for obj in objs:
        if raw and isinstance(obj, dict):
            publish(obj, False)
        else:
            publish(plain_format(obj), False)


# ---------------------------------------------------------------------------------------------
# matplotlib: figures become PNG results at plt.show() and at the end of each cell

_PYPLOT_PATCHED = False


def flush_figures():
    helpers = sys.modules.get("matplotlib._pylab_helpers")
    if helpers is None:
        return
    managers = helpers.Gcf.get_all_fig_managers()
    if not managers:
        return
    import io
    try:
        for manager in managers:
            fig = manager.canvas.figure
            try:
                buf = io.BytesIO()
                fig.savefig(buf, format="png")
                publish({"image/png": buf.getvalue(), "text/plain": repr(fig)}, False)
            except KeyboardInterrupt:
                raise
            except Exception as e:
                sys.stderr.write("stockade: cannot render figure %s as PNG: %r\n" % (manager.num, e))
    finally:
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None:
            pyplot.close("all")
        else:
            helpers.Gcf.destroy_all()


def _patch_pyplot(pyplot):
    global _PYPLOT_PATCHED
    if _PYPLOT_PATCHED:
        return
    _PYPLOT_PATCHED = True

    def show(*args, **kwargs):
        """Stockade: shows the open figures as PNG results of the cell, then closes them."""
        flush_figures()

    pyplot.show = show


class PyplotHook:
    """Patches pyplot.show when matplotlib.pyplot is first imported (without importing it early)."""

    def find_spec(self, name, path=None, target=None):
        if name != "matplotlib.pyplot" or _PYPLOT_PATCHED:
            return None
        spec = None
        for finder in sys.meta_path:
            if finder is self:
                continue
            find = getattr(finder, "find_spec", None)
            if find is None:
                continue
            spec = find(name, path, target)
            if spec is not None:
                break
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        original = spec.loader.exec_module

        def exec_module(module):
            original(module)
            if module.__name__ == "matplotlib.pyplot":
                _patch_pyplot(module)

        spec.loader.exec_module = exec_module
        return spec


def before_cell():
    if not _PYPLOT_PATCHED and "matplotlib.pyplot" in sys.modules:
        _patch_pyplot(sys.modules["matplotlib.pyplot"])


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
        self.kernel_module = sys.modules.get("__main__")  # keeps this program's globals alive
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
            publish_error(type(e).__name__, _safe_str(e), "".join(lines).rstrip("\n"))
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
            text = "%s: %s" % (type(e).__name__, _safe_str(e))
        publish_error(type(e).__name__, _safe_str(e), text)


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
                publish_error(getattr(etype, "__name__", "Exception"), _safe_str(evalue), text.strip("\n"))

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

    def run(self, code, n, silent):
        shell = self.shell
        if not silent:
            shell.execution_count = n
        STATE.in_cell = True
        try:
            shell.run_cell(code, store_history=not silent, silent=silent)
        finally:
            STATE.in_cell = False


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


USAGE = "stockade-kernel: usage: kernel --requests FD --events FD [--preload MODULE[,MODULE]...]"


def module_names(value):
    """--preload's comma-separated module names, or None when one is not a dotted identifier."""
    names = value.split(",")
    if len(names) > PRELOAD_MAX_MODULES:
        return None
    for name in names:
        if not 0 < len(name) <= PRELOAD_MAX_NAME:
            return None
        if not all(part.isascii() and part.isidentifier() for part in name.split(".")):
            return None
    return names


def parse_args(argv):
    fds = {}
    preload = []
    i = 0
    while i < len(argv):
        if argv[i] in ("--requests", "--events") and i + 1 < len(argv) and argv[i + 1].isdigit():
            fds[argv[i][2:]] = int(argv[i + 1])
            i += 2
        elif argv[i] == "--preload" and i + 1 < len(argv) and module_names(argv[i + 1]) is not None:
            preload = module_names(argv[i + 1])
            i += 2
        else:
            raise SystemExit(USAGE)
    if len(fds) != 2:
        raise SystemExit(USAGE)
    return fds["requests"], fds["events"], preload


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
            publish_error(type(e).__name__, _safe_str(e), "%s: %s" % (type(e).__name__, _safe_str(e)))
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
    _flush_std()
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
                failed.append([name, ("%s: %s" % (type(e).__name__, _safe_str(e)))[:300]])
    finally:
        _flush_std()
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
    global json, _signal, _thread, EVENTS
    import _signal as signal_module
    import _thread as thread_module
    _signal, _thread = signal_module, thread_module
    req_fd, ev_fd, modules = parse_args(argv)
    req_fd, ev_fd = _move_fd(req_fd), _move_fd(ev_fd)
    _signal.signal(_signal.SIGINT, _on_sigint)
    import json as json_module
    json = json_module
    # Like Jupyter: the working directory comes first on the path, not this program's directory.
    if sys.path and sys.path[0] == os.path.dirname(os.path.abspath(__file__)):
        sys.path[0] = ""
    elif "" not in sys.path:
        sys.path.insert(0, "")
    _ensure_user_site()
    sys.meta_path.insert(0, PyplotHook())
    EVENTS = Channel(ev_fd)
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
    EVENTS.send({"ev": "ready", "ipython": runner.ipython, "pid": os.getpid(),
                 "python": sys.version.split()[0], "warning": failure, "preloadFailed": failed})
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
            status = execute(runner, req)
            STATE.in_cell = False
            EVENTS.send({"ev": "done", "status": status})
        elif op == "ping":
            EVENTS.send({"ev": "pong"})


if __name__ == "__main__":
    main(sys.argv[1:])
