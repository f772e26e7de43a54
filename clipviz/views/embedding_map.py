"""The joint embedding map: images and prompts in one 2-D WebGL scatter made for millions of points.

A traitlets state object; the widget (an anywidget over regl-scatterplot, see ``_map_widget``)
is built the first time ``.widget`` is read. Points travel as binary float32 x/y and uint8/uint16
colour codes in messages of at most 500k points; prompts are labelled markers drawn on an
overlay above the points. Thumbnails are never sent up front: hovering a point asks the kernel
for that one image (``thumbnail_provider``). The view computes nothing: the Workbench observes
``center`` and decides what to recompute.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from traitlets import Bool, Enum, HasTraits, List, Unicode, observe, validate

from clipviz.compute.id_rows import IdRows
from clipviz.views import _map_widget as wire
from clipviz.views._plotting import (
    PALETTE,
    Codes,
    ColourMap,
    as_codes,
    as_strings,
    as_xy,
    check_thumbnails,
    image_format,
)
from clipviz.views._selection import RowsOfSelection, check_ids

_LEGEND_MAX = 30  # more classes than this present: the legend lists the first ones and a count


class EmbeddingMap(RowsOfSelection, HasTraits):
    """Images and prompts in one 2-D map (UMAP or PCA), with lasso and box selection.

    Parameters
    ----------
    height : int
        Plot height in pixels.
    show_gap_toggle : bool
        Show a "remove modality gap" checkbox above the map. Off by default: the map alone
        cannot recompute anything, so the checkbox only makes sense where an owner (the
        Workbench) observes ``center``. ``gap_control()`` gives the checkbox to place elsewhere.
    hover_label_limit : int
        Accepted for compatibility; hover captions are fetched per point, at any size.

    Attributes
    ----------
    selection : list of str
        Selected image ids. Set by lasso/box selection; setting it from Python replaces the
        highlight in the page (and any lasso there) without being reported back.
    hover : str or None
        Id of the image last hovered in the page.
    color_by : {"predicted", "true"}
        Which labels colour the images (falls back to predicted when there are no true labels).
    center : bool
        "Remove the modality gap" wish; the Workbench observes it and recomputes positions.
    method, pending : str
        The projection shown (e.g. "pca") and one being computed in the background (e.g. "umap").
    thumbnail_provider : callable or None
        ``fn(index) -> bytes`` (encoded webp/jpeg/png) for the image at row ``index``; called only
        when the page hovers that point.
    """

    selection = List()  # of str; checked in _check_selection (List(Unicode()) is slow at 10k+)
    hover = Unicode(None, allow_none=True)
    color_by = Enum(("predicted", "true"), default_value="predicted")
    center = Bool(False)
    method = Unicode("")
    pending = Unicode("")

    def __init__(
        self,
        *,
        height: int = 480,
        show_gap_toggle: bool = False,
        hover_label_limit: int = 5000,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.height = int(height)
        self.show_gap_toggle = bool(show_gap_toggle)
        self.hover_label_limit = int(hover_label_limit)
        self.thumbnail_provider: Callable[[int], bytes | None] | None = None
        self._xy = np.zeros((0, 2), np.float32)
        self._extent = wire.extent_of()
        self._ids: list[str] = []
        self._ids_given: Any = None  # the id list last passed in (same list: not checked again)
        self._index = IdRows(self._ids)  # id -> row look-up (its dict made on the first look-up)
        self._rows = np.zeros(0, np.int64)  # row numbers of ``selection``
        self._predicted: Codes | None = None
        self._true: Codes | None = None
        self._codes = np.zeros(0, np.uint8)
        self._prompt_xy = np.zeros((0, 2), np.float32)
        self._prompts: list[str] = []
        self._colours = ColourMap()
        self._revision = 0
        self._w: Any = None  # the anywidget
        self._widget: Any = None  # what is displayed (the anywidget, or it under the toggle)
        self._from_page = False  # True while a page event is setting ``selection``

    # ------------------------------------------------------------------ data in
    def set_points(
        self,
        image_xy: Any,
        image_ids: Sequence[str],
        image_labels: Sequence[str] | None = None,
        prompt_xy: Any = None,
        prompts: Sequence[str] | None = None,
        *,
        true_labels: Sequence[str] | None = None,
    ) -> None:
        """Set every point at once (a new projection): the page fits its camera to them.

        Parameters
        ----------
        image_xy : array (N, 2)
            Image positions.
        image_ids : list of str
            One unique id per image (what ``selection`` reports).
        image_labels : list of str or (codes, names), optional
            Predicted label per image (colours the points when ``color_by == "predicted"``):
            strings, or an (N,) integer array of codes into ``names`` (cheaper for many images).
        prompt_xy : array (C, 2), optional
            Prompt positions, in the same axes.
        prompts : list of str, optional
            Prompt text per row of ``prompt_xy`` (drawn next to the marker).
        true_labels : list of str or (codes, names), optional
            True label per image (used when ``color_by == "true"``).
        """
        ids = self._ids if image_ids is self._ids_given else _unique_ids(image_ids)
        xy = as_xy(image_xy, "image_xy", len(ids))
        predicted = as_codes(image_labels, "image_labels", len(ids))
        true = as_codes(true_labels, "true_labels", len(ids))
        texts = as_strings(prompts, "prompts", len(prompts)) if prompts is not None else None
        pxy = None
        if prompt_xy is not None or texts is not None:
            texts = texts or []
            pxy = as_xy(
                np.zeros((0, 2)) if prompt_xy is None else prompt_xy, "prompt_xy", len(texts)
            )
        renamed = ids is not self._ids
        self._xy, self._ids, self._ids_given = xy, ids, image_ids
        if renamed:
            self._index = IdRows(ids)
            self._rows = self._rows_of(list(self.selection))
        self._predicted, self._true = predicted, true
        if pxy is not None:
            self._prompt_xy, self._prompts = pxy, texts
        self._extent = wire.extent_of(xy, self._prompt_xy)
        self._codes = self._active_codes()
        self._revision += 1
        if self._w is not None:
            with self._w.hold_sync():
                self._sync_all()
            self._send_points(fit=True)

    def update_prompts(self, prompt_xy: Any, prompts: Sequence[str]) -> None:
        """Replace the prompt markers only (no point is re-sent, the camera stays).

        Parameters
        ----------
        prompt_xy : array (C, 2)
            Prompt positions, e.g. from ``Projection.transform`` (no refit of the map).
        prompts : list of str
            The prompt texts, one per row.
        """
        texts = as_strings(prompts, "prompts", len(prompts)) or []
        self._prompt_xy = as_xy(
            np.zeros((0, 2)) if prompt_xy is None else prompt_xy, "prompt_xy", len(texts)
        )
        self._prompts = texts
        if self._w is not None:
            self._sync_prompts()

    def set_labels(
        self,
        labels: Sequence[str] | Codes | None,
        *,
        true_labels: Sequence[str] | Codes | None = None,
    ) -> None:
        """Replace the predicted labels (and optionally the true ones): re-colours the images.

        Labels are strings or ``(codes, names)`` as in :meth:`set_points`. Only the colour
        codes travel (1 or 2 bytes per point); positions and camera stay.
        """
        self._predicted = as_codes(labels, "labels", len(self._ids))
        if true_labels is not None:
            self._true = as_codes(true_labels, "true_labels", len(self._ids))
        self._recolour()

    @property
    def selected_rows(self) -> np.ndarray:
        """Row numbers (into the ids of :meth:`set_points`) of ``selection``, in its order."""
        return self._rows

    def set_thumbnails(self, thumbnails: Sequence[bytes] | None) -> None:
        """Encoded thumbnails, one per image, served on hover (kept in the kernel, never sent)."""
        thumbs = check_thumbnails(thumbnails, len(self._ids))
        self.thumbnail_provider = None if thumbs is None else thumbs.__getitem__

    # ------------------------------------------------------------------ widget
    @property
    def widget(self) -> Any:
        """The widget to display (built once)."""
        if self._widget is None:
            self._w = self._build_widget()
            if self.show_gap_toggle:
                import ipywidgets as widgets

                self._widget = widgets.VBox([self.gap_control(), self._w])
            else:
                self._widget = self._w
        return self._widget

    @property
    def map_widget(self) -> Any:
        """The anywidget that draws the map (built with ``widget``)."""
        self.widget  # noqa: B018 - builds it
        return self._w

    def gap_control(self) -> Any:
        """A "remove modality gap" checkbox linked to ``center``, for the app to place."""
        import ipywidgets as widgets

        box = widgets.Checkbox(description="remove modality gap", indent=False)
        widgets.link((self, "center"), (box, "value"))
        return box

    @property
    def figure(self) -> Any:
        """A static plotly figure of the current map (images, prompts), e.g. for snapshots."""
        import plotly.graph_objects as go

        from clipviz.views._html import escape_all

        images = go.Scattergl(
            x=self._xy[:, 0], y=self._xy[:, 1], mode="markers", name="images",
            marker={"size": 4, "color": [PALETTE[c % len(PALETTE)] for c in self._codes.tolist()]},
            hovertext=escape_all(self._ids), hoverinfo="text",
        )  # fmt: skip
        prompts = go.Scatter(
            x=self._prompt_xy[:, 0], y=self._prompt_xy[:, 1], mode="markers+text", name="prompts",
            text=escape_all(self._prompts), textposition="top center",
            marker={"symbol": "star", "size": 14, "color": self._prompt_colours()},
        )  # fmt: skip
        layout = {"height": self.height, "showlegend": False, "margin": dict.fromkeys("lrtb", 10)}
        return go.Figure([images, prompts], layout)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _build_widget(self) -> Any:
        w = wire.widget_class()(height=self.height)
        self._w = w
        with w.hold_sync():
            self._sync_all()
        w.on_msg(self._on_page_message)
        w.observe(self._on_page_color_by, names="color_by")
        return w

    # ------------------------------------------------------------------ to the page
    def _sync_all(self) -> None:
        w = self._w
        w.n_points = len(self._ids)
        w.points_revision = self._revision
        w.has_true = self._true is not None
        w.color_by, w.method, w.pending = self.color_by, self.method, self.pending
        self._sync_legend()
        self._sync_prompts()
        w.selected = self._selected_rows().tobytes()

    def _sync_legend(self) -> None:
        names = self._colours.codes([])[1]  # every label given a code so far
        present = np.unique(self._codes).tolist() if len(self._codes) else []
        self._w.categories = names
        self._w.colors = [PALETTE[i % len(PALETTE)] for i in range(len(names))]
        self._w.present = present[:_LEGEND_MAX] + (
            [-len(present)] if len(present) > _LEGEND_MAX else []
        )

    def _sync_prompts(self) -> None:
        with self._w.hold_sync():
            self._w.prompts = list(self._prompts)
            self._w.prompt_xy = wire.normalise(self._prompt_xy, self._extent).tobytes()
            self._w.prompt_colors = self._prompt_colours()

    def _send_points(self, *, fit: bool, codes_only: bool = False) -> int:
        fields = {"z": self._codes}
        if not codes_only:
            xy = wire.normalise(self._xy, self._extent)
            fields = {"x": xy[:, 0].copy(), "y": xy[:, 1].copy(), "z": self._codes}
        return wire.send_points(self._w.send, self._revision, fields, fit=fit)

    def _recolour(self) -> None:
        self._codes = self._active_codes()
        if self._w is not None:
            with self._w.hold_sync():
                self._sync_legend()
                self._w.prompt_colors = self._prompt_colours()
                self._w.color_by = self.color_by
            self._send_points(fit=False, codes_only=True)

    # ------------------------------------------------------------------ helpers
    def _active_codes(self) -> np.ndarray:
        use_true = self.color_by == "true" and self._true is not None
        labels = self._true if use_true else self._predicted
        if labels is None:
            return np.zeros(len(self._ids), np.uint8)
        return self._colours.codes_of(labels)

    def _prompt_colours(self) -> list[str]:
        return [self._colours.colour(p) or "#888888" for p in self._prompts]

    def _selected_rows(self) -> np.ndarray:
        return self._rows.astype(np.uint32)

    def _rows_of(self, ids: list[str]) -> np.ndarray:
        if not ids:
            return np.zeros(0, np.int64)
        rows = self._index(ids)
        return rows[rows >= 0]

    # ------------------------------------------------------------------ from the page
    def _on_page_message(self, _widget: Any, content: dict[str, Any], buffers: list[Any]) -> None:
        kind = content.get("type")
        if kind == "request_points":
            self._send_points(fit=True)
        elif kind == "select":
            rows = np.frombuffer(buffers[0], np.uint32) if buffers else np.zeros(0, np.uint32)
            self._select_rows(rows)
        elif kind == "hover":
            self._answer_hover(int(content.get("index", -1)))

    def _select_rows(self, rows: np.ndarray) -> None:
        ids = self._ids
        keep = rows[rows < len(ids)]
        self._from_page = True
        self._known_rows = keep.astype(np.int64)
        try:
            self.selection = [ids[i] for i in keep.tolist()]
        finally:
            self._from_page = False
            self._known_rows = None
        self._w.selected = keep.astype(np.uint32).tobytes()  # for later views

    def _answer_hover(self, i: int) -> None:
        if not 0 <= i < len(self._ids):
            return
        self.hover = self._ids[i]
        lines = [self._ids[i]]
        for what, labels in (("predicted", self._predicted), ("true", self._true)):
            if labels is not None:
                lines.append(f"{what}: {labels[1][int(labels[0][i])]}")
        data = self.thumbnail_provider(i) if self.thumbnail_provider is not None else None
        mime = f"image/{image_format(data)}" if data else ""
        content = {"type": "thumbnail", "index": i, "lines": lines, "mime": mime}
        self._w.send(content, [memoryview(bytes(data))] if data else [])

    # ------------------------------------------------------------------ observers
    @observe("method", "pending")
    def _on_method(self, change: Any) -> None:
        if self._w is not None:
            self._w.set_trait(change["name"], change["new"])

    @observe("color_by")
    def _on_color_by(self, change: Any) -> None:
        self._recolour()

    def _on_page_color_by(self, change: Any) -> None:
        if change["new"] in ("predicted", "true"):
            self.color_by = change["new"]

    @validate("selection")
    def _check_selection(self, proposal: Any) -> list[str]:
        return check_ids(proposal["value"])

    @observe("selection")
    def _on_selection(self, change: Any) -> None:
        self._rows = self._rows_of_selection(change["new"])
        # A selection made in the page is already drawn there: do not send it back.
        if self._w is not None and not self._from_page:
            self._w.selected = self._selected_rows().tobytes()


def _unique_ids(image_ids: Sequence[Any]) -> list[str]:
    """The ids as str, checked unique (one set of them; the duplicate named when not)."""
    ids = [str(i) for i in image_ids]
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dup = next(i for i in ids if i in seen or seen.add(i))
        raise ValueError(f"image_ids must be unique; {dup!r} appears more than once")
    return ids
