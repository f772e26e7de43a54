"""A small plotly.js widget whose Python -> browser updates we control (replaces go.FigureWidget).

Plotly's own anywidget-based ``FigureWidget`` (plotly 7.1) carries plotly's 5 MB bundle as the ESM
of every figure, imported once per figure; past anywidget's 2 s init timeout (several figures, a
busy machine) a figure draws but drops every later Python-side edit, and figures in a fixed-size
box keep plotly's default size (plotly.py #4998). Measured, with the reproducer, in
docs/architecture.md ("Why our own plotly widget"). ``PlotlyFigure`` keeps the figure as plain dicts
(``data``: one dict per trace, ``layout``) and sends each change as one custom message with only
the changed properties; numpy arrays travel as binary buffers (``{"dtype", "shape", "buffer"}``).
The browser applies the same merge rules and redraws with ``Plotly.react``. Every message carries
a revision number: a view that missed one asks for the whole figure again.

plotly.js itself (its cartesian bundle, vendored, or the copy shipped in the plotly Python
package; no network) is held once per kernel by ``_PlotlyLibrary``; each figure refers to it, and
the page evaluates it once.

The state format and the merge rules live in ``_plotly_state``.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import traitlets as t
from ipywidgets import CallbackDispatcher, widget_serialization

from clipviz.views._plotly_state import Props, diff, encode, merge, owned_copy

_EVENTS = ("plotly_selected", "plotly_deselect", "plotly_click", "plotly_hover")


# ---------------------------------------------------------------------------- plotly.js, once
_CARTESIAN_BUNDLE = Path(__file__).with_name("vendor") / "plotly-cartesian.min.js"
# The trace modules of plotly.js's cartesian bundle (its README); every view draws only these.
CARTESIAN_TRACES = frozenset(
    "bar box contour heatmap histogram histogram2d histogram2dcontour image pie scatter"
    " scatterternary violin".split()
)


class _PlotlyLibrary(anywidget.AnyWidget):
    """Holds plotly.js (offline) for every figure on the page."""

    _esm = "export default {};"
    source = t.Bytes().tag(sync=True)
    version = t.Unicode().tag(sync=True)
    cartesian = t.Bool(False).tag(sync=True)


_LIBRARY: _PlotlyLibrary | None = None


def _bundle_version(source: bytes) -> str | None:
    """``4.1.1`` from a plotly.js bundle's licence header (``* plotly.js (...) v4.1.1``)."""
    header = source[:200].decode("ascii", "replace")
    words = [w for w in header.split() if w.startswith("v") and w[1:2].isdigit()]
    return words[0][1:] if words else None


def _library_source() -> tuple[bytes, bool]:
    """plotly.js's cartesian bundle, or the plotly package's full one; and which it is.

    The cartesian bundle (1.5 MB, vendored) holds every trace type the views draw and costs a
    third of the full bundle's 4.8 MB to send and evaluate on each page open (issue 9's reopen
    target). It is used only when it is the plotly.js version the plotly package ships, so the
    figures' properties mean the same as plotly.py's.
    """
    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    with contextlib.suppress(OSError):
        source = _CARTESIAN_BUNDLE.read_bytes()
        if _bundle_version(source) == get_plotlyjs_version():
            return source, True
    return get_plotlyjs().encode(), False


def plotly_library() -> _PlotlyLibrary:
    """The kernel's one ``_PlotlyLibrary`` (made on first use; remade if it was closed)."""
    global _LIBRARY
    if _LIBRARY is None or _LIBRARY.comm is None:
        import plotly

        source, cartesian = _library_source()
        _LIBRARY = _PlotlyLibrary(source=source, version=plotly.__version__, cartesian=cartesian)
    return _LIBRARY


def _check_trace_types(data: list[Mapping[str, Any]], library: _PlotlyLibrary) -> None:
    """Refuse a trace the page's plotly.js could not draw (it would show an empty plot)."""
    if not library.cartesian:
        return
    missing = sorted({str(d.get("type", "scatter")) for d in data} - CARTESIAN_TRACES)
    if missing:
        raise ValueError(
            f"PlotlyFigure draws with plotly.js's cartesian bundle, which has no {missing} "
            f"trace; use one of {sorted(CARTESIAN_TRACES)} (e.g. 'scatter' for 'scattergl')."
        )


# ---------------------------------------------------------------------------- events
@dataclass
class FigureEvent:
    """A plotly.js event reported by the page.

    Attributes
    ----------
    type : str
        ``plotly_selected``, ``plotly_deselect``, ``plotly_click`` or ``plotly_hover``.
    points : list of dict
        Click/hover: ``{"trace": int, "index": int or [row, col], "x": ..., "y": ...}``.
    selected : dict of int -> ndarray
        Selection events: point indices per trace (every trace plotly marks, possibly empty).
    selector : dict or None
        The lasso/box geometry plotly reported, if any.
    """

    type: str
    points: list[dict[str, Any]] = field(default_factory=list)
    selected: dict[int, np.ndarray] = field(default_factory=dict)
    selector: dict[str, Any] | None = None

    def indices(self, trace: int) -> list[Any]:
        """Point indices of one trace (selection, or the clicked/hovered points)."""
        if trace in self.selected:
            return self.selected[trace].tolist()
        return [p["index"] for p in self.points if p.get("trace") == trace]


def _decode_event(content: Mapping[str, Any], buffers: list[Any]) -> FigureEvent:
    selected = {}
    for group in content.get("groups") or []:
        raw = buffers[int(group["buffer"])] if buffers else b""
        selected[int(group["trace"])] = np.frombuffer(bytes(raw), dtype=np.int32).copy()
    return FigureEvent(
        type=str(content.get("event")),
        points=list(content.get("points") or []),
        selected=selected,
        selector=content.get("selector"),
    )


# ---------------------------------------------------------------------------- the widget
def _state_json(value: Any, widget: Any) -> Any:
    return encode(value)


class PlotlyFigure(anywidget.AnyWidget):
    """A plotly.js figure as a widget: plain-dict state, diff messages, binary arrays.

    Parameters
    ----------
    data : list of dict
        One dict of plotly properties per trace (``{"type": "scatter", "x": array, ...}``); types from
        ``CARTESIAN_TRACES``.
    layout : dict, optional
        Plotly layout properties.
    config : dict, optional
        Plotly config (``displaylogo`` is off by default).

    Examples
    --------
    >>> fig = PlotlyFigure([{"type": "scatter", "x": np.arange(3.0), "y": np.zeros(3)}])
    >>> with fig.batch():                                  # one message for both changes
    ...     fig.update_traces({0: {"y": np.ones(3, np.float32)}})
    ...     fig.update_layout(title="ones")
    >>> fig.on_click(lambda event: print(event.points))    # doctest: +SKIP
    """

    _esm = Path(__file__).with_name("_plotly_widget.js")
    _css = Path(__file__).with_name("_plotly_widget.css")  # follow the light/dark theme
    _data = t.List(t.Dict()).tag(sync=True, to_json=_state_json)
    _layout = t.Dict().tag(sync=True, to_json=_state_json)
    _config = t.Dict().tag(sync=True)
    _rev = t.Int(0).tag(sync=True)
    _uid = t.Unicode().tag(sync=True)
    _library = t.Instance(_PlotlyLibrary).tag(sync=True, **widget_serialization)

    def __init__(
        self,
        data: list[Mapping[str, Any]] | None = None,
        layout: Mapping[str, Any] | None = None,
        *,
        config: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        layout = _normalise_layout(layout or {})
        template = _default_template()
        if template and "template" not in layout:  # look as plotly.py figures do
            layout["template"] = template
        library = plotly_library()
        _check_trace_types(data or [], library)
        super().__init__(
            _data=[owned_copy(d) for d in data or []],
            _layout=layout,
            _config={"displaylogo": False, **(config or {})},
            _uid=uuid.uuid4().hex,
            _library=library,
            **kwargs,
        )
        self._depth = 0
        self._pending: dict[str, Any] | None = None
        # The Workbench updates the map from a UMAP worker thread too: one batch at a time, so
        # revisions stay consecutive and a message never holds half of another thread's edit.
        self._lock = threading.RLock()
        self._handlers = {name: CallbackDispatcher() for name in _EVENTS}
        self.on_msg(self._on_front_end_msg)

    # ------------------------------------------------------------------ state
    @property
    def data(self) -> tuple[Props, ...]:
        """The traces, read-only (``fig.data[0].x``)."""
        return tuple(Props(d) for d in self._data)

    @property
    def layout(self) -> Props:
        """The layout, read-only (``fig.layout.title.text``)."""
        return Props(self._layout)

    def to_dict(self) -> dict[str, Any]:
        """The figure as ``{"data": [...], "layout": {...}}`` (copies; arrays stay numpy)."""
        return {"data": owned_copy(self._data), "layout": owned_copy(self._layout)}

    to_plotly_json = to_dict

    # ------------------------------------------------------------------ edits
    def set_figure(
        self, data: list[Mapping[str, Any]], layout: Mapping[str, Any] | None = None
    ) -> None:
        """Replace every trace (and the layout, when given): the page redraws from scratch."""
        _check_trace_types(data, self._library)
        self._store("_data", [owned_copy(d) for d in data])
        if layout is not None:
            self._store("_layout", _normalise_layout(layout))
        with self.batch():
            self._pending["figure"] = True

    def update_traces(self, updates: Mapping[int, Mapping[str, Any]]) -> None:
        """Merge properties into traces: ``{trace index: {prop: value}}``; only changes are sent."""
        n = len(self._data)
        with self.batch():
            for index, props in updates.items():
                i = int(index)
                if not 0 <= i < n:
                    raise IndexError(f"trace index {index} is out of range: the figure has {n}")
                change = diff(self._data[i], props)
                if change:
                    merge(self._data[i], change)
                    traces = self._pending.setdefault("traces", {})
                    merge(traces.setdefault(str(i), {}), change, keep_none=True)

    def update_layout(self, props: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        """Merge layout properties (plotly's ``title_text=`` style is accepted and checked)."""
        change = diff(self._layout, _normalise_layout({**(props or {}), **kwargs}))
        if change:
            with self.batch():
                merge(self._layout, change)
                merge(self._pending.setdefault("layout", {}), change, keep_none=True)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Collect the edits made inside the block into one message to the page."""
        with self._lock:
            if self._depth == 0:
                self._pending = {}
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    pending, self._pending = self._pending, None
                    if pending:
                        self._flush(pending)

    batch_update = batch  # the plotly FigureWidget name

    def _flush(self, pending: dict[str, Any]) -> None:
        self._store("_rev", self._rev + 1)
        if pending.get("figure"):
            self._send_figure()
            return
        buffers: list[memoryview] = []
        msg = {"type": "update", "rev": self._rev}
        for key in ("traces", "layout"):
            if key in pending:
                msg[key] = encode(pending[key], buffers)
        self.send(msg, buffers)

    def _send_figure(self) -> None:
        buffers: list[memoryview] = []
        msg = {"type": "figure", "rev": self._rev}
        msg["data"], msg["layout"] = encode(self._data, buffers), encode(self._layout, buffers)
        self.send(msg, buffers)

    def _store(self, name: str, value: Any) -> None:
        # The page learns about changes through diff messages; the trait only has to hold the
        # whole figure for views that connect later (reloads, Voila), so no state sync here.
        self._trait_values[name] = value

    # ------------------------------------------------------------------ events
    def on_selection(self, callback: Callable[[FigureEvent], Any], remove: bool = False) -> None:
        """Call ``callback(event)`` after a lasso/box selection in the page."""
        self._handlers["plotly_selected"].register_callback(callback, remove=remove)

    def on_deselect(self, callback: Callable[[FigureEvent], Any], remove: bool = False) -> None:
        """Call ``callback(event)`` when the selection is cleared in the page (double click)."""
        self._handlers["plotly_deselect"].register_callback(callback, remove=remove)

    def on_click(self, callback: Callable[[FigureEvent], Any], remove: bool = False) -> None:
        """Call ``callback(event)`` when a point or cell is clicked."""
        self._handlers["plotly_click"].register_callback(callback, remove=remove)

    def on_hover(self, callback: Callable[[FigureEvent], Any], remove: bool = False) -> None:
        """Call ``callback(event)`` when the mouse moves onto a point or cell."""
        self._handlers["plotly_hover"].register_callback(callback, remove=remove)

    def _on_front_end_msg(self, _: Any, content: Any, buffers: list[Any]) -> None:
        if not isinstance(content, Mapping):
            return
        if content.get("type") == "sync":
            with self._lock:
                if content.get("rev") != self._rev:  # that view missed a message: resend all
                    self._send_figure()
        elif content.get("type") == "event" and content.get("event") in self._handlers:
            event = _decode_event(content, buffers)
            if event.type in ("plotly_selected", "plotly_deselect"):
                with self._lock:
                    self._record_selection(event)
            self._handlers[event.type](event)

    def _record_selection(self, event: FigureEvent) -> None:
        # The page already shows this selection: store it (for later views), do not send it.
        for i, trace in enumerate(self._data):
            if i in event.selected:
                trace["selectedpoints"] = event.selected[i]
            else:
                trace.pop("selectedpoints", None)


def _default_template() -> dict[str, Any] | None:
    """plotly.py's current default template as plain dicts (about 7 kB), or None."""
    import plotly.io as pio

    name = pio.templates.default
    return pio.templates[name].to_plotly_json() if name else None


def _normalise_layout(props: Mapping[str, Any]) -> dict[str, Any]:
    """Check layout properties with plotly's validators (clear errors for typos; expands
    ``title="x"`` and ``title_text="x"`` to ``{"title": {"text": "x"}}``). None values stay."""
    if not props:
        return {}
    import plotly.graph_objects as go

    keep = {k: v for k, v in props.items() if v is not None}
    out = go.Layout(keep).to_plotly_json() if keep else {}
    for key, value in keep.items():  # plotly drops empties, but shapes=[] must clear shapes
        if isinstance(value, list | tuple | dict) and not value:
            out.setdefault(key, owned_copy(value))
    out.update({k: None for k, v in props.items() if v is None})
    return out
