"""The similarity heatmap: images (rows) x prompts (columns) cosine similarity, in plotly.

A traitlets state object whose ``PlotlyFigure`` is built on first use. Rows can be ordered by true
label, by predicted class or kept in input order. Up to ``max_rows`` images there is one row per
image; above, one row per class (its mean similarity; runs of images in input order) followed
by a drill-down into the selection: each selected image, or the selection's mean per class.
So a million images are a few dozen rows, never a million labels; clicking a row selects its
images. Grouping uses integer codes (``_heatmap_rows``), not one string per image.
"""

from __future__ import annotations

import html
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
from traitlets import Enum, HasTraits, List, Tuple, Unicode, observe, validate

from clipviz.compute.id_rows import IdRows
from clipviz.views import _heatmap_rows as hr
from clipviz.views._plotly_widget import FigureEvent, PlotlyFigure
from clipviz.views._plotting import Codes, HoverPanel, as_codes, check_thumbnails, unique_names
from clipviz.views._selection import RowsOfSelection, check_ids

_MAX_TICKS = 60  # more rows than this: no row tick labels (hover still names them)
_MAX_MARKS = 50  # at most this many outlined runs of selected rows


def _text(value: object) -> str:
    """Escape once for plotly's text: < > & as entities; quotes stay (plotly shows &quot; raw)."""
    return html.escape(str(value), quote=False)


def _as_grouping(values: Sequence[str] | Codes | None, n: int, name: str) -> hr.Grouping | None:
    """Labels as integer codes: from ``(codes, names)`` as given, or by factorising strings."""
    found = as_codes(values, name, n)
    return None if found is None else hr.Grouping(found[0], list(found[1]))


class SimilarityHeatmap(RowsOfSelection, HasTraits):
    """Images x prompts cosine similarity; click a cell to select its image.

    Parameters
    ----------
    max_rows : int
        Up to this many images, one row per image; above, one row per class plus the
        drill-down into the selection.
    height : int
        Figure height in pixels.

    Attributes
    ----------
    selection : list of str
        Selected image ids (a click selects the clicked row's images). Setting it from Python
        outlines those rows without being reported back.
    click : tuple (image id, prompt)
        The last clicked cell (the first image of the row when rows are averaged).
    hover : str or None
        Id of the image under the mouse (first image of an averaged row).
    row_keys : list of RowKey
        What each drawn row stands for (an image, a class, the selection's part of a class).
    order : {"label", "predicted", "input"}
        Row order: grouped by true label, by predicted class, or as given. Falls back to the
        next available order (noted in the title) when labels are missing.
    """

    selection = List()  # of str; checked in _check_selection (List(Unicode()) is slow at 10k+)
    click = Tuple()
    hover = Unicode(None, allow_none=True)
    order = Enum(("label", "predicted", "input"), default_value="label")

    def __init__(self, *, max_rows: int = 1000, height: int = 480, **kwargs: Any):
        super().__init__(**kwargs)
        if int(max_rows) < 1:
            raise ValueError(f"max_rows must be at least 1, got {max_rows!r}")
        self.max_rows = int(max_rows)
        self.height = int(height)
        self._sim = np.zeros((0, 0), np.float32)
        self._ids: Sequence[str] = []
        self._index = IdRows(self._ids)  # id -> row look-up (its dict made on the first look-up)
        self._prompts: list[str] = []
        self._labels: hr.Grouping | None = None
        self._predicted: hr.Grouping | None = None
        self._thumbs: list[bytes] | None = None
        self._selected = np.zeros(0, np.int64)
        self.row_keys: list[hr.RowKey] = []
        self._names: list[str] = []
        self._z = np.zeros((0, 0), np.float32)
        self._notes: list[str] = []  # one line each under the plot
        self._keys: list[Hashable] | None = None
        self._column_means = hr.ColumnMeans()
        self._fig: Any = None
        self._widget: Any = None
        self._panel: HoverPanel | None = None

    # ------------------------------------------------------------------ data in
    def set_data(
        self,
        similarity: Any,
        image_ids: Sequence[str],
        prompts: Sequence[str],
        labels: Sequence[str] | Codes | None = None,
        predicted: Sequence[str] | Codes | None = None,
        column_keys: Sequence[Hashable] | None = None,
    ) -> None:
        """Set the similarity matrix and its row/column names.

        Parameters
        ----------
        similarity : array (N, C)
            Cosine similarity of each image to each prompt (float32 is kept without a copy).
        image_ids : list of str
            One id per row (kept as given, not copied).
        prompts : list of str
            One prompt (or class name) per column.
        labels, predicted : list of str or (codes, names), optional
            True and predicted label per image, used by ``order``: strings, or an (N,) integer
            array of codes into ``names`` (cheaper for many images).
        column_keys : list of hashable, optional
            One key per column that identifies its values for these images (the Workbench
            passes each prompt vector's bytes): above ``max_rows`` images, the class means
            of a column whose key was seen with the same label codes are reused.
        """
        sim = np.asarray(similarity, dtype=np.float32)
        n = len(image_ids)
        if sim.ndim != 2 or sim.shape != (n, len(prompts)):
            raise ValueError(
                f"similarity must have shape (images, prompts) = ({n}, {len(prompts)}), "
                f"got {sim.shape}"
            )
        # a sum is one pass without an (N, C) temporary: NaN and inf carry through it (a huge
        # finite sum overflowing to inf gets the exact check)
        if not np.isfinite(sim.sum(dtype=np.float32)) and not np.isfinite(sim).all():
            raise ValueError("similarity contains NaN or infinite values")
        if column_keys is not None and len(column_keys) != len(prompts):
            raise ValueError(f"got {len(column_keys)} column_keys for {len(prompts)} prompts")
        self._prompts = [str(p) for p in prompts]
        self._labels = _as_grouping(labels, n, "labels")
        self._predicted = _as_grouping(predicted, n, "predicted")
        if image_ids is not self._ids:
            self._index = IdRows(image_ids)
            self._column_means = hr.ColumnMeans()
        self._keys = None if column_keys is None else list(column_keys)
        self._sim, self._ids = sim, image_ids
        self._selected = self._rows_of(self.selection)
        self._redraw()

    def set_thumbnails(self, thumbnails: Sequence[bytes] | None) -> None:
        """Encoded thumbnails (webp/jpeg/png bytes), one per image, shown on hover."""
        self._thumbs = check_thumbnails(thumbnails, len(self._ids))

    @property
    def row_ids(self) -> list[list[str]]:
        """The image ids in each drawn row, top to bottom (one id per row unless averaged)."""
        return [[self._ids[i] for i in self._members(r)] for r in range(len(self.row_keys))]

    def _members(self, r: int) -> np.ndarray:
        grouping = self._grouping() or hr.Grouping(None, [])
        key = self.row_keys[r]
        return hr.members(key, grouping, self._selected, len(self._ids), self.max_rows)

    def _rows_of(self, ids: Sequence[str]) -> np.ndarray:
        if not ids:
            return np.zeros(0, np.int64)
        rows = self._index(ids)
        return rows[rows >= 0]

    # ------------------------------------------------------------------ widget
    @property
    def figure(self) -> PlotlyFigure:
        """The plot widget (``PlotlyFigure``, built on first access)."""
        if self._fig is None:
            trace = {"type": "heatmap", "colorscale": "Viridis", "hoverongaps": False}
            # the values' name on the colour bar (two short lines); the title holds the row notes
            trace["colorbar"] = {
                "len": 0.9,
                "title": {"text": "cosine<br>similarity", "side": "top", "font": {"size": 11}},
            }
            layout = {
                "height": self.height,
                "margin": {"l": 10, "r": 10, "t": 40, "b": 40},
                "yaxis": {"autorange": "reversed", "type": "category"},
                "xaxis": {"type": "category", "side": "top"},
            }
            self._fig = PlotlyFigure([trace], layout)
            self._redraw()
            self._fig.on_click(self._on_figure_click)
            self._fig.on_hover(self._on_figure_hover)
        return self._fig

    @property
    def widget(self) -> Any:
        """The full widget: order selector, the heatmap and a hover thumbnail (built once)."""
        if self._widget is None:
            import ipywidgets as widgets

            order = widgets.Dropdown(
                options=[("true label", "label"), ("predicted", "predicted"), ("input", "input")],
                description="rows by",
                layout=widgets.Layout(width="220px"),
            )
            widgets.link((self, "order"), (order, "value"))
            self._panel = HoverPanel()
            self._widget = widgets.VBox([order, widgets.HBox([self.figure, self._panel.box])])
        return self._widget

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # ------------------------------------------------------------------ rows
    def _effective_order(self) -> str:
        """The order actually used: the chosen one, else the next that has data."""
        chain = ("label", "predicted", "input")
        for name in chain[chain.index(self.order) :]:
            if name == "input" or self._grouping_for(name) is not None:
                return name
        return "input"

    def _grouping_for(self, order: str) -> hr.Grouping | None:
        return {"label": self._labels, "predicted": self._predicted}.get(order)

    def _grouping(self) -> hr.Grouping | None:
        return self._grouping_for(self._effective_order())

    def _row_name(self, key: hr.RowKey, names: list[str]) -> str:
        if key.kind == "image":
            return _text(self._ids[key.value])
        if key.kind == "selected":
            return "▸ " + _text(self._ids[key.value])
        if key.kind == "chunk":
            first = key.value * -(-len(self._ids) // self.max_rows)
            return f"{key.size:,} images from {_text(self._ids[first])}"
        name = _text(names[key.value]) if key.value >= 0 else "all"
        if key.kind == "group":
            return f"{name} · {key.size:,} images"
        return f"selected · {name} · {key.size:,}"

    def _build_rows(self) -> None:
        used = self._effective_order()
        wanted = {"label": "true", "predicted": "predicted"}.get(self.order, "")
        notes = [] if used == self.order else [f"no {wanted} labels: rows in {used} order"]
        grouping = self._grouping() or hr.Grouping(None, [])
        n = len(self._ids)
        means = None
        if self._keys is not None and grouping.codes is not None and n > self.max_rows:
            means = self._column_means.means(self._sim, grouping, self._keys)
        keys, z = hr.build_rows(self._sim, grouping, self._selected, self.max_rows, means)
        if n > self.max_rows:
            what = "class" if grouping.codes is not None else "run of images"
            then = "▸ rows: the selection" if len(self._selected) else "select to drill down"
            notes.append(f"{n:,} images: one row per {what}; {then}")
        self.row_keys, self._z, self._notes = keys, z, notes
        self._names = unique_names([self._row_name(k, grouping.names) for k in keys])

    def _column_margin(self) -> int:
        """Top margin for the column labels: plotly turns them 90 degrees when crowded."""
        longest = max((len(p) for p in self._prompts), default=0)
        if len(self._prompts) <= 4 or longest <= 8:
            return 40
        return 20 + 7 * min(longest, 40)

    def _redraw(self) -> None:
        self._build_rows()
        if self._fig is None:
            return
        z = self._z  # binary float32 rows, 4 bytes per cell
        trace: dict[str, Any] = {
            "z": z,
            "x": unique_names([_text(p) for p in self._prompts]),
            "y": self._names,
            "hovertemplate": "%{y}<br>prompt: %{x}<br>cosine: %{z:.3f}<extra></extra>",
        }
        if z.size:
            trace["zmin"], trace["zmax"] = float(z.min()), float(z.max())
        # plotly never wraps a title: one short note a line, below the plot (at the top it ran
        # into the rotated column labels), hanging from the margin's top edge
        bottom = max(40, 24 + 16 * len(self._notes))
        with self._fig.batch():
            self._fig.update_traces({0: trace})
            self._fig.update_layout(
                yaxis={"showticklabels": len(self._names) <= _MAX_TICKS},
                title={
                    "text": "<br>".join(_text(note) for note in self._notes),
                    "font": {"size": 12},
                    "y": (bottom - 20) / self.height,
                    "yanchor": "top",
                    "yref": "container",
                },
                margin={"l": 10, "r": 10, "t": self._column_margin(), "b": bottom},
            )
            self._mark_selection()

    def _mark_selection(self) -> None:
        """Outline the rows holding selected images (contiguous runs merged into one box)."""
        hit = self._selected_rows()
        runs: list[list[int]] = []
        for r in hit:
            if runs and runs[-1][1] == r - 1:
                runs[-1][1] = r
            else:
                runs.append([r, r])
        shapes = [
            {
                "type": "rect",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "yref": "y",
                "y0": a - 0.5,
                "y1": b + 0.5,
                "line": {"color": "#ff2d55", "width": 2},
                "fillcolor": "rgba(0,0,0,0)",
            }
            for a, b in runs[:_MAX_MARKS]
        ]
        self._fig.update_layout(shapes=shapes)

    def _selected_rows(self) -> list[int]:
        """Rows holding a selected image (drill-down rows, the classes they belong to)."""
        if not len(self._selected):
            return []
        grouping = self._grouping()
        chosen = set(self._selected.tolist())
        groups = set(np.unique(grouping.codes[self._selected]).tolist()) if grouping else set()
        hit = []
        for r, key in enumerate(self.row_keys):
            if key.kind in ("selected", "selected_group"):
                hit.append(r)
            elif key.kind == "image" and key.value in chosen:
                hit.append(r)
            elif key.kind == "group" and key.value in groups:
                hit.append(r)
            elif key.kind == "chunk" and chosen.intersection(self._members(r).tolist()):
                hit.append(r)
        return hit

    @observe("order")
    def _on_order(self, change: Any) -> None:
        self._redraw()

    @validate("selection")
    def _check_selection(self, proposal: Any) -> list[str]:
        return check_ids(proposal["value"])

    @property
    def selected_rows(self) -> np.ndarray:
        """Row numbers (into the image ids of :meth:`set_data`) of ``selection``."""
        return self._selected

    @observe("selection")
    def _on_selection(self, change: Any) -> None:
        # Outlines are layout shapes: drawing them raises no figure event, so no echo guard.
        self._selected = self._rows_of_selection(change["new"])
        if len(self._ids) > self.max_rows:
            self._redraw()  # the drill-down rows follow the selection
        elif self._fig is not None:
            self._mark_selection()

    # ------------------------------------------------------------------ events
    def _cell(self, event: FigureEvent) -> tuple[int, int] | None:
        """Row and column of the first point of a plotly heatmap event, or None."""
        if not event.points:
            return None
        point = event.points[0]
        ind = point.get("index")
        if isinstance(ind, list | tuple) and len(ind) == 2:
            r, c = int(ind[0]), int(ind[1])
        else:  # fall back on the category names plotly also reports
            try:
                r = self._names.index(point.get("y"))
                c = unique_names([_text(p) for p in self._prompts]).index(point.get("x"))
            except ValueError:
                return None
        if 0 <= r < len(self.row_keys) and 0 <= c < len(self._prompts):
            return r, c
        return None

    def _on_figure_click(self, event: FigureEvent) -> None:
        cell = self._cell(event)
        if cell is None:
            return
        r, c = cell
        ids = [self._ids[i] for i in self._members(r)]
        self.click = (ids[0], self._prompts[c])
        self.selection = ids

    def _on_figure_hover(self, event: FigureEvent) -> None:
        cell = self._cell(event)
        if cell is None:
            return
        r, c = cell
        members = self._members(r)
        first = int(members[0])
        self.hover = self._ids[first]
        lines = [self._ids[first], f"prompt: {self._prompts[c]}"]
        lines.append(f"cosine: {self._z[r, c]:.3f}" + (" (row mean)" if len(members) > 1 else ""))
        if len(members) > 1:
            lines.append(f"row of {len(members)} images")
        if self._panel is not None:
            self._panel.show(self._thumbs[first] if self._thumbs else None, lines)
