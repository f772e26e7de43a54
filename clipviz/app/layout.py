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
    # Stacked, each the full width of the column: side by side they were too narrow to read
    # (cut row labels, hover panels over the plot) at common notebook widths.
    plots = [
        views["map"].widget.add_class("clipviz-map"),
        views["heatmap"].widget.add_class("clipviz-heatmap"),
    ]
    right_children = [
        views["search"].widget,
        views["grid"].widget,
        w.VBox(plots, layout=w.Layout(width="100%")).add_class("clipviz-plots"),
    ]
    if "metrics" in views:
        right_children.append(views["metrics"].widget.add_class("clipviz-metrics"))
    right = w.VBox(right_children, layout=w.Layout(width="72%")).add_class("clipviz-right")
    return w.VBox(
        [w.HTML(_CSS), w.HBox([left, right]), status, wb.output],
        layout=w.Layout(width="100%"),
    ).add_class("clipviz-workbench")
