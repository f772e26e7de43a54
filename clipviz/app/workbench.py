"""The Workbench: prompts, prediction grid, joint map, heatmap and metrics, all linked.

The Workbench is the public face: it resolves the inputs into ``ImageData``, creates the views
and hands every user action to its ``Controller`` (controller.py), which owns the applied state
(``PromptConfig``, ``PromptResults`` for A and B, the selection) and decides what to recompute;
the views only draw and report user actions. Images are embedded
once; a prompt edit encodes only new texts and runs one update; the map is fitted once and new
prompts are placed into it. Errors in callbacks go to an Output area and leave the previous
state in place.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import traitlets as t

from clipviz.app import inputs
from clipviz.app._workbench_handles import WorkbenchHandles
from clipviz.app.controller import Controller, make_views
from clipviz.app.projection import Projector
from clipviz.app.prompts import TextCache
from clipviz.app.state import ImageData, PromptConfig, UpdateLog, with_labels
from clipviz.compute.types import ImageEmbeddings
from clipviz.engine.prompts import check_prompt_names


class Workbench(WorkbenchHandles, t.HasTraits):
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

    # no per-element trait: traitlets validates List(Unicode()) item by item (~0.2 s per 13k ids)
    selection = t.List()

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
        self._cache = cache  # embeddings, projections and thumbnails
        images, emb = inputs.resolve_images(
            images, embeddings, model, batch_size=batch_size, cache=cache
        )
        labels = inputs.resolve_labels(labels, emb, images)
        if classnames is None:
            if labels is None:
                raise ValueError("no classnames and no true labels: pass classnames=[...]")
            classnames = sorted(set(labels))
        config = PromptConfig(
            tuple(check_prompt_names(classnames, "classnames")),
            tuple(check_prompt_names(prompts_b, "prompts_b")) if prompts_b else (),
            templates if isinstance(templates, str) else tuple(templates),
        )
        self.data = ImageData(with_labels(emb, labels), labels, images)
        self.data.thumbnails = inputs.thumbnails_for(
            images, self.data.ids, thumbnail_size, cache=cache
        )
        self.log = UpdateLog()
        self._lock = threading.RLock()  # background fits and widget callbacks take turns
        import ipywidgets

        self._widget: Any = None
        self._output = ipywidgets.Output().add_class("clipviz-output")
        self._status: Any = None
        self._snapshot: Any = None  # the static output shown with the widget (snapshot.py)
        self.status = ""
        self._closed = False
        self._known_rows: Any = None  # row numbers a view reported with its selection
        self._selection_rows: Any = None  # row numbers of ``selection`` (after validation)
        projector = Projector(
            projection,
            self._on_projection_ready,
            self._report,
            on_progress=lambda text: self.set_status(),
            cache=cache,
        )
        self._views = make_views(self.data, config, self.data.thumbnails)
        self.views = self._views.as_dict()
        self.controller = Controller(
            self.data,
            self._views,
            TextCache(model, cache=cache),
            projector,
            k=self.k,
            log=self.log,
            set_status=self.set_status,
        )
        self.controller.apply(config)
        with self._lock:
            self.controller.refit_map()
        for view in (self._views.map, self._views.heatmap):
            if self.data.thumbnails is not None:
                view.set_thumbnails(self.data.thumbnails)
        self._connect()
        from clipviz.app.saliency import WorkbenchSaliency  # grid "where" overlays, detail view

        self.saliency = WorkbenchSaliency(self) if WorkbenchSaliency.supported(self) else None

    def _connect(self) -> None:
        """Observe the views: prompt edits, search, the modality-gap toggle, selections."""
        views, ctl = self._views, self.controller
        views.prompts.observe(self.guarded(ctl.on_prompt_panel), names="revision")
        views.search.observe(self.guarded(ctl.on_search), names=["query", "k", "submits"])
        views.map.observe(self.guarded(ctl.refit_map), names="center")
        for view in views.selectable:
            view.observe(self.guarded(self._on_view_selection), names="selection")

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
        box = self._views.search
        self.controller.searching = True
        try:
            box.query = text
            if k is not None:
                box.k = int(k)
        finally:
            self.controller.searching = False
        return self.controller.run_search(text, box.k)

    def save_html(self, path: Any, **options: Any) -> Any:
        """Write a static HTML snapshot (grid, map, heatmap, metrics) that needs no kernel.

        ``options`` go to :func:`clipviz.app.snapshot.save_html` (``title``, ``max_images``).
        Returns the path written.
        """
        from clipviz.app.snapshot import save_html

        return save_html(self, path, **options)

    def thumbnail(self, index: int) -> bytes | None:
        """The encoded thumbnail (WebP bytes) of image ``index`` (made on first use), or None
        without images. For a view's hover: one image, not the whole set."""
        return None if self.thumbnails is None else self.thumbnails.thumbnail(index)

    def export(self, folder: Any, *, dataset: str = "clipviz") -> list[Any]:
        """Write metrics (CLIP_benchmark JSON, when labelled) and predictions (Parquet) of A."""
        from clipviz.app.compare import export_run

        return export_run(folder, "A", self.model, self.predictions, self.metrics, dataset)

    def wait_for_projection(self, timeout: float | None = None) -> bool:
        """Block until a background UMAP fit is shown; True when none is pending."""
        return self.controller.projector.wait(timeout)

    def close(self) -> None:
        """Stop all background work (the UMAP fit and its child process); views stay as drawn."""
        self._closed = True
        self.controller.projector.close()
        if self.saliency is not None:
            self.saliency.close()
        self._views.map.pending = ""
        self.set_status()

    # ---------------------------------------------------------------- selection
    @t.validate("selection")
    def _check_selection(self, proposal: dict[str, Any]) -> list[str]:
        value = list(dict.fromkeys(str(v) for v in proposal["value"]))
        known = self._known_rows  # rows the selecting view reported
        rows = known if known is not None and len(known) == len(value) else None
        rows = self.data.rows_of(value) if rows is None else rows
        if (rows < 0).any():
            unknown = [v for v, r in zip(value, rows, strict=True) if r < 0]
            raise t.TraitError(
                f"selection has ids that are not images of this workbench: {unknown[:5]}; "
                f"use ids from wb.ids (e.g. {self.ids[:2]})"
            )
        self._selection_rows = rows
        return value

    @t.observe("selection")
    def _selection_changed(self, change: dict[str, Any]) -> None:
        self.controller.select(change["new"], self._selection_rows)

    def _on_view_selection(self, change: dict[str, Any]) -> None:
        """A user selected in one view: that becomes the workbench's selection."""
        if not self.controller.is_linking():
            self._known_rows = change["owner"].selected_rows  # no id look-up for a lasso
            try:
                self.selection = list(change["new"])
            finally:
                self._known_rows = None

    # ------------------------------------------------------------------- errors
    def guarded(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap a callback: run it under the lock; its errors land in the Output area."""

        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                with self._lock:
                    return fn(*args, **kwargs)
            except Exception as err:  # shown to the user; the previous state stays in place
                self._report(err)
                return None

        return run

    def _report(self, err: BaseException) -> None:
        text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
        self.log.errors.append(f"{type(err).__name__}: {err}")
        self._output.append_stderr(text)
        self.log.last_error = f"{type(err).__name__}: {err}"
        self.set_status()

    def set_status(self, text: str | None = None) -> None:
        """Update the status line (escaped; computed from the state when no text is given)."""
        from clipviz.views._html import escape

        controller = getattr(self, "controller", None)
        if text is None:
            text = controller.status_text() if controller is not None else ""
        self.status = text
        if self._status is not None:
            self._status.value = f"<span class='clipviz-status-text'>{escape(text)}</span>"
        if self._snapshot is not None:
            self.guarded(self._snapshot.refresh)(self)

    # ------------------------------------------------------------- projection
    def _on_projection_ready(self, proj: Any) -> None:
        if not self._closed:
            self.guarded(self.controller.show_projection)(proj)

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

    def _ipython_display_(self) -> None:
        # The live widget, then its static snapshot (kept at the last state) for pages without
        # a kernel: GitHub, nbviewer, nbconvert, a reopened notebook.
        from IPython.display import display

        from clipviz.app.snapshot import NotebookSnapshot

        display(self.widget)
        self._snapshot = NotebookSnapshot()
        self._snapshot.show(self)

    def __repr__(self) -> str:
        return (
            f"Workbench({len(self.ids)} images, {len(self.prompts)} prompts, "
            f"map={self.controller.projector.method})"
        )
