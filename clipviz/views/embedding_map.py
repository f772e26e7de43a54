"""The joint embedding map: images and prompts as points in one 2-D plotly WebGL scatter.

A traitlets state object; the widget (``PlotlyFigure`` + controls + hover thumbnail) is built
the first time ``.widget`` is read. Data arrives as numpy arrays and lists of str; coordinates
and colour codes travel as binary float32 / uint8 buffers, and a position update re-sends only
x and y (8 bytes per point). The view computes nothing: the Workbench observes ``center`` and
``color_by`` is handled here only because both label lists are already in hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from traitlets import Bool, Enum, HasTraits, List, Unicode, observe

from clipviz.views._html import escape, escape_all
from clipviz.views._plotly_state import merge
from clipviz.views._plotly_widget import FigureEvent, PlotlyFigure
from clipviz.views._plotting import (
    ColourMap,
    HoverPanel,
    as_strings,
    as_xy,
    check_thumbnails,
)

_IMAGES, _PROMPTS = 0, 1  # trace indices in the figure
_MAX_COLOURBAR = 30  # more classes than this: no colour bar (hover shows the label)


class EmbeddingMap(HasTraits):
    """Images and prompts in one 2-D map (UMAP or PCA), with lasso/box selection.

    Parameters
    ----------
    height : int
        Figure height in pixels.
    hover_label_limit : int
        Up to this many images, plotly's own hover text shows the label as well as the id; above
        it hover text holds only the id (sent once), so a prompt edit re-sends just one byte per
        point. The side panel always shows id, labels and thumbnail.

    Attributes
    ----------
    selection : list of str
        Selected image ids. Set by lasso/box selection; setting it from Python highlights the
        points without being reported back.
    hover : str or None
        Id of the image under the mouse.
    color_by : {"predicted", "true"}
        Which labels colour the images (falls back to predicted when there are no true labels).
    center : bool
        "Remove the modality gap" toggle. The Workbench observes it and recomputes positions.
    method, pending : str
        The projection shown (e.g. "pca") and one being computed in the background (e.g. "umap").
    """

    selection = List(Unicode())
    hover = Unicode(None, allow_none=True)
    color_by = Enum(("predicted", "true"), default_value="predicted")
    center = Bool(False)
    method = Unicode("")
    pending = Unicode("")

    def __init__(self, *, height: int = 480, hover_label_limit: int = 5000, **kwargs: Any):
        super().__init__(**kwargs)
        self.height = int(height)
        self.hover_label_limit = int(hover_label_limit)
        self._xy = np.zeros((0, 2), np.float32)
        self._ids: list[str] = []
        self._index: dict[str, int] = {}
        self._predicted: list[str] | None = None
        self._true: list[str] | None = None
        self._prompt_xy = np.zeros((0, 2), np.float32)
        self._prompts: list[str] = []
        self._thumbs: list[bytes] | None = None
        self._colours = ColourMap()
        self._fig: Any = None
        self._widget: Any = None
        self._panel: HoverPanel | None = None
        self._label_html: Any = None
        self._from_figure = False  # True while a figure event is setting ``selection``

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
        """Set every point at once.

        Parameters
        ----------
        image_xy : array (N, 2)
            Image positions.
        image_ids : list of str
            One unique id per image (what ``selection`` reports).
        image_labels : list of str, optional
            Predicted label per image (colours the points when ``color_by == "predicted"``).
        prompt_xy : array (C, 2), optional
            Prompt positions, in the same axes.
        prompts : list of str, optional
            Prompt text per row of ``prompt_xy`` (drawn next to the marker).
        true_labels : list of str, optional
            True label per image (used when ``color_by == "true"``).

        Notes
        -----
        When the ids are unchanged (a new projection, the modality-gap toggle) only the
        coordinates are re-sent.
        """
        ids = [str(i) for i in image_ids]
        xy = as_xy(image_xy, "image_xy", len(ids))
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise ValueError(f"image_ids must be unique; {dup!r} appears more than once")
        predicted = as_strings(image_labels, "image_labels", len(ids))
        true = as_strings(true_labels, "true_labels", len(ids))
        same_ids = ids == self._ids
        self._xy, self._ids = xy, ids
        self._index = {i: k for k, i in enumerate(ids)}
        self._predicted, self._true = predicted, true
        if self._fig is None:
            if prompt_xy is not None or prompts is not None:
                self.update_prompts(prompt_xy, prompts or [])
            return
        fig = self._fig
        with fig.batch():
            props: dict[str, Any] = {"x": xy[:, 0], "y": xy[:, 1]}
            if not same_ids:
                props["hovertext"] = self._hover_text()
            fig.update_traces({_IMAGES: props})
            self._apply_colours()
            self._apply_selection()
            fig.update_layout(uirevision=f"{self.method}/{self.center}")
            if prompt_xy is not None or prompts is not None:
                self.update_prompts(prompt_xy, prompts or [])

    def update_prompts(self, prompt_xy: Any, prompts: Sequence[str]) -> None:
        """Replace the prompt markers only (the image trace is not touched or re-sent).

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
        if self._fig is not None:
            self._fig.update_traces({_PROMPTS: self._prompt_trace_props()})

    def set_labels(
        self, labels: Sequence[str] | None, *, true_labels: Sequence[str] | None = None
    ) -> None:
        """Replace the predicted labels (and optionally the true ones): re-colours the images.

        Parameters
        ----------
        labels : list of str or None
            Predicted label per image, in ``image_ids`` order.
        true_labels : list of str, optional
            True label per image; left unchanged when not given.
        """
        self._predicted = as_strings(labels, "labels", len(self._ids))
        if true_labels is not None:
            self._true = as_strings(true_labels, "true_labels", len(self._ids))
        if self._fig is not None:
            self._recolour()

    def set_thumbnails(self, thumbnails: Sequence[bytes] | None) -> None:
        """Encoded thumbnails (webp/jpeg/png bytes), one per image, shown on hover."""
        self._thumbs = check_thumbnails(thumbnails, len(self._ids))

    # ------------------------------------------------------------------ widget
    @property
    def figure(self) -> PlotlyFigure:
        """The plot widget (``PlotlyFigure``, built on first access)."""
        if self._fig is None:
            self._fig = self._build_figure()
        return self._fig

    @property
    def widget(self) -> Any:
        """The full widget: controls, the figure and the hover thumbnail (built once)."""
        if self._widget is None:
            import ipywidgets as widgets

            colour = widgets.Dropdown(
                options=[("predicted label", "predicted"), ("true label", "true")],
                description="colour by",
                layout=widgets.Layout(width="220px"),
            )
            gap = widgets.Checkbox(description="remove modality gap", indent=False)
            widgets.link((self, "color_by"), (colour, "value"))
            widgets.link((self, "center"), (gap, "value"))
            self._label_html = widgets.HTML(self._method_text())
            self._panel = HoverPanel()
            controls = widgets.HBox([colour, gap, self._label_html])
            self._widget = widgets.VBox([controls, widgets.HBox([self.figure, self._panel.box])])
        return self._widget

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _build_figure(self) -> PlotlyFigure:
        images = {
            "type": "scattergl",
            "x": self._xy[:, 0],
            "y": self._xy[:, 1],
            "mode": "markers",
            "name": "images",
            "hovertext": self._hover_text(),
            "hoverinfo": "text",
            "marker": {"size": 6},
            "selected": {"marker": {"opacity": 1.0}},
            "unselected": {"marker": {"opacity": 0.12}},
        }
        prompts = {
            "type": "scatter",
            "mode": "markers+text",
            "name": "prompts",
            "hoverinfo": "text",
            "textposition": "top center",
            "marker": {"symbol": "star", "size": 15, "line": {"width": 1, "color": "#222"}},
            "textfont": {"color": "#222222"},
            # plotly marks prompts "unselected" after any lasso: keep them fully visible
            "unselected": {"marker": {"opacity": 1.0}, "textfont": {"color": "#222222"}},
        }
        layout = {
            "height": self.height,
            "margin": {"l": 10, "r": 10, "t": 10, "b": 10},
            "dragmode": "lasso",
            "showlegend": False,
            "hovermode": "closest",
            "uirevision": f"{self.method}/{self.center}",
            "xaxis": {"showticklabels": False, "zeroline": False, "showgrid": False},
            "yaxis": {"showticklabels": False, "zeroline": False, "showgrid": False},
            "plot_bgcolor": "white",
        }
        images["marker"].update(self._image_marker())
        merge(prompts, self._prompt_trace_props())  # nested: keeps the marker symbol
        rows = self._selected_rows()
        if rows is not None:
            images["selectedpoints"] = rows
        fig = PlotlyFigure([images, prompts], layout)
        fig.on_selection(self._on_figure_selection)
        fig.on_deselect(self._on_figure_deselect)
        fig.on_hover(self._on_figure_hover)
        return fig

    # ------------------------------------------------------------------ helpers
    def _active_labels(self) -> list[str] | None:
        if self.color_by == "true" and self._true is not None:
            return self._true
        return self._predicted

    def _image_marker(self) -> dict[str, Any]:
        """Marker properties colouring the images by the active labels."""
        labels = self._active_labels()
        if labels is None:
            return {"color": "#636EFA", "showscale": False}
        codes, names = self._colours.codes(labels)
        k = len(names)
        # Codes stay fixed per label across prompt edits; the colour bar lists present ones.
        present = np.unique(codes).tolist()
        return {
            "color": codes,
            "cmin": -0.5,
            "cmax": k - 0.5,
            "colorscale": ColourMap.colourscale(k),
            "showscale": len(present) <= _MAX_COLOURBAR,
            "colorbar": {
                "tickvals": present,
                "ticktext": escape_all(names[c] for c in present),
                "len": 0.9,
                "thickness": 12,
            },
        }

    def _apply_colours(self) -> None:
        self._fig.update_traces(
            {
                _IMAGES: {"marker": self._image_marker()},
                _PROMPTS: {"marker": {"color": self._prompt_colours()}},
            }
        )

    def _recolour(self) -> None:
        """Colours (and hover labels, below the limit) after the labels or ``color_by`` change."""
        with self._fig.batch():
            self._apply_colours()
            if len(self._ids) <= self.hover_label_limit:
                self._fig.update_traces({_IMAGES: {"hovertext": self._hover_text()}})

    def _prompt_colours(self) -> list[str]:
        return [self._colours.colour(p) or "#222222" for p in self._prompts]

    def _prompt_trace_props(self) -> dict[str, Any]:
        safe = escape_all(self._prompts)
        return {
            "x": self._prompt_xy[:, 0],
            "y": self._prompt_xy[:, 1],
            "text": safe,
            "hovertext": [f"prompt: {p}" for p in safe],
            "marker": {"color": self._prompt_colours()},
        }

    def _hover_text(self) -> list[str]:
        ids = escape_all(self._ids)
        labels = self._active_labels()
        if labels is None or len(ids) > self.hover_label_limit:
            return ids
        return [f"{i}<br>{escape(label)}" for i, label in zip(ids, labels, strict=True)]

    def _selected_rows(self) -> np.ndarray | None:
        index = self._index
        rows = [index[i] for i in self.selection if i in index]
        # None clears plotly's highlighting; an empty array would dim every point.
        return np.asarray(rows, np.int32) if rows else None

    def _apply_selection(self) -> None:
        # Prompts lose any selection state a lasso gave them, so they are never dimmed.
        self._fig.update_traces(
            {
                _IMAGES: {"selectedpoints": self._selected_rows()},
                _PROMPTS: {"selectedpoints": None},
            }
        )

    def _method_text(self) -> str:
        shown = escape(self.method.upper()) if self.method else "no projection yet"
        if self.pending:
            return f"<b>{shown}</b> · {escape(self.pending.upper())} computing…"
        return f"<b>{shown}</b>"

    @observe("method", "pending")
    def _on_method(self, change: Any) -> None:
        if self._label_html is not None:
            self._label_html.value = self._method_text()

    @observe("color_by")
    def _on_color_by(self, change: Any) -> None:
        if self._fig is not None:
            self._recolour()

    @observe("selection")
    def _on_selection(self, change: Any) -> None:
        # A selection made in this figure is already drawn there: do not send it back.
        if self._fig is not None and not self._from_figure:
            self._apply_selection()

    def _set_from_figure(self, ids: list[str]) -> None:
        self._from_figure = True
        try:
            self.selection = ids
        finally:
            self._from_figure = False

    def _on_figure_selection(self, event: FigureEvent) -> None:
        ids = self._ids
        self._set_from_figure([ids[i] for i in event.indices(_IMAGES) if 0 <= i < len(ids)])

    def _on_figure_deselect(self, event: FigureEvent) -> None:
        self._set_from_figure([])

    def _on_figure_hover(self, event: FigureEvent) -> None:
        rows = [i for i in event.indices(_IMAGES) if isinstance(i, int)]
        if not rows or not 0 <= rows[0] < len(self._ids):
            return
        i = rows[0]
        self.hover = self._ids[i]
        lines = [self._ids[i]]
        if self._predicted is not None:
            lines.append(f"predicted: {self._predicted[i]}")
        if self._true is not None:
            lines.append(f"true: {self._true[i]}")
        if self._panel is not None:
            self._panel.show(self._thumbs[i] if self._thumbs else None, lines)
