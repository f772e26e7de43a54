"""What the Workbench recomputes when something changes, and how it links the views.

Every function takes the Workbench first. The rule throughout: compute everything new first,
then assign and push to the views, so an error half-way leaves the previous state whole.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from clipviz.compute import evaluate, nearest, zero_shot

_A_FIELDS = ("prompts", "templates", "ensemble")
_B_FIELDS = ("prompts_b", "templates", "ensemble")
_SELECTABLE = ("grid", "map", "heatmap")


def make_views(
    wb: Any, classnames: list[str], templates: Any, prompts_b: list[str], thumb_size: int
) -> dict[str, Any]:
    """Create the views (no widgets yet) and give them the images."""
    from clipviz.views import (
        EmbeddingMap,
        MetricsPanel,
        PredictionGrid,
        PromptPanel,
        SearchBox,
        SimilarityHeatmap,
    )

    wb.thumbnails = _thumbnails(wb, thumb_size)
    grid = PredictionGrid()
    grid.set_images(wb.ids, wb.thumbnails, mime="image/webp")
    panel = PromptPanel(
        prompts=classnames,
        prompts_b=prompts_b,
        templates=templates if isinstance(templates, str) else list(templates),
    )
    views = {
        "prompts": panel,
        "search": SearchBox(),
        "grid": grid,
        "map": EmbeddingMap(),
        "heatmap": SimilarityHeatmap(),
    }
    if wb.labels is not None:  # metrics need true labels
        views["metrics"] = MetricsPanel()
    return views


def initial_update(wb: Any) -> None:
    """First predictions, metrics and map (PCA now; UMAP in the background)."""
    cfg = snapshot(wb)

    def work() -> None:
        update_a(wb, cfg)
        update_b(wb, cfg)
        push_metrics(wb)
        wb._applied = cfg

    wb.timed(work)
    refit_map(wb)
    for name in ("map", "heatmap"):
        if wb.thumbnails is not None:
            wb.views[name].set_thumbnails(wb.thumbnails)


def connect(wb: Any) -> None:
    """Observe the views: prompt edits, search, the modality-gap toggle, selections."""
    views = wb.views
    views["prompts"].observe(wb.guarded(lambda change: on_prompts(wb)), names="revision")
    views["search"].observe(wb.guarded(lambda change: on_search(wb)), names=["query", "k"])
    views["map"].observe(wb.guarded(lambda change: refit_map(wb)), names="center")
    for name in _SELECTABLE:
        views[name].observe(
            wb.guarded(lambda change: on_view_selection(wb, change)), names="selection"
        )


# ------------------------------------------------------------------ prompts
def snapshot(wb: Any) -> dict[str, Any]:
    """The prompt panel's committed fields."""
    panel = wb.views["prompts"]
    return {
        "prompts": list(panel.prompts),
        "prompts_b": list(panel.prompts_b),
        "templates": panel.templates if isinstance(panel.templates, str) else list(panel.templates),
        "ensemble": bool(panel.ensemble),
    }


def on_prompts(wb: Any) -> None:
    """A committed prompt panel change: recompute A and/or B, once."""
    cfg = snapshot(wb)
    changed_a = any(cfg[f] != wb._applied.get(f) for f in _A_FIELDS)
    changed_b = any(cfg[f] != wb._applied.get(f) for f in _B_FIELDS)
    if not (changed_a or changed_b):
        return

    def work() -> None:
        if changed_a:
            update_a(wb, cfg)
        if changed_b:
            update_b(wb, cfg)
        push_metrics(wb)
        wb._applied = cfg

    wb.timed(work)


def update_a(wb: Any, cfg: dict[str, Any]) -> None:
    """Prompt set A: vectors (only new texts encoded), predictions, metrics; then the views."""
    with stage(wb, "encode"):
        prompts = wb._texts.prompts(cfg["prompts"], cfg["templates"], ensemble=cfg["ensemble"])
    with stage(wb, "zero_shot"):
        pred = zero_shot(wb.embeddings, prompts, k=wb.k)
    with stage(wb, "metrics"):
        metrics, notes = evaluate_quietly(pred)
    prompt_xy = None
    with stage(wb, "place_prompts"):
        if wb._projector.current is not None:
            prompt_xy = wb._projector.place(prompts.vectors)
    wb.prompt_embeddings, wb.predictions, wb.metrics = prompts, pred, metrics
    wb.notes_a = notes
    views = wb.views
    with stage(wb, "grid"):
        views["grid"].set_predictions(
            pred.classnames,
            pred.topk_indices,
            pred.topk_probs,
            labels=wb.labels,
            similarity=pred.similarity,
        )
    predicted = pred.predicted
    with stage(wb, "map"):
        if prompt_xy is not None:  # before the first fit, refit_map sets all points itself
            views["map"].set_labels(predicted)
            views["map"].update_prompts(prompt_xy, pred.classnames)
    with stage(wb, "heatmap"):
        views["heatmap"].set_data(
            pred.similarity, wb.ids, pred.classnames, labels=wb.labels, predicted=predicted
        )


def update_b(wb: Any, cfg: dict[str, Any]) -> None:
    """Prompt set B (optional): predictions and metrics for the A/B comparison."""
    if not cfg["prompts_b"]:
        wb.predictions_b = wb.metrics_b = None
        wb.notes_b = []
        return
    with stage(wb, "prompts_b"):
        prompts = wb._texts.prompts(cfg["prompts_b"], cfg["templates"], ensemble=cfg["ensemble"])
        pred = zero_shot(wb.embeddings, prompts, k=wb.k)
        metrics, notes = evaluate_quietly(pred)
    wb.predictions_b, wb.metrics_b = pred, metrics
    wb.notes_b = [f"B: {n}" for n in notes]


def evaluate_quietly(pred: Any) -> tuple[Any, list[str]]:
    """Metrics, or None with a note when there are no labels or none matches a prompt."""
    if pred.labels is None:
        return None, []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            metrics = evaluate(pred)
        except ValueError as err:  # e.g. free prompts that match no label: not an error here
            return None, [str(err)]
    return metrics, [str(w.message) for w in caught]


def push_metrics(wb: Any) -> None:
    """Show A (and B) in the metrics panel."""
    panel = wb.views.get("metrics")
    if panel is None:
        return
    with stage(wb, "metrics_panel"):
        if wb.metrics is None:
            panel.clear("metrics need prompts that name the true labels")
        else:
            panel.set_metrics(wb.metrics, wb.metrics_b)


@contextlib.contextmanager
def stage(wb: Any, name: str) -> Iterator[None]:
    """Time one step of an update into ``wb.timings`` (seconds; the benchmark reports them)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        wb.timings[name] = wb.timings.get(name, 0.0) + time.perf_counter() - start


# --------------------------------------------------------------------- map
def refit_map(wb: Any) -> None:
    """Fit the map (PCA now, UMAP in the background) with the current modality-gap setting."""
    with wb._lock:
        center = bool(wb.views["map"].center)
        if center and len(wb.prompt_embeddings.classnames) < 2:
            # centering needs a prompt mean from >= 2 vectors; keep the current map instead
            wb.set_status(
                "Remove modality gap needs at least 2 prompts; add a prompt to use it "
                "(the map is unchanged)."
            )
            return
        proj = wb._projector.fit(wb.embeddings.vectors, wb.prompt_embeddings.vectors, center=center)
        show_projection(wb, proj)


def show_projection(wb: Any, proj: Any) -> None:
    """Put a projection on the map; prompts edited since the fit are placed with transform."""
    with wb._lock:
        prompts = wb.prompt_embeddings
        fitted = wb._projector.fit_prompts
        if fitted is not None and np.array_equal(fitted, prompts.vectors):
            prompt_xy = proj.prompt_xy
        else:
            prompt_xy = np.asarray(proj.transform(prompts.vectors), dtype=np.float32)
        view = wb.views["map"]
        view.set_points(
            proj.image_xy,
            wb.ids,
            wb.predictions.predicted,
            prompt_xy,
            prompts.classnames,
            true_labels=wb.labels,
        )
        view.method = proj.method
        waiting = wb._projector.method == "umap" and proj.method != "umap"
        view.pending = "umap" if waiting and wb._projector.pending else ""
    wb.set_status()


# --------------------------------------------------------- selection, search
def propagate_selection(wb: Any, ids: list[str]) -> None:
    """Give every selectable view the workbench's selection, without echoes."""
    wb._linking = True
    try:
        for name in _SELECTABLE:
            view = wb.views[name]
            if list(view.selection) != list(ids):
                view.selection = list(ids)
    finally:
        wb._linking = False


def on_view_selection(wb: Any, change: dict[str, Any]) -> None:
    """A user selected in one view: that becomes the workbench's selection."""
    if wb._linking:
        return  # our own propagation, not a user action
    wb.selection = list(change["new"])


def on_search(wb: Any) -> None:
    """The search box changed: run the search (unless wb.search is doing it)."""
    if wb._searching:
        return
    box = wb.views["search"]
    run_search(wb, box.query, box.k)


def run_search(wb: Any, text: str, k: int) -> Any:
    """Top-k images for a text, shown in the grid; an empty text clears the results."""
    grid = wb.views["grid"]
    if not text.strip():
        grid.clear_results()
        return None
    import pandas as pd

    vector = wb._texts.get([text])[0]
    idx, scores = nearest(wb.embeddings.vectors, vector, k)
    ids = [wb.ids[i] for i in idx]
    grid.show_results(ids, scores, text)
    labels = [wb.labels[i] for i in idx] if wb.labels is not None else [None] * len(ids)
    return pd.DataFrame({"id": ids, "score": scores, "label": labels})


# ------------------------------------------------------------------ status
def status_text(wb: Any) -> str:
    """One line: sizes, accuracy, map state, last update time, notes."""
    shown = wb.predictions.classnames if wb.predictions is not None else []
    parts = [f"{len(wb.ids)} images", f"{len(shown)} prompts"]
    if wb.last_error:
        parts.insert(0, f"error: {wb.last_error}")
    if wb.metrics is not None:
        from clipviz.compute import calibration  # ECE next to acc1: one bincount, ~ms per 100k

        parts.append(f"acc1 {wb.metrics.acc1:.3f} · ECE {calibration(wb.predictions).ece:.3f}")
    if wb.metrics_b is not None:
        parts.append(f"B acc1 {wb.metrics_b.acc1:.3f}")
    view = wb.views["map"]
    map_text = f"map {view.method or '-'}"
    parts.append(map_text + (f" ({view.pending} computing…)" if view.pending else ""))
    parts.append(f"update {1000 * wb.last_update_s:.0f} ms")
    parts.append(f"{wb.text_encodes} texts encoded")
    return " · ".join(parts + (wb.notes_a + wb.notes_b)[:2])


def _thumbnails(wb: Any, size: int) -> list[bytes] | None:
    from clipviz.app.inputs import thumbnails_for

    return thumbnails_for(wb.images, wb.ids, size)
