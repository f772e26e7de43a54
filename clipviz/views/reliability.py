"""Reliability diagram: accuracy against confidence per bin, for one or two runs.

A perfectly calibrated model has its bars on the diagonal; bars below it mean over-confidence.
The view draws what ``clipviz.calibration`` computed and holds no computation of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from traitlets import HasTraits

from clipviz.views._plotly_widget import PlotlyFigure

_COLOURS = ("#1f77b4", "#ff7f0e")


class ReliabilityDiagram(HasTraits):
    """Per-bin accuracy (bars) and mean confidence (markers) of up to two calibrations.

    Parameters
    ----------
    height : int
        Figure height in pixels.
    """

    def __init__(self, *, height: int = 300, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.height = int(height)
        self._runs: list[tuple[str, Any]] = []
        self._fig: PlotlyFigure | None = None

    def set_calibrations(self, runs: Sequence[Any], names: Sequence[str] = ("A", "B")) -> None:
        """Show these calibrations (``clipviz.calibration`` results), named in the legend.

        Parameters
        ----------
        runs : sequence of Calibration
            One or two results with ``.bins`` (lower, upper, count, confidence, accuracy) and
            ``.ece``.
        names : sequence of str
            Display names, one per run.
        """
        runs = list(runs)
        if not 1 <= len(runs) <= 2:
            raise ValueError(f"ReliabilityDiagram shows one or two calibrations, got {len(runs)}")
        for run in runs:
            if not hasattr(run, "bins") or not hasattr(run, "ece"):
                raise TypeError(
                    f"expected clipviz.calibration(...) results, got {type(run).__name__}"
                )
        self._runs = [(str(name), run) for name, run in zip(names, runs, strict=False)]
        if self._fig is not None:
            self._fig.set_figure(self._traces(), self._layout())

    @property
    def legend(self) -> list[str]:
        """The legend text of each run, e.g. ``"A: ECE 0.081 (scale 100)"``."""
        return [
            f"{name}: ECE {run.ece:.3f} (scale {run.logit_scale:.3g})" for name, run in self._runs
        ]

    @property
    def figure(self) -> PlotlyFigure:
        """The plot widget (built on first access)."""
        if self._fig is None:
            self._fig = PlotlyFigure(self._traces(), self._layout())
        return self._fig

    @property
    def widget(self) -> Any:
        """The figure (a PlotlyFigure widget)."""
        return self.figure

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _traces(self) -> list[dict[str, Any]]:
        diagonal = {
            "type": "scatter",
            "x": np.array([0.0, 1.0]),
            "y": np.array([0.0, 1.0]),
            "mode": "lines",
            "name": "perfect calibration",
            "line": {"dash": "dash", "color": "#888"},
            "hoverinfo": "skip",
        }
        traces = [diagonal]
        share = 1.0 / max(1, len(self._runs))  # each run takes a slice of every bin
        for k, ((name, run), text) in enumerate(zip(self._runs, self.legend, strict=True)):
            bins = run.bins
            width = (bins["upper"] - bins["lower"]).to_numpy(np.float64)
            left = bins["lower"].to_numpy(np.float64)
            x = left + width * share * (k + 0.5)
            colour = _COLOURS[k % len(_COLOURS)]
            counts = bins["count"].to_numpy()
            hover = [f"{name}: {int(c)} images" for c in counts]
            traces.append(
                {
                    "type": "bar",
                    "x": x,
                    "y": bins["accuracy"].fillna(0).to_numpy(np.float64),
                    "width": width * share * 0.9,
                    "name": text,
                    "marker": {"color": colour, "opacity": 0.75},
                    "hovertext": hover,
                }
            )
            traces.append(
                {
                    "type": "scatter",
                    "x": x,
                    "y": bins["confidence"].to_numpy(np.float64),
                    "mode": "markers",
                    "name": f"{name} mean confidence",
                    "marker": {"symbol": "line-ew-open", "size": 12, "color": "#222"},
                    "showlegend": False,
                }
            )
        return traces

    def _layout(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "barmode": "overlay",
            "margin": {"l": 45, "r": 10, "t": 10, "b": 40},
            "xaxis": {"title": {"text": "confidence (top-1 probability)"}, "range": [0, 1]},
            "yaxis": {"title": {"text": "accuracy"}, "range": [0, 1]},
            "legend": {"x": 0.01, "y": 0.99, "bgcolor": "rgba(255,255,255,0.7)"},
            "plot_bgcolor": "white",
        }
