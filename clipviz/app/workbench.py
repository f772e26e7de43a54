"""The Workbench: prompts, prediction grid, joint map, heatmap and metrics, all linked.

It owns the shared state (embeddings, prompt vectors, predictions, metrics, selection) and
decides what to recompute; the views only draw and report user actions. Images are embedded
once; a prompt edit encodes only new texts and runs one update; the map is fitted once and new
prompts are placed into it. Errors in callbacks go to an Output area and leave the previous
state in place.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import traitlets as t

from clipviz.app import inputs, policy
from clipviz.app.projection import Projector
from clipviz.app.prompts import TextCache
from clipviz.compute.types import ImageEmbeddings
from clipviz.views.prompt_panel import parse_lines


class Workbench(t.HasTraits):
    """A linked CLIP workbench over a set of images.

    Parameters
    ----------
    images : ImageSet or ImageEmbeddings
        The images (embedded once here), or embeddings made before (no thumbnails then, unless
        the ImageSet is passed too with ``embeddings=``).
    model : ClipModel
        From ``clipviz.load_model``; encodes the prompts (and the images when needed).
    classnames : list of str, optional
        Prompt set A: class names (put into the templates) or ``"quoted free prompts"``.
        Defaults to the sorted distinct true labels.
    embeddings : ImageEmbeddings, optional
        Precomputed embeddings of ``images``.
    templates : str or list of str
        Template set name ("single", "simple", "openai_imagenet") or custom templates.
    labels : list of str, optional
        True labels (default: those of the embeddings or the ImageSet).
    projection : {"umap", "pca"}
        The map's projection; with "umap", PCA shows at once and UMAP replaces it when ready.
    k : int
        Top-k labels shown per image.
    prompts_b : list of str, optional
        A second prompt set, compared with A in the metrics.
    thumbnail_size : int
        Thumbnail size in pixels.
    cache : bool or str
        Embedding and projection disk cache (see ``clipviz.embed_images``).
    """

    selection = t.List(t.Unicode())

    def __init__(
        self,
        images: Any,
        model: Any = None,
        classnames: Sequence[str] | None = None,
        *,
        embeddings: ImageEmbeddings | None = None,
        templates: str | Sequence[str] = "single",
        labels: Sequence[str] | None = None,
        projection: str = "umap",
        k: int = 5,
        prompts_b: Sequence[str] | None = None,
        thumbnail_size: int = 96,
        cache: bool | str = True,
        batch_size: int = 64,
    ) -> None:
        super().__init__()
        if model is None:
            raise TypeError(
                "Workbench needs model= to encode prompts, e.g. clipviz.load_model('clipviz-shapes')"
            )
        self.model = model
        self.k = int(k)
        self._texts = TextCache(model)
        self.images, self.embeddings = inputs.resolve_images(
            images, embeddings, model, batch_size=batch_size, cache=cache
        )
        self.ids: list[str] = list(self.embeddings.ids)
        self._index = {i: n for n, i in enumerate(self.ids)}
        self.labels = inputs.resolve_labels(labels, self.embeddings, self.images)
        if self.labels != self.embeddings.labels:  # zero_shot reads the labels from here
            self.embeddings = dataclasses.replace(self.embeddings, labels=self.labels)
        if classnames is None:
            if self.labels is None:
                raise ValueError("no classnames and no true labels: pass classnames=[...]")
            classnames = sorted(set(self.labels))
        self.errors: list[str] = []
        self.last_error = ""  # shown in the status line until the next successful update
        self.notes_a: list[str] = []  # e.g. labels that no prompt names (left out of metrics)
        self.notes_b: list[str] = []
        self.updates = 0  # one per recomputation of the prompt-dependent views
        self.last_update_s = 0.0
        self.timings: dict[str, float] = {}  # seconds per step of the last update
        self._lock = threading.RLock()
        self._linking = False
        self._searching = False
        self.prompt_embeddings: Any = None
        self.predictions: Any = None
        self.metrics: Any = None
        self.predictions_b: Any = None
        self.metrics_b: Any = None
        self._applied: dict[str, Any] = {}
        import ipywidgets

        self._widget: Any = None
        self._output = ipywidgets.Output().add_class("clipviz-output")
        self._status: Any = None
        self.status = ""
        self._projector = Projector(
            projection, self._on_projection_ready, self._report, cache=cache
        )
        self.views = policy.make_views(
            self, list(classnames), templates, list(prompts_b or []), thumbnail_size
        )
        policy.initial_update(self)
        policy.connect(self)

    # ------------------------------------------------------------ python handles
    @property
    def prompts(self) -> list[str]:
        """Prompt set A (settable: same effect as typing them and pressing Apply)."""
        return list(self.views["prompts"].prompts)

    @prompts.setter
    def prompts(self, value: Sequence[str]) -> None:
        self.views["prompts"].prompts = parse_lines([str(v) for v in value])

    @property
    def prompts_b(self) -> list[str]:
        """Prompt set B for the A/B comparison (settable)."""
        return list(self.views["prompts"].prompts_b)

    @prompts_b.setter
    def prompts_b(self, value: Sequence[str]) -> None:
        self.views["prompts"].prompts_b = parse_lines([str(v) for v in value])

    @property
    def projection(self) -> Any:
        """The 2-D projection shown in the map now (a ``compute.Projection``)."""
        return self._projector.current

    @property
    def text_encodes(self) -> int:
        """How many prompt texts were sent through the model so far."""
        return self._texts.encoded

    def search(self, text: str, k: int | None = None) -> Any:
        """Show the ``k`` images most similar to ``text`` in the grid; returns them as a DataFrame.

        Parameters
        ----------
        text : str
            Any text, e.g. "a small red circle". An empty text clears the results.
        k : int, optional
            Number of hits (default: the search box's k).

        Returns
        -------
        pandas.DataFrame or None
            Columns id, score, label (true label, or None); None for an empty text.
        """
        box = self.views["search"]
        self._searching = True
        try:
            box.query = text
            if k is not None:
                box.k = int(k)
        finally:
            self._searching = False
        return policy.run_search(self, text, box.k)

    def save_html(self, path: Any, **options: Any) -> Any:
        """Write a static HTML snapshot (grid, map, heatmap, metrics) that needs no kernel.

        ``options`` go to :func:`clipviz.app.snapshot.save_html` (``title``, ``max_images``).
        Returns the path written.
        """
        from clipviz.app.snapshot import save_html

        return save_html(self, path, **options)

    def export(self, folder: Any, *, dataset: str = "clipviz") -> list[Any]:
        """Write metrics (CLIP_benchmark JSON, when labelled) and predictions (Parquet) of A."""
        from clipviz.app.compare import export_run

        return export_run(folder, "A", self.model, self.predictions, self.metrics, dataset)

    def wait_for_projection(self, timeout: float | None = None) -> bool:
        """Block until a background UMAP fit is shown; True when none is pending."""
        return self._projector.wait(timeout)

    # ---------------------------------------------------------------- selection
    @t.validate("selection")
    def _check_selection(self, proposal: dict[str, Any]) -> list[str]:
        value = [str(v) for v in proposal["value"]]
        unknown = [v for v in value if v not in self._index]
        if unknown:
            raise t.TraitError(
                f"selection has ids that are not images of this workbench: {unknown[:5]}; "
                f"use ids from wb.ids (e.g. {self.ids[:2]})"
            )
        return list(dict.fromkeys(value))

    @t.observe("selection")
    def _selection_changed(self, change: dict[str, Any]) -> None:
        policy.propagate_selection(self, change["new"])

    # ------------------------------------------------------------------- errors
    def guarded(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap a callback so that its errors land in the Output area, not in the void."""

        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception as err:  # shown to the user; the previous state stays in place
                self._report(err)
                return None

        return run

    def _report(self, err: BaseException) -> None:
        text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
        self.errors.append(f"{type(err).__name__}: {err}")
        self._output.append_stderr(text)
        self.last_error = f"{type(err).__name__}: {err}"
        self.set_status()

    def set_status(self, text: str | None = None) -> None:
        """Update the status line (escaped; computed from the state when no text is given)."""
        from clipviz.views._html import escape

        if text is None:
            text = policy.status_text(self)
        self.status = text
        if self._status is not None:
            self._status.value = f"<span class='clipviz-status-text'>{escape(text)}</span>"

    # ------------------------------------------------------------- projection
    def _on_projection_ready(self, proj: Any) -> None:
        self.guarded(policy.show_projection)(self, proj)

    def timed(self, fn: Callable[[], None]) -> None:
        """Run one update, count it and time it."""
        start = time.perf_counter()
        self.timings = {}
        with self._lock:
            fn()
        self.last_update_s = time.perf_counter() - start
        self.updates += 1
        self.last_error = ""  # a successful update replaces the error shown
        self.set_status()

    # ------------------------------------------------------------------ widget
    @property
    def widget(self) -> Any:
        """The whole workbench as one ipywidgets box (built on first access)."""
        if self._widget is None:
            from clipviz.app.layout import build

            self._widget = build(self)
            self.set_status()
        return self._widget

    @property
    def output(self) -> Any:
        """The ipywidgets Output where callback errors appear."""
        return self._output

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return (
            f"Workbench({len(self.ids)} images, {len(self.prompts)} prompts, "
            f"map={self._projector.method})"
        )
