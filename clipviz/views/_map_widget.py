"""The map's browser side: an anywidget over regl-scatterplot (WebGL), and its wire format.

Small state (names, colours, prompts, the selection) is synced as traits. The points themselves
(x, y as float32 and one uint8/uint16 colour code each) never sit in the widget state: they go
as custom messages of at most ``CHUNK_POINTS`` points, so every message stays far under the
Jupyter server's 10 MB limit at any N (1M points: two messages of 5 MB). A view that connects
later (page reload, a second display) asks for them with ``request_points``.
regl-scatterplot and its dependencies are vendored as one built ESM file (``vendor/``) and
evaluated once per page.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

_HERE = Path(__file__).parent
VENDOR = _HERE / "vendor" / "regl-scatterplot.esm.js"
#: points per message: 500k x (4 + 4 + 2) bytes = 5 MB at most, half the server's limit
CHUNK_POINTS = 500_000


@functools.cache
def widget_class() -> type:
    """The anywidget class (defined on first use: ``import clipviz.views`` stays light)."""
    import anywidget
    import traitlets as t

    class MapWidget(anywidget.AnyWidget):
        _esm = _HERE / "embedding_map.js"
        _css = _HERE / "embedding_map.css"
        _lib = t.Unicode(VENDOR.read_text(encoding="utf-8")).tag(sync=True)
        n_points = t.Int(0).tag(sync=True)
        points_revision = t.Int(0).tag(sync=True)
        categories = t.List(t.Unicode()).tag(sync=True)  # label of each colour code
        colors = t.List(t.Unicode()).tag(sync=True)  # colour of each code
        present = t.List(t.Int()).tag(sync=True)  # codes in use now (the legend)
        prompts = t.List(t.Unicode()).tag(sync=True)  # raw text: the page uses textContent
        prompt_xy = t.Bytes(b"").tag(sync=True)  # (C, 2) float32, normalised like the points
        prompt_colors = t.List(t.Unicode()).tag(sync=True)
        selected = t.Bytes(b"").tag(sync=True)  # uint32 rows
        color_by = t.Unicode("predicted").tag(sync=True)
        has_true = t.Bool(False).tag(sync=True)
        method = t.Unicode("").tag(sync=True)
        pending = t.Unicode("").tag(sync=True)
        height = t.Int(480).tag(sync=True)

    return MapWidget


def normalise(xy: np.ndarray, extent: tuple[float, float, float, float]) -> np.ndarray:
    """Map data coordinates into regl-scatterplot's [-1, 1] square, keeping the aspect ratio."""
    x0, x1, y0, y1 = extent
    half = max(x1 - x0, y1 - y0) / 2 * 1.06 or 1.0  # a small margin round the points
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2], np.float32)
    return np.ascontiguousarray((xy - centre) / np.float32(half), dtype=np.float32)


def extent_of(*arrays: np.ndarray) -> tuple[float, float, float, float]:
    """(xmin, xmax, ymin, ymax) over every non-empty (K, 2) array."""
    parts = [a for a in arrays if len(a)]
    if not parts:
        return (-1.0, 1.0, -1.0, 1.0)
    lo = np.min([a.min(axis=0) for a in parts], axis=0)
    hi = np.max([a.max(axis=0) for a in parts], axis=0)
    return (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))


def send_points(
    send: Callable[[dict[str, Any], list[Any]], None],
    revision: int,
    fields: dict[str, np.ndarray],
    *,
    fit: bool,
) -> int:
    """Send ``fields`` (name -> 1-D array, all of one length) in chunks; returns messages sent.

    Each message: ``{"type": "points", "revision", "chunk", "chunks", "start", "total",
    "fields", "dtypes", "fit"}`` with one binary buffer per field, in ``fields`` order.
    """
    total = len(next(iter(fields.values()))) if fields else 0
    chunks = max(1, -(-total // CHUNK_POINTS))
    names = list(fields)
    for chunk in range(chunks):
        start, stop = chunk * CHUNK_POINTS, min(total, (chunk + 1) * CHUNK_POINTS)
        buffers = [memoryview(np.ascontiguousarray(fields[n][start:stop])) for n in names]
        content = {
            "type": "points",
            "revision": revision,
            "chunk": chunk,
            "chunks": chunks,
            "start": start,
            "total": total,
            "fields": names,
            "dtypes": [str(fields[n].dtype) for n in names],
            "fit": fit,
        }
        send(content, buffers)
    return chunks
