"""The Workbench's widget tree: one screen of linked panes under a status bar.

Prompts (and search, and the metrics one click away in an accordion) on the left, the map and
the heatmap in the middle, a grid page on the right: at 1500x1000 all of them show at once, so a
prompt edit or a selection is seen landing in every view. The stylesheet (``layout.css``, shipped
with the package) is a CSS grid that restacks for narrower outputs and takes its colours from
JupyterLab's theme variables. The status bar shows the selection count and what is selected,
with a clear button, and stays on top while the panes scroll.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from clipviz.views._html import escape

#: Plot heights that fit two plots in one column of an ~850 px high output area.
MAP_HEIGHT = 400
HEATMAP_HEIGHT = 380
#: Selected ids named in the status bar (the rest are counted).
NAMED_IN_STATUS = 3


def stylesheet() -> str:
    """The workbench stylesheet (``clipviz/app/layout.css``)."""
    return resources.files("clipviz.app").joinpath("layout.css").read_text(encoding="utf-8")


def selection_text(ids: list[str]) -> str:
    """Plain text for the status bar: how many images are selected and the first few ids."""
    if not ids:
        return "nothing selected (click a cell, lasso in the map or click the heatmap)"
    named = ", ".join(ids[:NAMED_IN_STATUS])
    more = f" and {len(ids) - NAMED_IN_STATUS} more" if len(ids) > NAMED_IN_STATUS else ""
    return f"{len(ids)} selected: {named}{more}"


def build(wb: Any) -> Any:
    """Build the workbench box from the views' widgets."""
    import ipywidgets as w

    views = wb.views
    for name, height in (("map", MAP_HEIGHT), ("heatmap", HEATMAP_HEIGHT)):
        if isinstance(getattr(views[name], "height", None), int):  # read when the plot is built
            views[name].height = height
    status = w.HTML().add_class("clipviz-status")
    wb._status = status
    bar = w.HBox([status, *_selection_bar(wb)]).add_class("clipviz-statusbar")
    left = [views["prompts"].widget, views["search"].widget]
    if "metrics" in views:
        left.append(metrics_accordion(views["metrics"], wb.guarded))
    panes = [
        _pane(w.VBox(left), "prompts"),
        _pane(views["map"].widget.add_class("clipviz-map"), "map"),
        _pane(views["heatmap"].widget.add_class("clipviz-heatmap"), "heatmap"),
        _pane(_grid_and_detail(wb), "grid"),
    ]
    dashboard = w.Box(panes, layout=w.Layout(display="grid")).add_class("clipviz-dashboard")
    return w.VBox(
        [w.HTML(f"<style>{stylesheet()}</style>"), bar, dashboard, wb.output],
        layout=w.Layout(width="100%"),
    ).add_class("clipviz-workbench")


def metrics_accordion(panel: Any, guard: Any = None) -> Any:
    """The metrics panel in a collapsed accordion, its widgets built when it is first opened.

    Until then the accordion holds a placeholder: a page (a reopen in Voila) gets no metrics
    widgets and no confusion-matrix figure to create and draw while it is closed. The panel's
    state is kept up to date all along, so the first open shows the latest metrics.
    ``guard`` wraps the open callback (the workbench's: its lock, errors to its Output area).
    """
    import ipywidgets as w

    placeholder = w.HTML("<i>opening the metrics…</i>").add_class("clipviz-metrics-placeholder")
    accordion = w.Accordion([placeholder]).add_class("clipviz-metrics-accordion")
    accordion.set_title(0, "metrics (accuracy, per class, confusion)")
    accordion.selected_index = None  # one click away, not in the way

    def open_once(change: Any) -> None:
        if change["new"] is None:
            return
        box = panel.widget.add_class("clipviz-metrics")  # may raise: then the next open retries
        accordion.unobserve(handler, names="selected_index")
        accordion.children = [box]
        placeholder.close()

    handler = guard(open_once) if guard else open_once
    accordion.observe(handler, names="selected_index")
    return accordion


def _grid_and_detail(wb: Any) -> Any:
    """The grid, with the saliency detail view under it when the workbench has one."""
    import ipywidgets as w

    grid = wb.views["grid"].widget
    saliency = getattr(wb, "saliency", None)
    return grid if saliency is None else w.VBox([grid, saliency.widget])


def _pane(widget: Any, name: str) -> Any:
    import ipywidgets as w

    return (
        w.Box([widget], layout=w.Layout(display="block"))
        .add_class("clipviz-pane")
        .add_class(f"clipviz-pane-{name}")
    )


def _selection_bar(wb: Any) -> list[Any]:
    import ipywidgets as w

    label = w.HTML().add_class("clipviz-selection")
    clear = w.Button(description="clear", tooltip="clear the selection", disabled=True)
    clear.layout.width = "70px"
    clear.add_class("clipviz-selection-clear")

    def show(change: Any = None) -> None:
        ids = list(wb.selection)
        label.value = f"<span>{escape(selection_text(ids))}</span>"
        clear.disabled = not ids
        if getattr(wb, "_snapshot", None) is not None:
            wb._snapshot.refresh(wb)

    def on_clear(_button: Any) -> None:
        wb.selection = []

    wb.observe(show, names="selection")
    clear.on_click(wb.guarded(on_clear))
    show()
    return [label, clear]
