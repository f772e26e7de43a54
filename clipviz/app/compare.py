"""Comparison: the same images and prompts under two models (or two prompt sets), side by side.

Each side is a :class:`Run` (model, embeddings, prompt vectors, predictions, metrics,
calibration, map). One prompt panel drives both; a prompt edit updates both sides in one
update. The views are the Workbench's (grid, map, metrics) plus a neighbour-overlap histogram
and a reliability diagram; all selections are linked by image id.

    cmp = clipviz.Comparison(images, model_a, model_b, classnames=["circle", "square"])
    cmp.disagreements_only = True          # both grids show only images A and B label apart
    cmp.select_overlap(0.0, 0.3)           # images whose neighbourhoods changed most
    cmp.fit_temperature()                  # logit scales that minimise NLL; ECE updates
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import traitlets as t

from clipviz.app import inputs
from clipviz.app.controller import evaluate_quietly
from clipviz.app.prompts import TextCache
from clipviz.compute import (
    calibration,
    fit_temperature,
    neighbour_overlap,
    rescale,
    zero_shot,
)
from clipviz.compute.types import ImageEmbeddings

_SELECTABLE = ("grid_a", "grid_b", "map_a", "map_b", "overlap")


@dataclasses.dataclass
class Run:
    """One side of the comparison: a model with its prompt set and everything derived."""

    name: str
    model: Any
    embeddings: ImageEmbeddings
    texts: TextCache
    projection: Any = None
    prompts: Any = None  # PromptEmbeddings
    raw: Any = None  # Predictions at the model's own logit scale
    predictions: Any = None  # Predictions at the chosen logit scale
    metrics: Any = None
    calibration: Any = None
    notes: list[str] = dataclasses.field(default_factory=list)


class Comparison(t.HasTraits):
    """Two models (or two prompt sets) on the same images, linked by image id.

    Parameters
    ----------
    images : ImageSet or ImageEmbeddings
        The images (embedded once per model), or model A's embeddings (then pass
        ``embeddings_b``).
    model_a, model_b : ClipModel
        Any two models from ``clipviz.load_model``; ``model_b`` defaults to ``model_a``
        (compare prompt sets instead).
    classnames : list of str, optional
        Prompt set for both sides (default: the sorted distinct true labels).
    prompts_b : list of str, optional
        A different prompt set for side B (default: the same as A).
    embeddings_a, embeddings_b : ImageEmbeddings, optional
        Precomputed embeddings. Only images embedded by both models are compared.
    names : tuple of str
        Display names of the sides.
    templates, k, projection, neighbours, thumbnail_size, cache, batch_size
        As for ``Workbench``; ``neighbours`` is the k of the neighbour overlap.
    """

    selection = t.List(t.Unicode())
    disagreements_only = t.Bool(False)
    scale_a = t.Float(100.0)
    scale_b = t.Float(100.0)

    def __init__(
        self,
        images: Any,
        model_a: Any,
        model_b: Any = None,
        classnames: Sequence[str] | None = None,
        *,
        prompts_b: Sequence[str] | None = None,
        embeddings_a: ImageEmbeddings | None = None,
        embeddings_b: ImageEmbeddings | None = None,
        labels: Sequence[str] | None = None,
        names: tuple[str, str] = ("A", "B"),
        templates: str | Sequence[str] = "single",
        k: int = 5,
        projection: str = "pca",
        neighbours: int = 10,
        thumbnail_size: int = 96,
        cache: bool | str = True,
        batch_size: int = 64,
    ) -> None:
        super().__init__()
        model_b = model_a if model_b is None else model_b
        opts = {"batch_size": batch_size, "cache": cache}
        self.images, emb_a = inputs.resolve_images(images, embeddings_a, model_a, **opts)
        if embeddings_b is None and model_b is model_a:
            embeddings_b = emb_a  # one model, two prompt sets: embed once
        if self.images is None:
            emb_b = _embeddings_b_needed(embeddings_b)
        else:
            emb_b = inputs.resolve_images(self.images, embeddings_b, model_b, **opts)[1]
        emb_a, emb_b = _shared(emb_a, emb_b)
        self.ids = list(emb_a.ids)
        self._index = {i: n for n, i in enumerate(self.ids)}
        self.labels = inputs.resolve_labels(labels, emb_a, self.images)
        self.label_codes = _label_codes(self.labels)  # views and metrics take codes, not N str
        emb_a = dataclasses.replace(emb_a, labels=self.labels)
        emb_b = dataclasses.replace(emb_b, labels=self.labels)
        if classnames is None:
            if self.labels is None:
                raise ValueError("no classnames and no true labels: pass classnames=[...]")
            classnames = sorted(set(self.labels))
        self.k = int(k)
        texts_a = TextCache(model_a)
        # the same weights (one model, or the same checkpoint loaded twice) give the same text
        # vectors: one cache, so a prompt edit encodes each new text once, not once per side
        same = model_b is model_a or model_b.info.key == model_a.info.key
        self.runs = (
            Run(str(names[0]), model_a, emb_a, texts_a),
            Run(str(names[1]), model_b, emb_b, texts_a if same else TextCache(model_b)),
        )
        self.scale_a = float(model_a.info.logit_scale)
        self.scale_b = float(model_b.info.logit_scale)
        self.neighbours = min(int(neighbours), len(self.ids) - 1)
        self.overlap = neighbour_overlap(emb_a, emb_b, k=self.neighbours)  # (N,) in ids order
        self.updates, self.last_update_s, self.errors = 0, 0.0, []
        self._linking = False
        self._filtered = False  # the grids show only the disagreements
        self.projection_method, self._cache = projection, cache
        from clipviz.app import _compare_views

        self._ui = _compare_views
        self.views = _compare_views.make_views(
            self, list(classnames), list(prompts_b or []), templates, thumbnail_size
        )
        self._update()
        _compare_views.connect(self)

    # ----------------------------------------------------------- python handles
    @property
    def a(self) -> Run:
        """Side A."""
        return self.runs[0]

    @property
    def b(self) -> Run:
        """Side B."""
        return self.runs[1]

    @property
    def prompts(self) -> list[str]:
        """The prompt set (settable: same as typing it and pressing Apply)."""
        return list(self.views["prompts"].prompts)

    @prompts.setter
    def prompts(self, value: Sequence[str]) -> None:
        self.views["prompts"].apply(prompts=[str(v) for v in value])

    @property
    def disagreements(self) -> np.ndarray:
        """(N,) bool: the top-1 class names of A and B differ."""
        pa, pb = self.a.predictions, self.b.predictions
        top_a, top_b = pa.topk_indices[:, 0], pb.topk_indices[:, 0]
        if list(pa.classnames) == list(pb.classnames):  # one prompt set: compare columns
            return top_a != top_b
        names_a = np.asarray(pa.classnames, dtype=object)
        return names_a[top_a] != np.asarray(pb.classnames, dtype=object)[top_b]

    def predicted_codes(self, run: Run) -> tuple[np.ndarray, list[str]]:
        """A side's top-1 labels as (codes, names), what the views take instead of N strings."""
        pred = run.predictions
        return pred.topk_indices[:, 0].astype(np.int32), list(pred.classnames)

    def per_class(self) -> Any:
        """Per-class accuracy of A and B with the difference (B - A), as a DataFrame."""
        if self.a.metrics is None or self.b.metrics is None:
            raise ValueError("per-class accuracy needs labelled images whose labels are prompts")
        return self.a.metrics.compare(self.b.metrics, names=(self.a.name, self.b.name))

    def select_overlap(self, low: float, high: float) -> list[str]:
        """Select the images whose neighbour overlap lies in [low, high]; returns their ids."""
        self.views["overlap"].brush = (float(low), float(high))
        return list(self.selection)

    def fit_temperature(self) -> dict[str, float]:
        """Set each side's logit scale to the one minimising NLL on the labelled images."""
        fitted = {run.name: fit_temperature(run.raw) for run in self.runs}
        with self.hold_trait_notifications():
            self.scale_a, self.scale_b = fitted[self.a.name], fitted[self.b.name]
        return fitted

    def export(self, folder: Any, *, dataset: str = "clipviz") -> list[Any]:
        """Write each side's metrics (CLIP_benchmark JSON) and predictions (Parquet).

        Returns the paths written: ``<folder>/<name>_metrics.json`` (when labelled) and
        ``<folder>/<name>_predictions.parquet`` per side.
        """
        paths = []
        for run in self.runs:
            paths += export_run(folder, run.name, run.model, run.predictions, run.metrics, dataset)
        return paths

    # ------------------------------------------------------------------ updates
    def _update(self) -> None:
        """Recompute both sides from the prompt panel (compute first, then assign and draw)."""
        start = time.perf_counter()
        panel = self.views["prompts"]
        lines_b = list(panel.prompts_b) or list(panel.prompts)
        templates = panel.templates if isinstance(panel.templates, str) else list(panel.templates)
        scales = (self.scale_a, self.scale_b)
        fresh = [
            self._score(run, lines, templates, bool(panel.ensemble), scale)
            for run, lines, scale in zip(
                self.runs, (list(panel.prompts), lines_b), scales, strict=True
            )
        ]
        for run, values in zip(self.runs, fresh, strict=True):
            for name, value in values.items():
                setattr(run, name, value)
        self._ui.draw(self)
        self.last_update_s = time.perf_counter() - start
        self.updates += 1
        self._ui.set_summary(self)

    def _score(
        self, run: Run, lines: list[str], templates: Any, ensemble: bool, scale: float
    ) -> dict[str, Any]:
        prompts = run.texts.prompts(lines, templates, ensemble=ensemble)
        raw = zero_shot(  # only new prompts are scored against the previous result
            run.embeddings, prompts, k=self.k, label_codes=self.label_codes, previous=run.raw
        )
        pred = raw if scale == raw.logit_scale else rescale(raw, scale)
        metrics, notes = evaluate_quietly(pred)
        notes = [f"{run.name}: {note}" for note in notes]
        cal = calibration(pred) if metrics is not None else None
        return {
            "prompts": prompts,
            "raw": raw,
            "predictions": pred,
            "metrics": metrics,
            "calibration": cal,
            "notes": notes,
        }

    def _rescore(self) -> None:
        """A new logit scale: probabilities and calibration only (ranks and accuracy stay)."""
        start = time.perf_counter()
        for run, scale in zip(self.runs, (self.scale_a, self.scale_b), strict=True):
            pred = rescale(run.raw, scale)
            cal = calibration(pred) if run.metrics is not None else None
            run.predictions, run.calibration = pred, cal
        self._ui.draw(self, rescored=True)
        self.last_update_s = time.perf_counter() - start
        self.updates += 1
        self._ui.set_summary(self)

    @t.observe("scale_a", "scale_b")
    def _on_scale(self, change: dict[str, Any]) -> None:
        if getattr(self, "views", None) is not None and self.a.raw is not None:
            self._ui.guarded(self, self._rescore)()

    @t.validate("scale_a", "scale_b")
    def _check_scale(self, proposal: dict[str, Any]) -> float:
        value = float(proposal["value"])
        if not np.isfinite(value) or value <= 0:
            raise t.TraitError(f"a logit scale must be a positive number, got {value!r}")
        return value

    # ---------------------------------------------------------------- selection
    @t.validate("selection")
    def _check_selection(self, proposal: dict[str, Any]) -> list[str]:
        value = [str(v) for v in proposal["value"]]
        unknown = [v for v in value if v not in self._index]
        if unknown:
            raise t.TraitError(
                f"selection has ids that are not images of this comparison: {unknown[:5]}; "
                f"use ids from cmp.ids (e.g. {self.ids[:2]})"
            )
        return list(dict.fromkeys(value))

    @t.observe("selection")
    def _on_selection(self, change: dict[str, Any]) -> None:
        self._ui.propagate_selection(self, change["new"])

    @t.observe("disagreements_only")
    def _on_filter(self, change: dict[str, Any]) -> None:
        self._ui.show_filter(self)

    # ------------------------------------------------------------------- widget
    @property
    def widget(self) -> Any:
        """The whole comparison as one ipywidgets box (built on first access)."""
        return self._ui.widget(self)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return (
            f"Comparison({len(self.ids)} images, {self.a.name}={self.a.model.info.name!r}, "
            f"{self.b.name}={self.b.model.info.name!r})"
        )


def _label_codes(labels: Sequence[str] | None) -> tuple[np.ndarray, list[str]] | None:
    """(N,) int32 codes into the sorted distinct labels, or None without labels."""
    if labels is None:
        return None
    import pandas as pd

    codes, names = pd.factorize(pd.Series(labels, dtype=object), sort=True)
    return codes.astype(np.int32), [str(x) for x in names]


def _embeddings_b_needed(embeddings_b: Any) -> Any:
    """Without an ImageSet, side B can only come from precomputed embeddings."""
    if embeddings_b is None:
        raise TypeError(
            "Comparison was given embeddings instead of an ImageSet, so model B cannot embed "
            "the images: pass embeddings_b=, or pass the ImageSet as images"
        )
    return embeddings_b


def _shared(a: ImageEmbeddings, b: ImageEmbeddings) -> tuple[ImageEmbeddings, ImageEmbeddings]:
    """Both embeddings restricted to the images both models embedded, in A's order."""
    if list(a.ids) == list(b.ids):
        return a, b
    rows_b = {i: n for n, i in enumerate(b.ids)}
    keep = [n for n, i in enumerate(a.ids) if i in rows_b]
    if not keep:
        raise ValueError("the two embeddings share no image id; embed the same images")
    take_b = [rows_b[a.ids[n]] for n in keep]

    def subset(e: ImageEmbeddings, rows: list[int]) -> ImageEmbeddings:
        labels = None if e.labels is None else [e.labels[r] for r in rows]
        paths = None if e.paths is None else [e.paths[r] for r in rows]
        return dataclasses.replace(
            e, ids=[e.ids[r] for r in rows], vectors=e.vectors[rows], labels=labels, paths=paths
        )

    return subset(a, keep), subset(b, take_b)


def export_run(
    folder: Any, name: str, model: Any, pred: Any, metrics: Any, dataset: str
) -> list[Any]:
    """``<folder>/<name>_metrics.json`` (CLIP_benchmark layout, when there are metrics) and
    ``<folder>/<name>_predictions.parquet``; returns the paths written."""
    import pathlib

    from clipviz.compute import export_metrics, export_predictions

    out, stem, paths = pathlib.Path(folder), _safe_stem(name), []
    if metrics is not None:
        path = out / f"{stem}_metrics.json"
        export_metrics(
            metrics, path, dataset=dataset, model=model.info.name, classnames=list(pred.classnames)
        )
        paths.append(path)
    paths.append(export_predictions(pred, out / f"{stem}_predictions.parquet"))
    return paths


def _safe_stem(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "run"
