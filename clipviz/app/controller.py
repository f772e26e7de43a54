"""The Workbench's update logic: one owner that turns user actions into view updates.

Follow a prompt edit: ``PromptPanel.revision`` -> :meth:`Controller.on_prompt_panel` ->
:meth:`Controller.apply` (``PromptConfig``) -> :meth:`Controller.compute_set` for A (and B) ->
:meth:`Controller.show_a` (grid, map prompts and colours, heatmap) and
:meth:`Controller.show_metrics`. The rule throughout: compute everything new first, then assign
and push to the views, so an error half-way leaves the previous state whole.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from clipviz.app.projection import Projector
from clipviz.app.prompts import TextCache
from clipviz.app.state import ImageData, PromptConfig, PromptResults, UpdateLog
from clipviz.compute import evaluate, zero_shot
from clipviz.compute.ann import nearest_auto


@dataclass
class Views:
    """The workbench's views (state objects; their widgets are built on first use)."""

    prompts: Any
    search: Any
    grid: Any
    map: Any
    heatmap: Any
    metrics: Any = None  # only with true labels

    def as_dict(self) -> dict[str, Any]:
        out = {n: getattr(self, n) for n in ("prompts", "search", "grid", "map", "heatmap")}
        if self.metrics is not None:
            out["metrics"] = self.metrics
        return out

    @property
    def selectable(self) -> tuple[Any, ...]:
        return (self.grid, self.map, self.heatmap)


def make_views(data: ImageData, config: PromptConfig, thumbnails: Any) -> Views:
    """Create the views (no widgets yet) and give them the images."""
    from clipviz.views import (
        EmbeddingMap,
        MetricsPanel,
        PredictionGrid,
        PromptPanel,
        SearchBox,
        SimilarityHeatmap,
    )

    grid = PredictionGrid()
    # lazy store: the grid asks for its page, the map and heatmap for a hovered image
    pages = thumbnails.page if thumbnails is not None else None
    grid.set_images(data.ids, pages, mime="image/webp")
    from clipviz.compute.templates import get_templates, list_template_sets

    panel = PromptPanel(
        template_counts={name: len(get_templates(name)) for name in list_template_sets()},
        **config.as_panel_fields(),
    )
    return Views(
        prompts=panel,
        search=SearchBox(),
        grid=grid,
        map=EmbeddingMap(show_gap_toggle=True),  # the workbench recomputes on `center`
        heatmap=SimilarityHeatmap(),
        metrics=MetricsPanel() if data.labels is not None else None,
    )


class Controller:
    """Owns the applied prompt state and decides what each user action recomputes.

    Parameters
    ----------
    data : ImageData
        The images (fixed).
    views : Views
        The views it feeds and listens to.
    texts : TextCache
        Prompt text -> vector cache (only new texts are encoded).
    projector : Projector
        The map's projection (PCA now, UMAP in the background).
    k : int
        Top-k classes kept per image.
    log : UpdateLog
        Counts and times every update; the status line reads it.
    set_status : callable
        Redraws the status line.
    """

    def __init__(
        self,
        data: ImageData,
        views: Views,
        texts: TextCache,
        projector: Projector,
        *,
        k: int,
        log: UpdateLog,
        set_status: Callable[[], None],
    ) -> None:
        self.data, self.views, self.texts, self.projector = data, views, texts, projector
        self.k, self.log, self.set_status = int(k), log, set_status
        self.applied: PromptConfig | None = None
        self.a: PromptResults | None = None
        self.b: PromptResults | None = None
        self.selected = np.zeros(0, np.int64)  # row numbers of the selection
        self._linking = False
        self.searching = False

    # ---------------------------------------------------------------- prompts
    def on_prompt_panel(self, change: Any = None) -> None:
        """A committed prompt panel change (one ``revision`` bump): apply it."""
        self.apply(PromptConfig.from_panel(self.views.prompts))

    def apply(self, config: PromptConfig) -> None:
        """Recompute A and/or B for ``config``, once; nothing changes when it fails."""
        redo_a, redo_b = config.differs_a(self.applied), config.differs_b(self.applied)
        if not (redo_a or redo_b):
            return

        def work() -> None:
            a = self.compute_set(config.prompts, config, "A") if redo_a else self.a
            b = self.compute_set(config.prompts_b, config, "B") if redo_b else self.b
            prompt_xy = None
            with self.stage("place_prompts"):
                if redo_a and self.projector.current is not None:
                    prompt_xy = self.projector.place(a.prompts.vectors)
            self.a, self.b, self.applied = a, b, config
            if redo_a:
                self.show_a(a, prompt_xy)
            self.show_metrics()

        self.timed(work)

    def compute_set(
        self, lines: tuple[str, ...], config: PromptConfig, name: str
    ) -> PromptResults | None:
        """Vectors (only new texts encoded), predictions and metrics of one prompt set."""
        if not lines and name == "B":
            return None
        suffix = "" if name == "A" else "_b"
        with self.stage("encode" + suffix):
            prompts = self.texts.prompts(lines, config.template_arg(), ensemble=config.ensemble)
        with self.stage("zero_shot" + suffix):
            data, before = self.data, self.a if name == "A" else self.b
            # the previous results' similarity columns and top-k: only new prompts are scored
            previous = before.predictions if before is not None else None
            pred = zero_shot(
                data.embeddings, prompts, k=self.k, label_codes=data.label_codes, previous=previous
            )
        with self.stage("metrics" + suffix):
            metrics, notes = evaluate_quietly(pred)
        if name == "B":
            notes = [f"B: {n}" for n in notes]
        return PromptResults(prompts, pred, metrics, notes)

    def show_a(self, a: PromptResults, prompt_xy: np.ndarray | None) -> None:
        """Push prompt set A's results to the grid, the map and the heatmap."""
        pred, views = a.predictions, self.views
        with self.stage("grid"):
            views.grid.set_predictions(
                pred.classnames,
                pred.topk_indices,
                pred.topk_probs,
                labels=self.data.label_codes,
                similarity=pred.similarity,
            )
        with self.stage("map"):
            if prompt_xy is not None:  # before the first fit, refit_map sets all points itself
                views.map.set_labels(a.predicted_codes)  # codes: no string per image
                views.map.update_prompts(prompt_xy, pred.classnames)
        with self.stage("heatmap"):
            views.heatmap.set_data(
                pred.similarity,
                self.data.ids,
                pred.classnames,
                labels=self.data.label_codes,
                predicted=a.predicted_codes,
                # a kept prompt's column is unchanged: its class means are reused
                column_keys=[v.tobytes() for v in pred.prompt_vectors],
            )

    def show_metrics(self) -> None:
        """Show A (and B) in the metrics panel."""
        panel = self.views.metrics
        if panel is None:
            return
        with self.stage("metrics_panel"):
            if self.a is None or self.a.metrics is None:
                panel.clear("metrics need prompts that name the true labels")
            else:
                panel.set_metrics(self.a.metrics, self.b.metrics if self.b else None)

    # ------------------------------------------------------------------- map
    def refit_map(self, change: Any = None) -> None:
        """Fit the map (PCA now, UMAP in the background) with the current modality-gap setting."""
        center = bool(self.views.map.center)
        if center and len(self.a.prompts.classnames) < 2:
            # centering needs a prompt mean from >= 2 vectors; keep the current map instead
            self.set_status(
                "Remove modality gap needs at least 2 prompts; add a prompt to use it "
                "(the map is unchanged)."
            )
            return
        # the embeddings, not their raw array: project() then neither re-normalises nor copies
        proj = self.projector.fit(self.data.embeddings, self.a.prompts.vectors, center=center)
        self.show_projection(proj)

    def show_projection(self, proj: Any) -> None:
        """Put a projection on the map; prompts edited since the fit are placed into it."""
        if proj is not self.projector.current:
            return  # superseded while it was being delivered
        prompts = self.a.prompts
        fitted = self.projector.fit_prompts
        if fitted is not None and np.array_equal(fitted, prompts.vectors):
            prompt_xy = proj.prompt_xy
        else:
            prompt_xy = np.asarray(proj.transform(prompts.vectors), dtype=np.float32)
        view = self.views.map
        view.set_points(
            proj.image_xy,
            self.data.ids,
            self.a.predicted_codes,
            prompt_xy,
            prompts.classnames,
            true_labels=self.data.label_codes,
        )
        view.method = proj.method
        waiting = self.projector.method == "umap" and proj.method != "umap"
        view.pending = "umap" if waiting and self.projector.pending else ""
        self.set_status()

    # ------------------------------------------------------------- selection
    def select(self, ids: list[str], rows: np.ndarray | None = None) -> None:
        """Give every selectable view the workbench's selection, without echoes.

        ``rows`` are the row numbers of ``ids`` when known (a lasso reports rows): then no
        view looks an id up.
        """
        self.selected = self.data.rows_of(ids) if rows is None else np.asarray(rows, np.int64)
        self._linking = True
        try:
            for view in self.views.selectable:
                if list(view.selection) != ids:
                    view.show_selection(list(ids), self.selected)
        finally:
            self._linking = False
        self.set_status()

    def is_linking(self) -> bool:
        """True while :meth:`select` is pushing a selection (a view's change is no user act)."""
        return self._linking

    # ---------------------------------------------------------------- search
    def on_search(self, change: Any = None) -> None:
        """The search box asked for a search (unless ``wb.search`` is doing it)."""
        if self.searching:
            return
        box = self.views.search
        self.run_search(box.query, box.k)

    def run_search(self, text: str, k: int) -> Any:
        """Top-k images for a text, shown in the grid; an empty text clears the results."""
        grid = self.views.grid
        if not text.strip():
            grid.clear_results()
            return None
        import pandas as pd

        vector = self.texts.get([text])[0]
        idx, scores = nearest_auto(self.data.embeddings, vector, k)  # ANN on large stores
        ids = [self.data.ids[i] for i in idx]
        grid.show_results(ids, scores, text)
        labels = self.data.labels
        found = [labels[i] for i in idx] if labels is not None else [None] * len(ids)
        return pd.DataFrame({"id": ids, "score": scores, "label": found})

    # ---------------------------------------------------------------- timing
    def timed(self, fn: Callable[[], None]) -> None:
        """Run one update, count it and time it."""
        start = time.perf_counter()
        self.log.timings = {}
        fn()
        self.log.last_update_s = time.perf_counter() - start
        self.log.updates += 1
        self.log.last_error = ""  # a successful update replaces the error shown
        self.set_status()

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time one step of an update into ``log.timings`` (seconds)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            timings = self.log.timings
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - start

    # ---------------------------------------------------------------- status
    def status_text(self) -> str:
        """One line: sizes, selection, accuracy, map state, last update time, notes."""
        log, a, b = self.log, self.a, self.b
        parts = [f"{len(self.data):,} images", f"{len(a.prompts) if a else 0} prompts"]
        if log.last_error:
            parts.insert(0, f"error: {log.last_error}")
        parts.append(f"{len(self.selected):,} selected")
        if a is not None and a.metrics is not None:
            parts.append(f"acc1 {a.metrics.acc1:.3f} · ECE {a.ece:.3f}")
        if b is not None and b.metrics is not None:
            parts.append(f"B acc1 {b.metrics.acc1:.3f}")
        view = self.views.map
        map_text = f"map {view.method or '-'}"
        if view.pending:
            map_text += f" ({self.projector.progress or view.pending + ' computing…'})"
        parts.append(map_text)
        parts.append(f"update {1000 * log.last_update_s:.0f} ms")
        parts.append(f"{self.texts.encoded} texts encoded")
        notes = (a.notes if a else []) + (b.notes if b else [])
        return " · ".join(parts + notes[:2])


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
