"""What the kernel (kernel.py) tells the agent: the event channel, results with their MIME
bundles, errors, display(), and matplotlib figures as PNG with their chart data. Runs in the context's own process, as
its user; the agent treats every event as untrusted (user code can write to the same descriptor).

Events are frames of a 4-byte big-endian length and a UTF-8 JSON object (docs/agent-protocol.md,
"The kernel's channels"). While one is being written, SIGINT is held back until the frame is
complete, so an interrupt never tears the channel."""

import os
import sys
import _thread

EVENT_BUDGET = 16 << 20      # most bytes of JSON one result may take; bigger entries are dropped
TEXT_LIMIT = 256 << 10       # characters of an error's value or traceback, or of an oversized text result
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

json = None                  # imported by open_channel(), once the kernel's descriptors are safe
EVENTS = None                # the Channel, from open_channel() on


class _State:
    in_cell = False          # user code is running: SIGINT raises KeyboardInterrupt
    emitting = 0             # an event frame is being written: SIGINT waits
    pending = False          # a SIGINT arrived while emitting
    errored = False          # the running cell reported an exception
    silent = False           # a warm-up cell: no events


STATE = _State()


def on_sigint(signo, frame):
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
        flush_std()
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


def flush_std():
    """Output written before an event reaches its pipe before the event does (the agent keeps the order)."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except Exception:
            pass

# ---------------------------------------------------------------------------------------------
# Results


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
        elif key == "e2b/data" or key == "e2b/chart":
            key = key[4:]
            if not isinstance(value, dict):
                continue
        elif isinstance(value, (bytes, bytearray)):
            value = bytes(value).decode("utf-8", "replace")
        elif not isinstance(value, str):
            value = str(value)
        if key == "text":
            value = unquote(value)
        data[key] = value
    return data


def unquote(text):
    """E2B's server takes the quotes off a text form that starts and ends with the same kind, so
    that a str result reads as its content (os.getenv("X") -> supertest): the same rule here."""
    if len(text) >= 1 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def dataframe_data(obj):
    """E2B's data form of a pandas DataFrame: its columns as lists (to_dict(orient="list")),
    timestamps in ISO 8601; None for anything else. pandas is only looked at when user code has
    imported it."""
    pandas = sys.modules.get("pandas")
    if pandas is None or not isinstance(obj, pandas.DataFrame):
        return None
    columns = obj.to_dict(orient="list")
    return {str(name): [_cell_value(v, pandas) for v in values] for name, values in columns.items()}


def _cell_value(v, pandas):
    if isinstance(v, pandas.Timestamp):
        return v.isoformat()
    if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
        return None  # NaN and infinities have no JSON form
    return v


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


def cell_envs(req):
    """A cell request's per-call env vars, keeping only the string pairs a process environment can hold."""
    envs = req.get("envs") or {}
    if not isinstance(envs, dict):
        return {}
    return {k: v for k, v in envs.items() if isinstance(k, str) and isinstance(v, str) and "\0" not in v}


def cell_code(req):
    code = req.get("code", "")
    return code if isinstance(code, str) else ""


def publish_error(name, value, traceback_text):
    STATE.errored = True
    if STATE.silent or EVENTS is None:
        return
    EVENTS.send({"ev": "error", "name": _cut(name, 256), "value": _cut(value), "traceback": _cut(traceback_text)})


def safe_str(value):
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
    frame = dataframe_data(obj)
    if frame is not None:
        data["e2b/data"] = frame
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
# matplotlib: figures become PNG results, with their chart data (kernel_charts.py), at plt.show()
# and at the end of each cell

_PYPLOT_PATCHED = False


def flush_figures():
    helpers = sys.modules.get("matplotlib._pylab_helpers")
    if helpers is None:
        return
    managers = helpers.Gcf.get_all_fig_managers()
    if not managers:
        return
    import io
    from .kernel_charts import figure_chart
    try:
        for manager in managers:
            fig = manager.canvas.figure
            try:
                buf = io.BytesIO()
                fig.savefig(buf, format="png")
                bundle = {"image/png": buf.getvalue(), "text/plain": repr(fig)}
                chart = figure_chart(fig)  # after savefig: the tick labels are laid out
                if chart is not None:
                    bundle["e2b/chart"] = chart
                publish(bundle, False)
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


_PIL_PATCHED = False


def _patch_pil(image_module):
    """As E2B's template does: an image saved to a file name is also shown as a result of the cell."""
    global _PIL_PATCHED
    if _PIL_PATCHED:
        return
    _PIL_PATCHED = True
    original = image_module.Image.save

    def save(self, fp, format=None, **params):
        if isinstance(fp, str):
            _show(self)
        return original(self, fp, format, **params)

    image_module.Image.save = save


def _show(obj):
    """display() through IPython when the kernel runs cells with it, so that its formatters apply."""
    try:
        from IPython import get_ipython
        if get_ipython() is not None:
            from IPython.display import display as ipython_display
            ipython_display(obj)
            return
    except ImportError:
        pass
    display(obj)


PATCHES = {"matplotlib.pyplot": _patch_pyplot, "PIL.Image": _patch_pil}


def _patched(name):
    return _PYPLOT_PATCHED if name == "matplotlib.pyplot" else _PIL_PATCHED


class PyplotHook:
    """Patches pyplot.show and PIL's Image.save when their modules are first imported (without
    importing them early)."""

    def find_spec(self, name, path=None, target=None):
        if name not in PATCHES or _patched(name):
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
            if module.__name__ in PATCHES:
                PATCHES[module.__name__](module)

        spec.loader.exec_module = exec_module
        return spec


def before_cell():
    for name, patch in PATCHES.items():
        if not _patched(name) and name in sys.modules:
            patch(sys.modules[name])


def open_channel(fd):
    """Events go to fd from now on (the kernel's main calls this once its descriptors are moved)."""
    global json, EVENTS
    import json as json_module
    json = json_module
    EVENTS = Channel(fd)
