"""Saliency in the workbench: the grid's "where" overlays and the detail view of one image.

``saliency_view`` builds a stand-alone :class:`SaliencyView` for one image. ``WorkbenchSaliency``
wires saliency into a Workbench: while the grid's ``where`` is on, the page's thumbnails are
replaced by overlays of each image's top-1 (or the chosen) prompt, computed in the background
for the visible page only, a few images at a time, cached; clicking one image shows it large
with one map per prompt of set A. Both use the applied prompt vectors (the template ensemble
the predictions came from). A new page, a new prompt set, another method or a new selection
supersedes the work under way: the running job stops at its next chunk and its result is
never drawn.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from clipviz.views.saliency_view import SaliencyView

__all__ = ["saliency_view", "WorkbenchSaliency", "SaliencyWorker"]

#: Images per saliency forward pass in the background; the job can stop between chunks.
CHUNK = 8
#: Longest side of a grid overlay in pixels (a grid cell is about 112 CSS pixels wide).
OVERLAY_SIZE = 128
#: Overlay encoding per grid thumbnail MIME type (the page decodes one type for all).
_FORMATS = {"image/webp": "WEBP", "image/jpeg": "JPEG", "image/png": "PNG"}


def saliency_view(
    model: Any, image: Any, prompts: Sequence[str], *, method: str = "auto", size: int = 160
) -> SaliencyView:
    """A :class:`SaliencyView` of ``image`` with one map per prompt, labelled with its cosine.

    Parameters
    ----------
    model : ClipModel
    image : PIL.Image.Image or path
    prompts : list of str
    method : str
        As in :func:`clipviz.saliency`.
    size : int
        Tile side in CSS pixels.
    """
    from clipviz.models.saliency._tower import load_image

    pil = load_image(image)
    vectors = model.encode_texts(list(prompts))
    view = SaliencyView(size=size)
    image, overlays, scores = _maps_for_view(model, pil, vectors, method)
    view.set_maps(
        image, overlays, list(prompts), scores=scores, title=f"where each prompt matches ({method})"
    )
    return view


def _maps_for_view(
    model: Any, pil: Any, vectors: np.ndarray, method: str
) -> tuple[bytes, list[bytes], list[float]]:
    """The image as PNG, one overlay PNG per prompt vector, and each prompt's cosine."""
    from clipviz.models.saliency import saliency
    from clipviz.models.saliency.page import overlay_png

    maps = saliency(model, pil, np.asarray(vectors, np.float32), method=method)
    image = model.encode_pil([pil])[0]
    scores = np.asarray(vectors, np.float32) @ (image / np.linalg.norm(image))
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue(), [overlay_png(pil, m) for m in maps], scores.tolist()


class SaliencyWorker:
    """One background job at a time; submitting a job makes every earlier one stale.

    A job is ``fn(stale)``; it calls ``stale()`` between chunks and returns when it is True.
    Jobs run one after another (one torch computation at a time); errors go to ``report``.
    """

    def __init__(self, report: Callable[[BaseException], None]) -> None:
        self._report = report
        self._generation = 0
        self._lock = threading.Lock()  # guards the generation
        self._run_lock = threading.Lock()  # one job computes at a time
        self.threads: list[threading.Thread] = []

    def submit(self, fn: Callable[[Callable[[], bool]], None]) -> int:
        """Start ``fn`` in a thread (after the running job stops); returns its generation."""
        with self._lock:
            self._generation += 1
            generation = self._generation
        thread = threading.Thread(target=self._run, args=(fn, generation), daemon=True)
        self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        thread.start()
        return generation

    def cancel(self) -> None:
        """Make the running and pending jobs stale."""
        with self._lock:
            self._generation += 1

    def is_stale(self, generation: int) -> bool:
        """True when a newer job was submitted (or cancel was called) since ``generation``."""
        with self._lock:
            return generation != self._generation

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every job has ended; True when none is left running."""
        for thread in list(self.threads):
            thread.join(timeout)
        return not any(t.is_alive() for t in self.threads)

    def _run(self, fn: Callable[[Callable[[], bool]], None], generation: int) -> None:
        with self._run_lock:
            if self.is_stale(generation):
                return
            try:
                fn(lambda: self.is_stale(generation))
            except Exception as err:  # shown in the workbench's output; the views stay as drawn
                self._report(err)


class WorkbenchSaliency:
    """The workbench's saliency: grid overlays ("where") and the detail view of one image.

    Built by the Workbench when it has images and a model whose tower saliency supports
    (``WorkbenchSaliency.supported``). Handles: ``method`` (settable), ``detail`` (the
    SaliencyView), ``widget`` (method selector and detail view), ``shown`` (the overlays now on
    the grid page, by image row, for snapshots), ``wait()``.
    """

    def __init__(self, wb: Any, *, method: str = "auto") -> None:
        from clipviz.models.saliency.page import SaliencyCache

        self.wb = wb
        self._method = method
        run_lock = threading.Lock()  # grid and detail jobs take turns on the model
        self.grid_worker = SaliencyWorker(wb._report)
        self.detail_worker = SaliencyWorker(wb._report)
        self.detail_worker._run_lock = self.grid_worker._run_lock = run_lock
        self.cache = SaliencyCache()
        self.detail = SaliencyView(size=160)
        self.detail_row: int | None = None
        self.shown: dict[int, bytes] = {}
        self._selector: Any = None
        self._widget: Any = None
        grid = wb.views["grid"]
        grid.overlay_handler = wb.guarded(self.on_page_request)
        grid.observe(self._on_where, names="where")
        wb.observe(self._on_selection, names="selection")

    @staticmethod
    def supported(wb: Any) -> bool:
        """True when ``wb`` has images to load and a model tower saliency can explain."""
        from clipviz.models.saliency import tower_kind

        if wb.images is None or not hasattr(wb.images, "load"):
            return False
        try:
            tower_kind(wb.model)
        except (TypeError, ValueError):
            return False
        return True

    @property
    def methods(self) -> list[str]:
        """Methods offered for this model: "auto" and those supporting its tower."""
        from clipviz.models.saliency import list_methods, tower_kind

        return ["auto", *list_methods(tower_kind(self.wb.model))]

    @property
    def method(self) -> str:
        """The saliency method of the overlays and the detail view."""
        return self._method

    @method.setter
    def method(self, name: str) -> None:
        if name not in self.methods:
            raise ValueError(f"unknown saliency method {name!r}; choose one of {self.methods}")
        if name == self._method:
            return
        self._method = name
        if self._selector is not None:
            self._selector.value = name
        grid = self.wb.views["grid"]
        if grid.where:
            self.shown.clear()
            grid.reload_thumbnails()
        if self.detail_row is not None:
            self.show_detail(self.detail_row)

    # ------------------------------------------------------------------ grid
    def on_page_request(self, indices: list[int], where: str, version: int) -> None:
        """The grid page asked for ``indices`` while ``where`` is on: overlays, in the
        background, CHUNK images at a time; a newer request or reload stops this one."""
        a = self.wb.controller.a
        if a is None or not indices:
            return
        names = list(a.predictions.classnames)
        if where != "top-1" and where not in names:
            raise ValueError(f"where={where!r} is neither 'top-1' nor one of the prompts {names}")
        top1 = a.predictions.topk_indices[:, 0]
        rows = [int(i) for i in indices]
        which = [int(top1[i]) if where == "top-1" else names.index(where) for i in rows]
        vectors, method = np.asarray(a.prompts.vectors, np.float32), self._method
        self.grid_worker.submit(
            lambda stale: self._page_job(rows, which, names, vectors, method, version, stale)
        )

    def _page_job(
        self,
        rows: list[int],
        which: list[int],
        names: list[str],
        vectors: np.ndarray,
        method: str,
        version: int,
        stale: Callable[[], bool],
    ) -> None:
        from clipviz.models.saliency.page import saliency_for_page

        grid = self.wb.views["grid"]
        fmt = _FORMATS.get(grid.thumb_mime, "PNG")
        for start in range(0, len(rows), CHUNK):
            if stale():
                return
            part, prompts = rows[start : start + CHUNK], which[start : start + CHUNK]
            blobs = saliency_for_page(
                self.wb.model,
                [self.wb.images.load(i) for i in part],
                [names[c] for c in prompts],
                method=method,
                cache=self.cache,
                vectors=vectors[prompts],
                fmt=fmt,
                size=OVERLAY_SIZE,
            )
            if stale() or not grid.send_thumbnails(part, blobs, version):
                return
            self.shown.update(zip(part, blobs, strict=True))
        self.wb.set_status()  # the notebook's static snapshot shows the overlays too

    def _on_where(self, change: Any) -> None:
        self.grid_worker.cancel()
        self.shown.clear()

    # ---------------------------------------------------------------- detail
    def _on_selection(self, change: Any) -> None:
        ids = list(change["new"])
        if len(ids) != 1:
            self.detail_worker.cancel()
            return
        row = int(self.wb.data.rows_of(ids)[0])
        if row >= 0:
            self.show_detail(row)

    def show_detail(self, row: int) -> None:
        """Compute and show image ``row`` with one map per prompt of set A (background)."""
        a = self.wb.controller.a
        if a is None:
            return
        self.detail_row = int(row)
        names = list(a.predictions.classnames)
        vectors, method = np.asarray(a.prompts.vectors, np.float32), self._method

        def job(stale: Callable[[], bool]) -> None:
            pil = self.wb.images.load(row)
            image, overlays, scores = _maps_for_view(self.wb.model, pil, vectors, method)
            if not stale():
                title = f"{self.wb.ids[row]}: where each prompt matches ({method})"
                self.detail.set_maps(image, overlays, names, scores=scores, title=title)
                self.wb.set_status()

        self.detail_worker.submit(job)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the overlay and detail jobs under way have ended."""
        return self.grid_worker.wait(timeout) and self.detail_worker.wait(timeout)

    def close(self) -> None:
        """Stop the jobs under way."""
        self.grid_worker.cancel()
        self.detail_worker.cancel()

    # ---------------------------------------------------------------- widget
    @property
    def widget(self) -> Any:
        """Method selector over the detail view (built on first access)."""
        if self._widget is None:
            import ipywidgets as w

            self._selector = w.Dropdown(
                options=self.methods, value=self._method, description="saliency"
            ).add_class("clipviz-saliency-method")
            self._selector.observe(
                self.wb.guarded(lambda change: setattr(self, "method", change["new"])),
                names="value",
            )
            hint = w.HTML(
                "<small>click one image for where each prompt matches; the grid's "
                "<i>where</i> menu overlays a prompt on every image of the page</small>"
            )
            self._widget = w.VBox([self._selector, hint, self.detail.widget]).add_class(
                "clipviz-saliency-detail"
            )
        return self._widget


def snapshot_overlays(wb: Any, ids: Sequence[str], thumbnails: list[bytes | None] | None) -> Any:
    """``thumbnails`` of ``ids`` with the grid's "where" overlays in place where shown."""
    saliency = getattr(wb, "saliency", None)
    if saliency is None or thumbnails is None or not saliency.shown:
        return thumbnails
    rows = wb.data.rows_of(list(ids))
    return [saliency.shown.get(int(r), t) for r, t in zip(rows, thumbnails, strict=True)]


def snapshot_detail_html(wb: Any) -> str:
    """The detail view's markup (already escaped) when it shows an image, else ""."""
    saliency = getattr(wb, "saliency", None)
    if saliency is None or saliency.detail_row is None or not saliency.detail.prompts:
        return ""
    return f"<h2>Where each prompt matches</h2>{saliency.detail.html()}"
