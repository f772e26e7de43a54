"""Histogram of per-image neighbour overlap between two models, brushable.

Drag a box along the x axis to select the images whose overlap lies in that range (e.g. the
left end: neighbourhoods that changed most); ``selection`` then holds their ids. Setting
``brush`` from Python does the same; setting ``selection`` from Python highlights nothing here
(the histogram has no per-image marks) and is not reported back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from traitlets import HasTraits, List, Tuple, Unicode, observe

from clipviz.views._plotly_widget import FigureEvent, PlotlyFigure

_BARS, _BRUSHED = 0, 1


class OverlapHistogram(HasTraits):
    """Distribution of neighbour overlap (0 = all neighbours changed, 1 = none changed).

    Parameters
    ----------
    n_bins : int
        Histogram bars over [0, 1].
    height : int
        Figure height in pixels.

    Attributes
    ----------
    selection : list of str
        Ids of the images inside the brushed range.
    brush : tuple of float
        ``(low, high)`` overlap range selected, or ``()`` for none.
    title : str
        Shown above the bars (plain text, escaped by plotly).
    """

    selection = List(Unicode())
    brush = Tuple()
    title = Unicode("")

    def __init__(self, *, n_bins: int = 20, height: int = 260, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n_bins = int(n_bins)
        self.height = int(height)
        self._ids: list[str] = []
        self._values = np.zeros(0, np.float32)
        self._fig: PlotlyFigure | None = None

    def set_values(self, ids: Sequence[str], values: Any, *, title: str = "") -> None:
        """Per-image overlap values in [0, 1]; NaN (image missing in one model) is not drawn."""
        values = np.asarray(values, dtype=np.float32)
        if values.shape != (len(ids),):
            raise ValueError(f"values must be one per id ({len(ids)}), got shape {values.shape}")
        self._ids, self._values = [str(i) for i in ids], values
        self.title = str(title)
        self.brush = ()
        self._redraw()

    @property
    def values(self) -> np.ndarray:
        """The overlap values shown, in id order."""
        return self._values

    def counts(self) -> tuple[np.ndarray, np.ndarray]:
        """(counts, bin edges) of the bars drawn."""
        finite = self._values[np.isfinite(self._values)]
        return np.histogram(finite, bins=self.n_bins, range=(0.0, 1.0))

    @observe("brush")
    def _on_brush(self, change: Any) -> None:
        brush = tuple(change["new"])
        if not brush:
            self.selection = []
        else:
            if len(brush) != 2 or not brush[0] <= brush[1]:
                raise ValueError(f"brush must be (low, high) with low <= high, got {brush!r}")
            low, high = float(brush[0]), float(brush[1])
            inside = (self._values >= low) & (self._values <= high)
            self.selection = [self._ids[i] for i in np.flatnonzero(inside)]
        self._redraw()

    # ------------------------------------------------------------------ widget
    @property
    def figure(self) -> PlotlyFigure:
        """The plot widget (built on first access)."""
        if self._fig is None:
            self._fig = PlotlyFigure(self._traces(), self._layout())
            self._fig.on_selection(self._on_figure_selection)
            self._fig.on_deselect(lambda event: setattr(self, "brush", ()))
        return self._fig

    @property
    def widget(self) -> Any:
        """The figure (a PlotlyFigure widget)."""
        return self.figure

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _on_figure_selection(self, event: FigureEvent) -> None:
        box = (event.selector or {}).get("range") or {}
        if "x" in box and len(box["x"]) == 2:
            low, high = sorted(float(v) for v in box["x"])
            self.brush = (max(0.0, low), min(1.0, high))
            return
        edges = self.counts()[1]
        bars = event.indices(_BARS)
        if bars:  # a click-selection of bars: their joint range
            self.brush = (float(edges[min(bars)]), float(edges[max(bars) + 1]))

    def _traces(self) -> list[dict[str, Any]]:
        counts, edges = self.counts()
        centres = (edges[:-1] + edges[1:]) / 2
        brushed = np.zeros_like(counts)
        if self.brush:
            low, high = self.brush
            inside = self._values[(self._values >= low) & (self._values <= high)]
            brushed = np.histogram(inside, bins=self.n_bins, range=(0.0, 1.0))[0]
        bar = {"type": "bar", "x": centres, "width": float(edges[1] - edges[0])}
        return [
            bar | {"y": counts, "name": "images", "marker": {"color": "#9bb7d4"}},
            bar | {"y": brushed, "name": "brushed", "marker": {"color": "#d62728"}},
        ]

    def _layout(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "barmode": "overlay",
            "dragmode": "select",
            "selectdirection": "h",
            "showlegend": False,
            "title": {"text": self.title, "font": {"size": 13}},
            "margin": {"l": 45, "r": 10, "t": 35, "b": 40},
            "xaxis": {"title": {"text": "neighbour overlap (Jaccard)"}, "range": [0, 1]},
            "yaxis": {"title": {"text": "images"}},
            "plot_bgcolor": "white",
        }

    def _redraw(self) -> None:
        if self._fig is not None:  # only what changed goes to the page
            bars, brushed = self._traces()
            with self._fig.batch():
                self._fig.update_traces({_BARS: bars, _BRUSHED: brushed})
                self._fig.update_layout(title={"text": self.title})
