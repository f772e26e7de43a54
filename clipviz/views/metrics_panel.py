"""The metrics panel: accuracy of prompt set A (and B), per-class A vs B, and a confusion matrix.

Data arrives as ``clipviz.compute.Metrics`` objects or plain mappings (see ``set_metrics``);
the panel computes only differences and display order. Tables are HTML with every class name
escaped; the confusion matrix is a plotly heatmap built when the widget is first shown.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from traitlets import Enum, HasTraits, observe

from clipviz.views._html import escape, escape_all
from clipviz.views._plotly_widget import PlotlyFigure
from clipviz.views._plotting import unique_names

_SCALARS = (("acc1", "top-1 accuracy"), ("acc5", "top-5 accuracy"))
_SCALARS += (("mean_per_class_recall", "mean per-class recall"),)


@dataclass
class _Tables:
    """The tables of metrics given as a mapping (checked when given)."""

    per_class: Any
    confusion: Any


@dataclass
class _Shown:
    """One prompt set's metrics as the panel shows them: scalars now, tables when read."""

    scalars: dict[str, float]
    tables: Any  # a Metrics object (its tables are made on first read) or _Tables

    @property
    def per_class(self) -> Any:
        return getattr(self.tables, "per_class", None)  # an object may have only as_dict()

    @property
    def confusion(self) -> Any:
        return getattr(self.tables, "confusion", None)


def _coerce(metrics: Any, name: str) -> _Shown:
    """A Metrics object or a mapping as (scalars, per_class DataFrame, confusion).

    A Metrics object's tables stay unread until shown: while the panel is closed, a prompt
    edit needs only its scalars (and no pandas on a reopen). A mapping is checked at once.
    """
    if hasattr(metrics, "as_dict"):
        scalars = dict(metrics.as_dict())
    elif isinstance(metrics, Mapping):
        scalars = {k: v for k, v in metrics.items() if k not in ("per_class", "confusion")}
    else:
        raise TypeError(
            f"metrics {name} must be a clipviz.compute.Metrics or a dict with acc1, acc5 and "
            f"mean_per_class_recall, got {type(metrics).__name__}"
        )
    missing = [k for k, _ in _SCALARS if k not in scalars]
    if missing:
        raise ValueError(f"metrics {name} lacks {missing}; it has {sorted(scalars)}")
    tables = metrics
    if isinstance(metrics, Mapping):
        confusion = metrics.get("confusion")
        if confusion is not None:
            import pandas as pd

            confusion = pd.DataFrame(confusion)
        tables = _Tables(_per_class_table(metrics.get("per_class"), name), confusion)
    return _Shown({k: float(v) for k, v in scalars.items()}, tables)


def _per_class_table(per_class: Any, name: str) -> Any:
    if per_class is None:
        return None
    import pandas as pd

    per_class = pd.DataFrame(per_class)
    if "class" in per_class.columns:
        per_class = per_class.set_index("class")
    if "accuracy" not in per_class.columns:
        raise ValueError(
            f"per_class of metrics {name} needs an 'accuracy' column (index or 'class' "
            f"column = class names); it has columns {list(per_class.columns)}"
        )
    return per_class


def _pct(x: float) -> str:
    return "–" if x is None or math.isnan(x) else f"{100 * x:.1f}%"


def _pp(x: float) -> str:
    return "–" if x is None or math.isnan(x) else f"{100 * x:+.1f} pp"


def _count(x: float) -> str:
    return "–" if x is None or math.isnan(x) else str(int(x))


class MetricsPanel(HasTraits):
    """Accuracy summary for one or two prompt sets, per-class differences and a confusion matrix.

    Parameters
    ----------
    max_classes : int
        The confusion matrix shows at most this many classes (those most involved in errors).
    height : int
        Confusion matrix height in pixels.

    Attributes
    ----------
    confusion_of : {"a", "b"}
        Which prompt set's confusion matrix is drawn.
    """

    confusion_of = Enum(("a", "b"), default_value="a")

    def __init__(self, *, max_classes: int = 50, height: int = 420, **kwargs: Any):
        super().__init__(**kwargs)
        self.max_classes = int(max_classes)
        self.height = int(height)
        self.names = ("A", "B")
        self._a: _Shown | None = None
        self._b: _Shown | None = None
        self._fig: Any = None
        self._widget: Any = None
        self._summary_html: Any = None
        self._figure_box: Any = None
        self._table_html: Any = None
        self._toggle: Any = None

    def set_metrics(self, a: Any, b: Any = None, *, names: tuple[str, str] = ("A", "B")) -> None:
        """Show metrics for prompt set ``a`` and, optionally, ``b``.

        Parameters
        ----------
        a, b : clipviz.compute.Metrics or dict
            A ``Metrics`` object, or a dict with ``acc1``, ``acc5``, ``mean_per_class_recall``
            (fractions; ``n`` optional) and optionally ``per_class`` (DataFrame indexed by class
            name, or with a ``class`` column, with ``accuracy`` and optionally ``n`` columns)
            and ``confusion`` (DataFrame of counts, rows = true class, columns = predicted).
        names : tuple of str
            Display names of the two prompt sets.
        """
        self._a = _coerce(a, "a")
        self._b = None if b is None else _coerce(b, "b")
        self.names = (str(names[0]), str(names[1]))
        if self._b is None:
            self.confusion_of = "a"
        self._refresh()

    def clear(self, message: str = "no true labels: metrics need labelled images") -> None:
        """Show ``message`` instead of metrics (e.g. when the images carry no labels)."""
        self._a = self._b = None
        self._refresh(message)

    # ------------------------------------------------------------------ tables
    def summary_table(self) -> Any:
        """Scalar metrics as a DataFrame: rows acc1/acc5/mean_per_class_recall, columns a[, b, difference]."""
        import pandas as pd

        if self._a is None:
            return pd.DataFrame()
        rows = [k for k, _ in _SCALARS]
        table = pd.DataFrame({"a": [self._a.scalars[k] for k in rows]}, index=rows)
        if self._b is not None:
            table["b"] = [self._b.scalars[k] for k in rows]
            table["difference"] = table["b"] - table["a"]
        return table

    def per_class_table(self) -> Any:
        """Per-class accuracy: columns n, a[, b, difference], sorted by gain (B - A) or by accuracy."""
        import pandas as pd

        if self._a is None or self._a.per_class is None:
            return pd.DataFrame()
        pa = self._a.per_class
        table = pd.DataFrame({"a": pa["accuracy"].astype(float)})
        if "n" in pa.columns:
            table.insert(0, "n", pa["n"])
        if self._b is None or self._b.per_class is None:
            return table.sort_values("a", na_position="last")
        table = table.join(
            self._b.per_class["accuracy"].astype(float).rename("b"), how="outer", sort=False
        )
        if "n" in table and "n" in self._b.per_class.columns:
            # a class that only set B names has no support count in A: take B's
            table["n"] = table["n"].combine_first(self._b.per_class["n"])
        table["difference"] = table["b"] - table["a"]
        return table.sort_values("difference", ascending=False, na_position="last")

    def _summary_to_html(self) -> str:
        table = self.summary_table()
        a, b = (escape(n) for n in self.names)
        head = f"<tr><th></th><th>{a}</th>" + (
            f"<th>{b}</th><th>{b} − {a}</th>" if "b" in table else ""
        )
        body = []
        for key, label in _SCALARS:
            row = table.loc[key]
            cells = f"<td>{_pct(row['a'])}</td>"
            if "b" in table:
                cells += f"<td>{_pct(row['b'])}</td><td>{_pp(row['difference'])}</td>"
            body.append(f"<tr><td>{label}</td>{cells}</tr>")
        n = self._a.scalars.get("n") if self._a else None
        foot = f"<div>{int(n)} labelled images</div>" if n is not None else ""
        return f"<table class='clipviz-metrics'>{head}{''.join(body)}</table>{foot}"

    def _per_class_to_html(self) -> str:
        table = self.per_class_table()
        if table.empty:
            return ""
        a, b = (escape(n) for n in self.names)
        two = "b" in table
        head = "<tr><th>class</th>" + ("<th>n</th>" if "n" in table else "") + f"<th>{a}</th>"
        head += f"<th>{b}</th><th>{b} − {a}</th></tr>" if two else "</tr>"
        rows = []
        for name, row in zip(escape_all(table.index), table.itertuples(index=False), strict=True):
            cells = f"<td>{name}</td>" + (f"<td>{_count(row.n)}</td>" if "n" in table else "")
            cells += f"<td>{_pct(row.a)}</td>"
            if two:
                cells += f"<td>{_pct(row.b)}</td><td>{_pp(row.difference)}</td>"
            rows.append(f"<tr>{cells}</tr>")
        title = "per class, sorted by gain" if two else "per class, worst first"
        return f"<b>{title}</b><table class='clipviz-metrics'>{head}{''.join(rows)}</table>"

    # ------------------------------------------------------------------ confusion
    def _chosen(self) -> _Shown | None:
        return self._b if self.confusion_of == "b" and self._b is not None else self._a

    def confusion_matrix(self) -> Any:
        """The confusion DataFrame drawn (of ``confusion_of``), cut to ``max_classes``; or None."""
        chosen = self._chosen()
        if chosen is None or chosen.confusion is None:
            return None
        conf = chosen.confusion
        if len(conf.index) <= self.max_classes:
            return conf
        # Too many classes to draw legibly: keep those most involved in mistakes.
        classes = [c for c in conf.index if c in conf.columns]
        errors = {c: conf.loc[c].sum() + conf[c].sum() - 2 * conf.loc[c, c] for c in classes}
        keep = sorted(classes, key=lambda c: -errors[c])[: self.max_classes]
        return conf.loc[keep, keep]

    def _draw_confusion(self) -> None:
        conf = self.confusion_matrix()
        fig = self._fig
        if self._figure_box is not None:  # no empty plot: the summary line says why
            self._figure_box.layout.display = "none" if conf is None else ""
        if conf is None:
            with fig.batch():
                fig.update_traces({0: {"z": None, "x": None, "y": None, "text": None}})
                fig.update_layout(title={"text": "no confusion matrix"})
            return
        counts = conf.to_numpy().astype(np.int64)
        share = (counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)).astype(np.float32)
        chosen = self._chosen()
        which = self.names[1] if chosen is self._b else self.names[0]
        cut = " (classes with most errors)" if len(conf.index) < len(chosen.confusion.index) else ""
        trace = {
            "z": share,
            "x": unique_names(escape_all(conf.columns)),
            "y": unique_names(escape_all(conf.index)),
            "text": counts.astype(str).tolist(),
            "texttemplate": "%{text}" if counts.shape[0] <= 20 else None,
            "hovertemplate": "true: %{y}<br>predicted: %{x}<br>%{text} images (%{z:.0%} of row)"
            "<extra></extra>",
        }
        title = f"confusion, {escape(which)}{cut}: rows true, columns predicted"
        with fig.batch():
            fig.update_traces({0: trace})
            fig.update_layout(title={"text": title})

    # ------------------------------------------------------------------ widget
    @property
    def figure(self) -> PlotlyFigure:
        """The confusion-matrix plot widget (``PlotlyFigure``, built on first access)."""
        if self._fig is None:
            trace = {"type": "heatmap", "colorscale": "Blues", "zmin": 0, "zmax": 1}
            layout = {
                "height": self.height,
                "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
                "yaxis": {"autorange": "reversed", "type": "category", "title": "true"},
                "xaxis": {"type": "category", "title": "predicted"},
                "title": {"font": {"size": 12}},
            }
            self._fig = PlotlyFigure([trace], layout)
            self._draw_confusion()
        return self._fig

    @property
    def widget(self) -> Any:
        """Summary, per-class table and confusion matrix in one box (built once)."""
        if self._widget is None:
            import ipywidgets as widgets

            self._summary_html = widgets.HTML()
            self._table_html = widgets.HTML(layout=widgets.Layout(max_height="320px"))
            self._table_html.layout.overflow = "auto"
            self._toggle = widgets.ToggleButtons(
                options=[(self.names[0], "a"), (self.names[1], "b")],
                value=self.confusion_of,
                description="confusion of",
            )
            widgets.link((self, "confusion_of"), (self._toggle, "value"))
            # The figure's own ``layout`` is plotly's, so CSS (hiding it) goes on a box around it.
            self._figure_box = widgets.Box([self.figure]).add_class("clipviz-confusion")
            self._widget = widgets.VBox(
                [self._summary_html, self._table_html, self._toggle, self._figure_box]
            )
            self._refresh()
        return self._widget

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _refresh(self, message: str | None = None) -> None:
        if self._summary_html is not None:
            if self._a is None:
                self._summary_html.value = f"<i>{escape(message or 'no metrics yet')}</i>"
                self._table_html.value = ""
            else:
                self._summary_html.value = self._summary_to_html()
                self._table_html.value = self._per_class_to_html()
            options = ((self.names[0], "a"), (self.names[1], "b"))
            if tuple(self._toggle.options) != options:  # new names: relabel, keep the choice
                chosen = self.confusion_of
                self._toggle.options = options
                self._toggle.value = chosen
            self._toggle.layout.display = "" if self._b else "none"
        if self._fig is not None:
            self._draw_confusion()

    @observe("confusion_of")
    def _on_confusion_of(self, change: Any) -> None:
        if self._fig is not None:
            self._draw_confusion()
