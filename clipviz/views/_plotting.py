"""Shared pieces of the plotly views (embedding map, heatmap, metrics panel).

Private to ``clipviz.views``: input checks that turn bad arrays into readable errors, the
thumbnail hover panel that plotly cannot draw itself, a stable label -> colour assignment, and
``record_messages``, which counts the bytes a widget sends to the browser (for benchmarks).
The plot widget itself is ``clipviz.views._plotly_widget.PlotlyFigure``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from clipviz.views._html import escape

# Qualitative palette (plotly's "Plotly" + "D3" sets, de-duplicated): colours repeat after 20.
PALETTE = [
    "#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A", "#19D3F3", "#FF6692", "#B6E880",
    "#FF97FF", "#FECB52", "#1F77B4", "#FF7F0E", "#2CA02C", "#D62728", "#9467BD", "#8C564B",
    "#E377C2", "#7F7F7F", "#BCBD22", "#17BECF",
]  # fmt: skip


def as_xy(xy: Any, name: str, n: int | None = None) -> np.ndarray:
    """Check an (N, 2) array of finite coordinates and return it as C-contiguous float32."""
    arr = np.asarray(xy, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must have shape (N, 2), got {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} rows but {n} were expected (one per item)")
    if not np.isfinite(arr).all():
        bad = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise ValueError(f"{name} row {bad} is not finite: {arr[bad].tolist()}")
    return np.ascontiguousarray(arr)


def as_strings(values: Sequence[Any] | None, name: str, n: int) -> list[str] | None:
    """Check that ``values`` (or None) has one entry per item; return them as str."""
    if values is None:
        return None
    if isinstance(values, str):
        raise TypeError(f"{name} must be a list of strings, not a single string {values!r}")
    out = [str(v) for v in values]
    if len(out) != n:
        raise ValueError(f"{name} has {len(out)} entries but {n} were expected (one per item)")
    return out


#: Labels as ``(codes, names)``: an (N,) integer array of codes into ``names``.
Codes = tuple[np.ndarray, Sequence[str]]


def as_codes(values: Sequence[str] | Codes | None, name: str, n: int) -> Codes | None:
    """Labels as ``(codes, names)``: as given (checked), or factorised from N strings.

    Views take labels either way; integer codes cost a million images nothing per update,
    where a list of a million strings costs a Python pass each time.
    """
    if values is None:
        return None
    if isinstance(values, str):
        raise TypeError(f"{name} must be a list of strings, not a single string {values!r}")
    if isinstance(values, tuple) and len(values) == 2 and isinstance(values[0], np.ndarray):
        codes, names = values[0], [str(x) for x in values[1]]
        if codes.shape != (n,) or codes.dtype.kind not in "iu":
            raise ValueError(
                f"{name} codes have shape {codes.shape} and dtype {codes.dtype}; "
                f"expected ({n},) integers, one per item"
            )
        if len(codes) and (int(codes.min()) < 0 or int(codes.max()) >= len(names)):
            raise ValueError(
                f"{name} codes must lie in [0, {len(names)}): one of the {len(names)} names"
            )
        return codes, names
    strings = as_strings(values, name, n) or []
    import pandas as pd

    codes, uniques = pd.factorize(np.asarray(strings, dtype=object), sort=True)
    return codes.astype(np.int32), [str(x) for x in uniques]


def unique_names(names: Sequence[str]) -> list[str]:
    """Make names unique by suffixing repeats (" (2)", ...): plotly merges equal categories."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        count = seen.get(name, 0) + 1
        seen[name] = count
        out.append(name if count == 1 else f"{name} ({count})")
    return out


class ColourMap:
    """Assign each label a colour once, so a class keeps its colour as prompts are edited."""

    def __init__(self) -> None:
        self._index: dict[str, int] = {}

    def codes_of(self, labels: Codes) -> np.ndarray:
        """Colour code per image of labels given as ``(codes, names)``: one look-up per name."""
        codes, names = labels
        lookup, _ = self.codes(list(names))
        return lookup[codes] if len(lookup) else np.zeros(len(codes), np.uint8)

    def codes(self, labels: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        """Integer code per label (uint8 when it fits, else uint16) and the label of each code."""
        for label in labels:
            if label not in self._index:
                self._index[label] = len(self._index)
        lookup = self._index
        dtype = np.uint8 if len(lookup) <= 256 else np.uint16
        codes = np.fromiter((lookup[x] for x in labels), dtype=dtype, count=len(labels))
        return codes, list(lookup)

    def colour(self, label: str) -> str | None:
        """The colour already given to ``label``, or None if it was never seen."""
        i = self._index.get(label)
        return None if i is None else PALETTE[i % len(PALETTE)]

    @staticmethod
    def colourscale(k: int) -> list[list[Any]]:
        """A stepped colourscale mapping codes 0..k-1 (with cmin=-0.5, cmax=k-0.5) to colours."""
        k = max(k, 1)
        scale: list[list[Any]] = []
        for i in range(k):
            colour = PALETTE[i % len(PALETTE)]
            scale += [[i / k, colour], [(i + 1) / k, colour]]
        return scale


def image_format(data: bytes) -> str:
    """The ipywidgets.Image format of encoded image bytes (webp, jpeg, gif or png)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:4] == b"GIF8":
        return "gif"
    return "png"


class HoverPanel:
    """A thumbnail and a caption beside a plot, updated from Python on hover.

    Plotly's hover labels cannot show images, so the figure's ``on_hover`` callback calls
    ``show`` with the hovered image's thumbnail bytes.
    """

    def __init__(self, size: int = 128) -> None:
        import ipywidgets as widgets

        self.image = widgets.Image(format="png", width=size, height=size)
        self.image.layout.visibility = "hidden"
        self.caption = widgets.HTML("<i>hover a point</i>")
        self.caption.layout.max_width = f"{size + 32}px"
        self.box = widgets.VBox([self.image, self.caption])
        self.box.layout.min_width = f"{size + 16}px"

    def show(self, thumbnail: bytes | None, lines: Sequence[str]) -> None:
        """Show ``thumbnail`` (or nothing) and ``lines`` of plain text (escaped here)."""
        if thumbnail:
            self.image.format = image_format(thumbnail)
            self.image.value = thumbnail
            self.image.layout.visibility = "visible"
        else:
            self.image.layout.visibility = "hidden"
        self.caption.value = "<br>".join(escape(line) for line in lines)


class LazyThumbnails:
    """Index -> thumbnail bytes, asked of a store (``thumbnail(index)``) only when shown."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def __len__(self) -> int:
        return len(self._store)

    def __getitem__(self, index: int) -> bytes:
        return self._store.thumbnail(int(index))


def check_thumbnails(thumbnails: Any, n: int) -> Sequence[bytes] | None:
    """Check one encoded thumbnail (bytes) per image, or None.

    A store with ``thumbnail(index) -> bytes`` (``clipviz.engine.thumbnails.ThumbnailStore``) is kept
    lazy: hovering one point makes one thumbnail, and nothing is decoded up front.
    """
    if thumbnails is None:
        return None
    if callable(getattr(thumbnails, "thumbnail", None)):
        if len(thumbnails) != n:
            raise ValueError(f"got {len(thumbnails)} thumbnails for {n} images: pass one per image")
        return LazyThumbnails(thumbnails)
    thumbs = list(thumbnails)
    if len(thumbs) != n:
        raise ValueError(f"got {len(thumbs)} thumbnails for {n} images: pass one per image")
    for i, t in enumerate(thumbs):
        if not isinstance(t, bytes | bytearray | memoryview):
            raise TypeError(f"thumbnail {i} must be encoded image bytes, got {type(t).__name__}")
    return [bytes(t) for t in thumbs]


@contextlib.contextmanager
def record_messages(widget: Any) -> Iterator[list[tuple[int, int]]]:
    """Record what ``widget`` sends to the browser while the block runs.

    Yields a list that fills with one ``(json_bytes, binary_bytes)`` pair per comm message:
    the JSON part as ``json.dumps`` encodes it (jupyter's encoder is close to this) and the
    total size of the binary buffers. Works without a kernel, so benchmarks can call it.

    Examples
    --------
    >>> with record_messages(view.figure) as sent:           # doctest: +SKIP
    ...     view.set_points(xy, ids)
    >>> sum(j + b for j, b in sent)                           # doctest: +SKIP
    """
    sent: list[tuple[int, int]] = []
    original = widget._send

    def _recording_send(msg: Any, buffers: Any = None) -> Any:
        size = sum(memoryview(b).nbytes for b in buffers or [])
        sent.append((len(json.dumps(msg, default=str).encode()), size))
        return original(msg, buffers=buffers)

    widget._send = _recording_send
    try:
        yield sent
    finally:
        del widget._send  # drop the instance attribute; the class method shows through again
