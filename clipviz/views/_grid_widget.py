"""The prediction grid's anywidget: its synced traits, the two-way sync with the
:class:`~clipviz.views.grid.PredictionGrid` state, and the page's one-off requests (thumbnails,
clearing search results), answered as messages with binary buffers."""

from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING, Any

import traitlets as t

if TYPE_CHECKING:
    from clipviz.views.grid import PredictionGrid

_HERE = pathlib.Path(__file__).parent

_TWO_WAY = (
    "selection",
    "page",
    "page_size",
    "sort_by",
    "sort_prompt",
    "mistakes_only",
    "selected_only",
    "where",
)


def build_widget(state: PredictionGrid) -> Any:
    """The grid's anywidget, two-way synced with ``state`` and answering its messages."""
    import anywidget  # lazily: `import clipviz.views` stays light

    class GridWidget(anywidget.AnyWidget):
        _esm = _HERE / "grid.js"
        _css = _HERE / "grid.css"
        images_version = t.Int(0).tag(sync=True)  # +1 when the images change
        thumb_mime = t.Unicode("image/webp").tag(sync=True)
        items = t.List(t.Dict()).tag(sync=True)  # the visible page only
        classnames = t.List(t.Unicode()).tag(sync=True)
        has_labels = t.Bool(False).tag(sync=True)
        n_total = t.Int(0).tag(sync=True)
        n_shown = t.Int(0).tag(sync=True)
        n_pages = t.Int(1).tag(sync=True)
        results_title = t.Unicode("").tag(sync=True)
        selection = t.List().tag(sync=True)  # of str (untyped: no per-id validation)
        page = t.Int(0).tag(sync=True)
        page_size = t.Int(48).tag(sync=True)
        sort_by = t.Unicode("input").tag(sync=True)
        sort_prompt = t.Unicode("").tag(sync=True)
        mistakes_only = t.Bool(False).tag(sync=True)
        selected_only = t.Bool(False).tag(sync=True)
        where = t.Unicode("").tag(sync=True)
        has_where = t.Bool(False).tag(sync=True)  # an overlay handler is attached

    w = GridWidget(thumb_mime=state.thumb_mime)
    for name in _TWO_WAY:
        _sync(state, w, name)
    w.on_msg(lambda _w, content, _buffers: _on_message(state, w, content))
    return w


def _sync(state: PredictionGrid, w: Any, name: str) -> None:
    """Two-way sync of one trait. Unlike traitlets.link this tolerates the state correcting
    a value (e.g. a page past the end): the corrected value is sent back to the browser."""
    setattr(w, name, getattr(state, name))

    def to_widget(change: dict[str, Any]) -> None:
        if getattr(w, name) != change["new"]:
            setattr(w, name, change["new"])

    def to_state(change: dict[str, Any]) -> None:
        if getattr(state, name) != change["new"]:
            setattr(state, name, change["new"])
        if getattr(w, name) != getattr(state, name):
            setattr(w, name, getattr(state, name))

    state.observe(to_widget, names=name)
    w.observe(to_state, names=name)


def _on_message(state: PredictionGrid, w: Any, content: Any) -> None:
    # One-off requests arrive as messages, not traits (nothing to keep in sync).
    if not isinstance(content, dict):
        return
    if content.get("type") == "clear_results":
        state.clear_results()
    elif content.get("type") == "thumbs" and isinstance(content.get("indices"), list):
        indices = [i for i in content["indices"] if isinstance(i, int)]
        for message, buffer in state.thumbnail_messages(indices):
            w.send(message, buffers=[buffer])
        if state.where and state.overlay_handler is not None:  # overlays replace them later
            state.overlay_handler(indices, state.where, w.images_version)
