"""The similarity heatmap: images (rows) x prompts (columns) cosine similarity, in plotly.

A traitlets state object whose ``PlotlyFigure`` is built on first use. Rows can be ordered by true
label, by predicted class or kept in input order. Above ``max_rows`` images, consecutive images
of the same group are averaged into one row (the title says so), so 10k+ images stay a
1,000-row heatmap that the browser draws at once; clicking such a row selects all its images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from traitlets import Enum, HasTraits, List, Tuple, Unicode, observe

from clipviz.views._html import escape, escape_all
from clipviz.views._plotly_widget import FigureEvent, PlotlyFigure
from clipviz.views._plotting import HoverPanel, as_strings, check_thumbnails, unique_names

_MAX_TICKS = 60  # more rows than this: no row tick labels (hover still names them)
_MAX_MARKS = 50  # at most this many outlined runs of selected rows


@dataclass
class _Rows:
    """The heatmap rows: ``members[r]`` are the image indices averaged into row ``r``."""

    members: list[np.ndarray]
    names: list[str]  # escaped, unique (plotly merges equal categories)
    z: np.ndarray  # (R, C) mean similarity
    aggregated: bool
    note: str  # plain text, for the title


class SimilarityHeatmap(HasTraits):
    """Images x prompts cosine similarity; click a cell to select its image.

    Parameters
    ----------
    max_rows : int
        Most rows drawn; above this many images, rows average consecutive images of a group.
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
    order : {"label", "predicted", "input"}
        Row order: grouped by true label, by predicted class, or as given. Falls back to the
        next available order (noted in the title) when labels are missing.
    """

    selection = List(Unicode())
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
        self._ids: list[str] = []
        self._index: dict[str, int] = {}
        self._prompts: list[str] = []
        self._labels: list[str] | None = None
        self._predicted: list[str] | None = None
        self._thumbs: list[bytes] | None = None
        self._rows = _Rows([], [], np.zeros((0, 0)), False, "")
        self._fig: Any = None
        self._widget: Any = None
        self._panel: HoverPanel | None = None

    # ------------------------------------------------------------------ data in
    def set_data(
        self,
        similarity: Any,
        image_ids: Sequence[str],
        prompts: Sequence[str],
        labels: Sequence[str] | None = None,
        predicted: Sequence[str] | None = None,
    ) -> None:
        """Set the similarity matrix and its row/column names.

        Parameters
        ----------
        similarity : array (N, C)
            Cosine similarity of each image to each prompt.
        image_ids : list of str
            One id per row.
        prompts : list of str
            One prompt (or class name) per column.
        labels, predicted : list of str, optional
            True and predicted label per image, used by ``order``.
        """
        sim = np.asarray(similarity, dtype=np.float32)
        ids = [str(i) for i in image_ids]
        if sim.ndim != 2 or sim.shape != (len(ids), len(prompts)):
            raise ValueError(
                f"similarity must have shape (images, prompts) = ({len(ids)}, {len(prompts)}), "
                f"got {sim.shape}"
            )
        if not np.isfinite(sim).all():
            raise ValueError("similarity contains NaN or infinite values")
        self._prompts = as_strings(prompts, "prompts", sim.shape[1]) or []
        self._labels = as_strings(labels, "labels", len(ids))
        self._predicted = as_strings(predicted, "predicted", len(ids))
        self._sim, self._ids = sim, ids
        self._index = {i: k for k, i in enumerate(ids)}
        self._redraw()

    def set_thumbnails(self, thumbnails: Sequence[bytes] | None) -> None:
        """Encoded thumbnails (webp/jpeg/png bytes), one per image, shown on hover."""
        self._thumbs = check_thumbnails(thumbnails, len(self._ids))

    @property
    def row_ids(self) -> list[list[str]]:
        """The image ids in each drawn row, top to bottom (one id per row unless averaged)."""
        return [[self._ids[i] for i in m] for m in self._rows.members]

    # ------------------------------------------------------------------ widget
    @property
    def figure(self) -> PlotlyFigure:
        """The plot widget (``PlotlyFigure``, built on first access)."""
        if self._fig is None:
            trace = {"type": "heatmap", "colorscale": "Viridis", "hoverongaps": False}
            trace["colorbar"] = {"len": 0.9}
            layout = {
                "height": self.height,
                "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
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
    def _effective_order(self) -> tuple[str, list[str] | None]:
        """The order actually used (the chosen one, else the next that has data) and its keys."""
        chain = ("label", "predicted", "input")
        keys = {"label": self._labels, "predicted": self._predicted}
        for name in chain[chain.index(self.order) :]:
            if name == "input":
                break
            if keys[name] is not None:
                return name, keys[name]
        return "input", None

    def _build_rows(self) -> _Rows:
        n = len(self._ids)
        used, key = self._effective_order()
        wanted = {"label": "true", "predicted": "predicted"}.get(self.order, "")
        note = "" if used == self.order else f"no {wanted} labels: rows in {used} order · "
        if key is None:
            order = np.arange(n)
            groups = [order] if n else []
        else:
            order = np.array(sorted(range(n), key=lambda i: key[i]), dtype=np.int64)
            sorted_keys = [key[i] for i in order]
            cuts = [i for i in range(1, n) if sorted_keys[i] != sorted_keys[i - 1]]
            groups = np.split(order, cuts) if n else []
        step = -(-n // self.max_rows) if n else 1  # ceil: images per averaged row
        if step <= 1:
            members = [np.array([i]) for i in order]
            names = unique_names(escape_all(self._ids[i] for i in order))
            return _Rows(members, names, self._sim[order], False, note)
        members, names = [], []
        for group in groups:
            for start in range(0, len(group), step):
                chunk = group[start : start + step]
                members.append(chunk)
                head = escape(key[chunk[0]]) if key is not None else "images"
                names.append(f"{head} · {len(chunk)} images from {escape(self._ids[chunk[0]])}")
        z = np.stack([self._sim[m].mean(axis=0) for m in members])
        note += f"each row averages up to {step} images ({n} images, {len(members)} rows) · "
        return _Rows(members, unique_names(names), z, True, note)

    def _redraw(self) -> None:
        self._rows = self._build_rows()
        if self._fig is None:
            return
        rows = self._rows
        z = rows.z.astype(np.float32)  # binary float32 rows, 4 bytes per cell
        trace: dict[str, Any] = {
            "z": z,
            "x": unique_names(escape_all(self._prompts)),
            "y": rows.names,
            "hovertemplate": "image: %{y}<br>prompt: %{x}<br>cosine: %{z:.3f}<extra></extra>",
        }
        if z.size:
            trace["zmin"], trace["zmax"] = float(z.min()), float(z.max())
        title = escape(rows.note) + "cosine similarity, images × prompts"
        with self._fig.batch():
            self._fig.update_traces({0: trace})
            self._fig.update_layout(
                yaxis={"showticklabels": len(rows.names) <= _MAX_TICKS},
                title={"text": title, "font": {"size": 12}},
            )
            self._mark_selection()

    def _mark_selection(self) -> None:
        """Outline the rows holding selected images (contiguous runs merged into one box)."""
        chosen = {self._index[i] for i in self.selection if i in self._index}
        hit = [r for r, m in enumerate(self._rows.members) if chosen.intersection(m.tolist())]
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

    @observe("order")
    def _on_order(self, change: Any) -> None:
        self._redraw()

    @observe("selection")
    def _on_selection(self, change: Any) -> None:
        # Outlines are layout shapes: drawing them raises no figure event, so no echo guard.
        if self._fig is not None:
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
                r = self._rows.names.index(point.get("y"))
                c = unique_names(escape_all(self._prompts)).index(point.get("x"))
            except ValueError:
                return None
        if 0 <= r < len(self._rows.members) and 0 <= c < len(self._prompts):
            return r, c
        return None

    def _on_figure_click(self, event: FigureEvent) -> None:
        cell = self._cell(event)
        if cell is None:
            return
        r, c = cell
        ids = [self._ids[i] for i in self._rows.members[r]]
        self.click = (ids[0], self._prompts[c])
        self.selection = ids

    def _on_figure_hover(self, event: FigureEvent) -> None:
        cell = self._cell(event)
        if cell is None:
            return
        r, c = cell
        members = self._rows.members[r]
        first = int(members[0])
        self.hover = self._ids[first]
        lines = [self._ids[first], f"prompt: {self._prompts[c]}"]
        lines.append(
            f"cosine: {self._rows.z[r, c]:.3f}" + (" (row mean)" if len(members) > 1 else "")
        )
        if len(members) > 1:
            lines.append(f"row of {len(members)} images")
        if self._panel is not None:
            self._panel.show(self._thumbs[first] if self._thumbs else None, lines)
