"""The Workbench's widget tree: prompts and search on the left, the views on the right.

Everything stays visible at once (no tabs: plotly figures in hidden tabs size themselves
wrongly), under stable class names a browser test can find.
"""

from __future__ import annotations

from typing import Any

_CSS = """
<style>
.clipviz-workbench .clipviz-status { font: 12px system-ui, sans-serif; color: #444; }
</style>
"""


def build(wb: Any) -> Any:
    """Build the workbench box from the views' widgets."""
    import ipywidgets as w

    views = wb.views
    status = w.HTML().add_class("clipviz-status")
    wb._status = status
    left = w.VBox(
        [views["prompts"].widget],
        layout=w.Layout(width="28%", min_width="220px", padding="0 8px 0 0"),
    ).add_class("clipviz-left")
    plots = [views["map"].widget, views["heatmap"].widget]
    right_children = [
        views["search"].widget,
        views["grid"].widget,
        w.HBox(plots, layout=w.Layout(width="100%")).add_class("clipviz-plots"),
    ]
    if "metrics" in views:
        right_children.append(views["metrics"].widget)
    right = w.VBox(right_children, layout=w.Layout(width="72%")).add_class("clipviz-right")
    return w.VBox(
        [w.HTML(_CSS), w.HBox([left, right]), status, wb.output],
        layout=w.Layout(width="100%"),
    ).add_class("clipviz-workbench")
