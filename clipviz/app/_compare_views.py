"""The Comparison's views: creating them, drawing its state into them, linking, the layout.

Every function takes the Comparison first; the state lives there (``cmp.runs``), the views
only draw it and report user actions.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

from clipviz.app import inputs
from clipviz.compute import project

_SELECTABLE = ("grid_a", "grid_b", "map_a", "map_b", "overlap")


def make_views(
    cmp: Any, classnames: list[str], prompts_b: list[str], templates: Any, thumb_size: int
) -> dict[str, Any]:
    """Create the views and give them the images (no widgets are built yet)."""
    import ipywidgets

    from clipviz.views import EmbeddingMap, MetricsPanel, PredictionGrid, PromptPanel
    from clipviz.views.overlap_histogram import OverlapHistogram
    from clipviz.views.reliability import ReliabilityDiagram

    cmp.thumbnails = inputs.thumbnails_for(cmp.images, cmp.ids, thumb_size)
    cmp.output = ipywidgets.Output().add_class("clipviz-output")
    cmp.summary = ""
    views: dict[str, Any] = {
        "prompts": PromptPanel(
            prompts=classnames,
            prompts_b=prompts_b,
            templates=templates if isinstance(templates, str) else list(templates),
        ),
        "overlap": OverlapHistogram(),
    }
    for side in ("a", "b"):
        grid = PredictionGrid(page_size=12)
        pages = cmp.thumbnails.page if cmp.thumbnails is not None else None  # lazy, per page
        grid.set_images(cmp.ids, pages, mime="image/webp")
        views[f"grid_{side}"] = grid
        views[f"map_{side}"] = EmbeddingMap(height=340)
    mean = float(np.nanmean(cmp.overlap))
    title = (
        f"{cmp.neighbours}-NN overlap, {cmp.runs[0].name} vs {cmp.runs[1].name} (mean {mean:.2f})"
    )
    views["overlap"].set_values(cmp.ids, cmp.overlap, title=title)
    if cmp.labels is not None:
        views["metrics"] = MetricsPanel()
        views["reliability"] = ReliabilityDiagram()
    return views


def connect(cmp: Any) -> None:
    """Prompt edits update both sides; a selection in any view becomes the comparison's."""
    views = cmp.views
    views["prompts"].observe(guarded(cmp, lambda change: cmp._update()), names="revision")
    for name in _SELECTABLE:
        views[name].observe(
            guarded(cmp, lambda change: on_view_selection(cmp, change)), names="selection"
        )


def draw(cmp: Any, *, rescored: bool = False) -> None:
    """Push both runs into the views (after a rescore only what probabilities change)."""
    views = cmp.views
    for side, run in zip(("a", "b"), cmp.runs, strict=True):
        pred = run.predictions
        views[f"grid_{side}"].set_predictions(
            pred.classnames,
            pred.topk_indices,
            pred.topk_probs,
            labels=cmp.label_codes,
            similarity=pred.similarity,
        )
        if not rescored:
            _draw_map(cmp, run, views[f"map_{side}"])
    if "metrics" in views and not rescored:
        if cmp.a.metrics is None or cmp.b.metrics is None:
            views["metrics"].clear("metrics need prompts that name the true labels")
        else:
            views["metrics"].set_metrics(
                cmp.a.metrics, cmp.b.metrics, names=(cmp.a.name, cmp.b.name)
            )
    if "reliability" in views and cmp.a.calibration is not None:
        runs = [r for r in cmp.runs if r.calibration is not None]
        views["reliability"].set_calibrations([r.calibration for r in runs], [r.name for r in runs])
    show_filter(cmp)  # the caller sets the summary once, after its timing


def _draw_map(cmp: Any, run: Any, view: Any) -> None:
    """Fit this side's map once (images and prompts); later prompts are placed into it."""
    if run.projection is None:
        run.projection = project(
            run.embeddings, run.prompts, cmp.projection_method, cache=cmp._cache
        )
        view.set_points(
            run.projection.image_xy,
            cmp.ids,
            cmp.predicted_codes(run),
            run.projection.prompt_xy,
            run.prompts.classnames,
            true_labels=cmp.label_codes,
        )
        view.method = run.projection.method
        if cmp.thumbnails is not None:
            view.set_thumbnails(cmp.thumbnails)
        return
    view.set_labels(cmp.predicted_codes(run))  # codes: no string per image
    view.update_prompts(run.projection.transform(run.prompts.vectors), run.prompts.classnames)


def show_filter(cmp: Any) -> None:
    """Both grids: every image, or only the disagreements, most changed neighbourhood first."""
    grids = (cmp.views["grid_a"], cmp.views["grid_b"])
    if not cmp.disagreements_only:
        if cmp._filtered:  # clearing refreshes the grid (a page push): only when filtered
            for grid in grids:
                grid.clear_results()
            cmp._filtered = False
        return
    cmp._filtered = True
    rows = np.flatnonzero(cmp.disagreements)
    rows = rows[np.argsort(cmp.overlap[rows], kind="stable")]
    ids = [cmp.ids[i] for i in rows]
    title = f"{len(ids)} images where {cmp.a.name} and {cmp.b.name} disagree (score: overlap)"
    for grid in grids:
        grid.show_results(ids, cmp.overlap[rows], title)


def summary_text(cmp: Any) -> str:
    """One line: per side acc1, ECE and logit scale; disagreements; overlap; update time."""
    parts = [f"{len(cmp.ids)} images"]
    for run in cmp.runs:
        text = f"{run.name} ({run.model.info.name})"
        if run.metrics is not None:
            text += f": acc1 {run.metrics.acc1:.3f}"
        if run.calibration is not None:
            text += f" · ECE {run.calibration.ece:.3f}"
        parts.append(text + f" · scale {run.predictions.logit_scale:.3g}")
    n = int(cmp.disagreements.sum())
    parts.append(f"disagree on {n} ({100 * n / max(1, len(cmp.ids)):.1f}%)")
    parts.append(f"mean neighbour overlap {float(np.nanmean(cmp.overlap)):.2f}")
    parts.append(f"update {1000 * cmp.last_update_s:.0f} ms")
    if cmp.errors:
        parts.insert(0, f"error: {cmp.errors[-1]}")
    return " | ".join(parts + (cmp.a.notes + cmp.b.notes)[:2])


def set_summary(cmp: Any, text: str | None = None) -> None:
    """Update the summary line (escaped once) from the state."""
    from clipviz.views._html import escape

    cmp.summary = summary_text(cmp) if text is None else text
    box = getattr(cmp, "_summary_html", None)
    if box is not None:
        box.value = f"<span class='clipviz-status-text'>{escape(cmp.summary)}</span>"


def propagate_selection(cmp: Any, ids: list[str]) -> None:
    """Give every selectable view the selection, without echoes."""
    cmp._linking = True
    try:
        for name in _SELECTABLE:
            view = cmp.views[name]
            if list(view.selection) != list(ids):
                view.selection = list(ids)
    finally:
        cmp._linking = False


def on_view_selection(cmp: Any, change: dict[str, Any]) -> None:
    """A user selected in one view: that becomes the comparison's selection."""
    if not cmp._linking:
        cmp.selection = list(change["new"])


def guarded(cmp: Any, fn: Callable[..., Any]) -> Callable[..., Any]:
    """Errors of a callback go to the Output area and the summary; the state stays."""

    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # shown to the user; the previous state stays in place
            cmp.errors.append(f"{type(err).__name__}: {err}")
            cmp.output.append_stderr("".join(traceback.format_exception(err)))
            set_summary(cmp)
            return None

    return run


def widget(cmp: Any) -> Any:
    """Build (once) the comparison's widget: controls left, the two sides right."""
    if getattr(cmp, "_widget", None) is not None:
        return cmp._widget
    import ipywidgets as w

    views = cmp.views
    cmp._summary_html = w.HTML().add_class("clipviz-status")
    set_summary(cmp)
    sliders = []
    for run, trait in zip(cmp.runs, ("scale_a", "scale_b"), strict=True):
        slider = w.FloatLogSlider(
            value=getattr(cmp, trait),
            base=10,
            min=-1,
            max=3,
            step=0.01,
            description=f"scale {run.name}",
            continuous_update=False,
        )
        w.link((cmp, trait), (slider, "value"))
        sliders.append(slider)
    fit = w.Button(description="fit temperature", tooltip="logit scales minimising NLL")
    fit.on_click(guarded(cmp, lambda _: cmp.fit_temperature()))
    only = w.Checkbox(description="only disagreements", indent=False)
    w.link((cmp, "disagreements_only"), (only, "value"))
    left = w.VBox(
        [views["prompts"].widget, only, *sliders, fit],
        layout=w.Layout(width="26%", min_width="220px"),
    )

    def pair(a: Any, b: Any, cls: str) -> Any:
        half = w.Layout(width="50%")
        return w.HBox([w.Box([a], layout=half), w.Box([b], layout=half)]).add_class(cls)

    from clipviz.app.layout import metrics_accordion
    from clipviz.views._html import escape

    heads = [w.HTML(f"<b>{escape(r.name)}</b>: {escape(r.model.info.name)}") for r in cmp.runs]
    rows = [
        pair(*heads, "clipviz-compare-heads"),
        pair(views["map_a"].widget, views["map_b"].widget, "clipviz-compare-maps"),
        pair(views["grid_a"].widget, views["grid_b"].widget, "clipviz-compare-grids"),
    ]
    if "reliability" in views:
        rows.append(
            pair(views["overlap"].widget, views["reliability"].widget, "clipviz-compare-plots")
        )
        # one click away as in the Workbench: a closed panel is not drawn on each edit
        rows.append(metrics_accordion(views["metrics"], lambda fn: guarded(cmp, fn)))
    else:
        rows.append(views["overlap"].widget)
    right = w.VBox(rows, layout=w.Layout(width="74%"))
    cmp._widget = w.VBox(
        [cmp._summary_html, w.HBox([left, right]), cmp.output], layout=w.Layout(width="100%")
    ).add_class("clipviz-comparison")
    return cmp._widget
