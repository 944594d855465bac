"""E2B's typed chart data of a matplotlib figure (a result's "chart" form, next to its PNG).

kernel_events.flush_figures calls figure_chart() for each figure it shows, after drawing it (so
tick labels are laid out), in the context's own process, as its user. The shape is the one E2B's
code interpreter gives and its SDKs read (docs/e2b-wire.md, "chart"): a figure with one Axes is
one chart, with more it is a "superchart" whose elements are one chart per Axes. What an Axes is
is read from the artists user code added to it: only Line2D -> line; boxes (PathPatch) and lines
-> box_and_whisker; only PathCollection -> scatter; only Wedge -> pie; only Rectangle -> bar;
anything else -> unknown (type and title, no elements).

Never fails the cell: a figure it cannot read, or one bigger than the bounds below, has no chart
(the PNG still shows). The bounds keep a hostile figure from making the event huge or the
extraction slow: every point, bar, wedge, box and tick counts against one budget per figure.
"""

import datetime
import math
import re
import sys

MAX_AXES = 64                # Axes of one figure
MAX_ARTISTS = 10000          # artists of one Axes
MAX_ITEMS = 100000           # points, bars, wedges, boxes and ticks of one figure together
SIGNIFICANT = 10             # digits kept of box plot numbers: no float noise
ANGLE_DIGITS = 6             # of pie angles: matplotlib computes wedges in float32


class _TooBig(Exception):
    pass


def figure_chart(fig):
    """The chart form of a figure, or None: no data on it, too big, or not readable."""
    try:
        return _Reader().figure(fig)
    except KeyboardInterrupt:
        raise
    except Exception:
        return None


class _Reader:
    """One figure's extraction, with its budget."""

    def __init__(self):
        self.left = MAX_ITEMS

    def take(self, n):
        if n > self.left:
            raise _TooBig()
        self.left -= n

    def figure(self, fig):
        axes = list(fig.get_axes())
        if len(axes) > MAX_AXES:
            raise _TooBig()
        if not any(ax.has_data() for ax in axes):
            return None
        if len(axes) == 1:
            return self.axes(axes[0])
        return {"type": "superchart", "title": _suptitle(fig), "elements": [self.axes(ax) for ax in axes]}

    def axes(self, ax):
        kind = _kind(ax)
        chart = {"type": kind, "title": _text(ax.get_title())}
        if kind in ("line", "scatter"):
            _labels(ax, chart)
            self.ticks(ax, chart)
            chart["elements"] = self.lines(ax) if kind == "line" else self.scatters(ax)
        elif kind == "bar":
            chart["elements"] = self.bars(ax, chart)
        elif kind == "box_and_whisker":
            chart["elements"] = self.boxes(ax, chart)
        elif kind == "pie":
            chart["elements"] = self.wedges(ax)
        else:
            chart["elements"] = []
        return chart

    # -- line and scatter ---------------------------------------------------------------------

    def ticks(self, ax, chart):
        for name, axis, scale in (("x", ax.xaxis, ax.get_xscale()), ("y", ax.yaxis, ax.get_yscale())):
            locations = list(axis.get_ticklocs())
            self.take(len(locations))
            labels = [_text(label.get_text()) or "" for label in axis.get_ticklabels()]
            converter = _converter(axis)
            if _is_dates(converter):
                from matplotlib.dates import num2date
                chart[name + "_ticks"] = [num2date(t).isoformat() for t in locations]
                scale = "datetime"
            else:
                chart[name + "_ticks"] = [_value(t) for t in locations]
                if scale == "linear" and _categorical(converter, locations, labels):
                    scale = "categorical"
            chart[name + "_tick_labels"] = labels
            chart[name + "_scale"] = str(scale)

    def lines(self, ax):
        out = []
        for line in ax.get_lines():
            if _is_rule(line):
                continue
            xs, ys = line.get_xdata(), line.get_ydata()
            self.take(min(len(xs), len(ys)))
            out.append({"label": _numbered(line.get_label(), "_child", "Line"), "points": _points(xs, ys)})
        return out

    def scatters(self, ax):
        out = []
        for collection in ax.collections:
            offsets = collection.get_offsets()
            self.take(len(offsets))
            out.append({"label": _text(collection.get_label()) or "", "points": _points(offsets[:, 0], offsets[:, 1])})
        return out

    # -- bar, box and whisker, pie --------------------------------------------------------------

    def bars(self, ax, chart):
        from matplotlib.container import BarContainer
        out = []
        horizontal = False
        names = {}
        for container in ax.containers:
            if not isinstance(container, BarContainer):
                continue
            rects = list(container.patches)
            self.take(len(rects))
            horizontal = _bars_horizontal(container, rects)
            if horizontal not in names:
                names[horizontal] = _TickNames(ax.yaxis if horizontal else ax.xaxis)
            values = getattr(container, "datavalues", None)
            if values is None or len(values) != len(rects):
                values = [r.get_width() if horizontal else r.get_height() for r in rects]
            group = _numbered(container.get_label(), "_container", "Group")
            for rect, value in zip(rects, values):
                centre = rect.get_y() + rect.get_height() / 2 if horizontal else rect.get_x() + rect.get_width() / 2
                out.append({"label": names[horizontal].at(centre), "group": group, "value": _value(value)})
        _labels(ax, chart, swap=horizontal)
        return out

    def boxes(self, ax, chart):
        from matplotlib.patches import PathPatch
        patches = [p for p in ax.patches if isinstance(p, PathPatch)]
        lines = list(ax.get_lines())
        self.take(len(patches) + len(lines))
        horizontal = _boxes_horizontal(ax, patches)
        names = _TickNames(ax.yaxis if horizontal else ax.xaxis)
        boxes = []
        for patch in patches:
            vertices = patch.get_path().vertices
            cs, vs = (vertices[:, 1], vertices[:, 0]) if horizontal else (vertices[:, 0], vertices[:, 1])
            boxes.append(_Box(_round(min(cs)), _round(max(cs)), _round(min(vs)), _round(max(vs))))
        for line in lines:
            xs, ys = line.get_xdata(), line.get_ydata()
            self.take(len(xs))
            cs, vs = (ys, xs) if horizontal else (xs, ys)
            cs, vs = [_round(c) for c in cs], [_round(v) for v in vs]
            if str(line.get_linestyle()).lower() in ("none", "", " "):  # fliers: markers only
                for c, v in zip(cs, vs):
                    box = _box_at(boxes, c, c)
                    if box is not None:
                        box.outliers.append(v)
            elif len(cs) == 2 and len(vs) == 2:
                box = _box_at(boxes, min(cs), max(cs))
                if box is not None:
                    box.segment(cs, vs)
        _labels(ax, chart, swap=horizontal)
        return [{"label": names.at((box.c0 + box.c1) / 2), "min": box.lowest(), "first_quartile": box.q1,
                 "median": box.median, "third_quartile": box.q3, "max": box.highest(),
                 "outliers": box.outliers} for box in boxes]

    def wedges(self, ax):
        from matplotlib.patches import Wedge
        wedges = [w for w in ax.patches if isinstance(w, Wedge)]
        self.take(len(wedges))
        return [{"label": _text(w.get_label()) or "", "angle": abs(_round(float(w.theta2) - float(w.theta1), ANGLE_DIGITS)),
                 "radius": _value(w.r)} for w in wedges]


class _Box:
    """One box of a box plot in (category, value) coordinates, and what its lines say."""

    def __init__(self, c0, c1, q1, q3):
        self.c0, self.c1, self.q1, self.q3 = c0, c1, q1, q3
        self.median = None
        self.whisker_low = self.whisker_high = None
        self.cap_low = self.cap_high = None
        self.outliers = []

    def segment(self, cs, vs):
        """A two-point line over this box: a whisker runs along the value axis from a box edge,
        the median crosses the box, a cap crosses beyond it."""
        low, high = min(vs), max(vs)
        if _same(cs[0], cs[1]):
            if _same(high, self.q1):
                self.whisker_low = low
            elif _same(low, self.q3):
                self.whisker_high = high
        elif _same(vs[0], vs[1]):
            if self.q1 <= low <= self.q3:
                self.median = low
            elif low < self.q1:
                self.cap_low = low
            else:
                self.cap_high = low

    def lowest(self):
        return _first(self.whisker_low, self.cap_low, self.q1)

    def highest(self):
        return _first(self.whisker_high, self.cap_high, self.q3)


class _TickNames:
    """The tick label at a position of an axis (a bar's or box's category); the position's number
    when no tick sits there."""

    def __init__(self, axis):
        self.names = {}
        locations = list(axis.get_ticklocs())
        labels = [label.get_text() for label in axis.get_ticklabels()]
        if len(locations) == len(labels):
            for location, label in zip(locations, labels):
                self.names[_round(location)] = _text(label) or ""

    def at(self, position):
        key = _round(position)
        if key in self.names:
            return self.names[key]
        return "%g" % key


# -- what an Axes is -------------------------------------------------------------------------------

def _kind(ax):
    from matplotlib.collections import PathCollection
    from matplotlib.lines import Line2D
    from matplotlib.patches import PathPatch, Rectangle, Wedge
    from matplotlib.text import Text
    artists = [a for a in _children(ax) if not isinstance(a, Text)]
    if all(isinstance(a, Line2D) for a in artists):
        return "line"
    if all(isinstance(a, (PathPatch, Line2D)) for a in artists):
        return "box_and_whisker"
    artists = [a for a in artists if not (isinstance(a, Line2D) and _is_rule(a))]
    for kind, types in (("scatter", PathCollection), ("pie", Wedge), ("bar", Rectangle)):
        if all(isinstance(a, types) for a in artists):
            return kind
    return "unknown"


def _children(ax):
    """The artists user code added to the Axes (not its spines, axis lines or background)."""
    children = getattr(ax, "_children", None)
    if children is None:
        children = [*ax.lines, *ax.collections, *ax.patches, *ax.images, *ax.texts, *ax.tables, *ax.artists]
    if len(children) > MAX_ARTISTS:
        raise _TooBig()
    return list(children)


def _is_rule(line):
    """A two-point horizontal or vertical line (axhline, axvline): a reference, not data."""
    xs, ys = line.get_xdata(), line.get_ydata()
    if len(xs) != 2 or len(ys) != 2:
        return False
    return bool(xs[0] == xs[1] or ys[0] == ys[1])


def _bars_horizontal(container, rects):
    orientation = getattr(container, "orientation", None)
    if orientation in ("vertical", "horizontal"):
        return orientation == "horizontal"
    # matplotlib before 3.4 does not say: horizontal bars share one height
    return len(rects) > 1 and all(r.get_height() == rects[0].get_height() for r in rects)


def _boxes_horizontal(ax, patches):
    """boxplot puts its categories on a fixed-tick axis; failing that, boxes share their width
    along the category axis."""
    from matplotlib.ticker import FixedLocator
    x_fixed = isinstance(ax.xaxis.get_major_locator(), FixedLocator)
    y_fixed = isinstance(ax.yaxis.get_major_locator(), FixedLocator)
    if x_fixed != y_fixed:
        return y_fixed
    if len(patches) < 2:
        return False
    extents = [p.get_path().get_extents() for p in patches]
    same_width = all(_same(e.width, extents[0].width) for e in extents)
    same_height = all(_same(e.height, extents[0].height) for e in extents)
    return same_height and not same_width


def _box_at(boxes, low, high):
    for box in boxes:
        if box.c0 - _slack(box.c0) <= low and high <= box.c1 + _slack(box.c1):
            return box
    return None


# -- axis helpers ---------------------------------------------------------------------------------

def _labels(ax, chart, swap=False):
    """x_label, y_label and their units: "Time (s)" and "Time [s]" have the unit s. For horizontal
    bars and boxes x is the category axis, as E2B has it."""
    x, y = _text(ax.get_xlabel()), _text(ax.get_ylabel())
    if swap:
        x, y = y, x
    chart["x_label"], chart["y_label"] = x, y
    chart["x_unit"], chart["y_unit"] = _unit(x), _unit(y)


def _unit(label):
    if not label:
        return None
    match = re.search(r"\s\(([^)]*)\)|\[([^\]]*)\]", label)
    if match is None:
        return None
    return match.group(1) if match.group(1) is not None else match.group(2)


def _converter(axis):
    getter = getattr(axis, "get_converter", None)
    return getter() if callable(getter) else getattr(axis, "converter", None)


def _is_dates(converter):
    return converter is not None and type(converter).__module__ == "matplotlib.dates"


def _categorical(converter, locations, labels):
    """Strings plotted on the axis, or ticks at 0, 1, 2... named other than their numbers."""
    if type(converter).__name__ == "StrCategoryConverter":
        return True
    if not locations or len(labels) < len(locations):
        return False
    return all(t == i and labels[i] != str(i) for i, t in enumerate(locations))


def _suptitle(fig):
    getter = getattr(fig, "get_suptitle", None)
    if callable(getter):
        return _text(getter())
    title = getattr(fig, "_suptitle", None)
    return _text(title.get_text()) if title is not None else None


# -- values ---------------------------------------------------------------------------------------

def _text(value):
    """A label as E2B has it: None when empty."""
    if value is None:
        return None
    value = str(value)
    return value if value else None


def _numbered(label, prefix, word):
    """matplotlib names unlabelled artists "_child3", "_container1": E2B shows "Line 3", "Group 1"."""
    label = str(label) if label is not None else ""
    if label.startswith(prefix) and label[len(prefix):].isdigit():
        return "%s %s" % (word, label[len(prefix):])
    return label


def _points(xs, ys):
    return [[x, y] for x, y in zip(_values(xs), _values(ys))]


def _values(seq):
    """_value of each item; a numeric numpy array in one step (the common case, and a large one)."""
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(seq, numpy.ndarray) and seq.dtype.kind in "biuf":
        values = seq.astype(float).tolist()  # a masked array's masked items become None
        return [v if v is not None and math.isfinite(v) else None for v in values]
    return [_value(v) for v in seq]


def _value(v):
    """A data value as JSON: dates as ISO 8601, numbers as floats (NaN and infinities as null), the
    rest (category names) as text."""
    if isinstance(v, str):
        return v
    if isinstance(v, datetime.date):
        return v.isoformat()
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(v, numpy.datetime64):
        return str(v.astype("datetime64[s]"))
    try:
        f = float(v)
    except (TypeError, ValueError, OverflowError):
        return str(v)
    return f if math.isfinite(f) else None


def _round(v, digits=SIGNIFICANT):
    f = float(v)
    if not math.isfinite(f):
        return None
    return float("%.*g" % (digits, f))


def _same(a, b):
    return a is not None and b is not None and abs(a - b) <= _slack(max(abs(a), abs(b)))


def _slack(v):
    return 1e-9 * max(1.0, abs(v))


def _first(*values):
    for v in values:
        if v is not None:
            return v
    return None
