"""The prediction grid: image thumbnails with top-k labels, paged, sortable, selectable.

``PredictionGrid`` is the state object (plain traitlets, usable without a browser); its
``.widget`` is one anywidget for the whole grid, built on first use. Each update sends only the
visible page (a few dozen small dicts); the page then asks for the thumbnails it lacks, and
Python answers with those bytes as binary buffers (each message under ``MAX_MESSAGE_BYTES``), so
10,000 or 1,000,000 images cost the browser the same, and a reload fetches only the page shown. Sorting, filtering
and paging happen here in numpy; the browser only draws. Labels reach the DOM through
``textContent`` in grid.js, so file names and prompts containing HTML render as text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import traitlets as t

from clipviz.compute.id_rows import IdRows
from clipviz.views._grid_widget import build_widget
from clipviz.views._plotting import Codes, as_codes
from clipviz.views._selection import RowsOfSelection, check_ids

SORTS = ("input", "confidence", "confidence_asc", "similarity")
#: Thumbnail bytes per reply message: well under the Jupyter server's 10 MB message limit.
MAX_MESSAGE_BYTES = 4_000_000
#: Thumbnails the browser may ask for in one request (a page is ~50).
MAX_REQUEST = 1000

#: ``thumbnails(indices) -> list of bytes``: encoded thumbnails of those image indices.
ThumbnailSource = Callable[[Sequence[int]], Sequence[bytes]]
#: ``handler(indices, where, version)``: asked for overlays of the page shown while ``where`` is
#: on; it answers later with :meth:`PredictionGrid.send_thumbnails` (clipviz.app.saliency).
OverlayHandler = Callable[[list[int], str, int], None]


class PredictionGrid(RowsOfSelection, t.HasTraits):
    """Zero-shot predictions on an image grid.

    Parameters
    ----------
    page_size : int
        Cells per page; only one page is in the browser at a time.

    Notes
    -----
    Feed it with :meth:`set_images` (ids and thumbnails, once) and :meth:`set_predictions`
    (after every prompt change). User actions arrive in the traits: ``selection`` (image ids;
    click selects, shift/ctrl-click adds), ``page``, ``sort_by``, ``sort_prompt``,
    ``mistakes_only`` and ``selected_only``. Setting ``selection`` from Python highlights
    those cells without any message coming back.
    """

    selection = t.List()  # of str; checked in _check_selection (List(Unicode()) is slow at 10k+)
    page = t.Int(0)
    page_size = t.Int(48)
    sort_by = t.Enum(SORTS, default_value="input")
    sort_prompt = t.Unicode("")
    mistakes_only = t.Bool(False)
    selected_only = t.Bool(False)
    #: "" (plain thumbnails), "top-1" or a classname: show where that prompt matches
    where = t.Unicode("")

    def __init__(self, *, page_size: int = 48, **kwargs: Any) -> None:
        super().__init__(page_size=page_size, **kwargs)
        self._widget: Any = None
        self.ids: list[str] = []
        self._index = IdRows(self.ids)  # id -> row look-up (its dict made on the first look-up)
        self._rows = np.zeros(0, np.int64)  # row numbers of ``selection``
        self._thumb_source: ThumbnailSource | None = None
        self.thumb_mime = "image/webp"
        self.classnames: list[str] = []
        self._topk_idx = np.zeros((0, 0), np.int64)
        self._topk_probs = np.zeros((0, 0), np.float32)
        self._similarity: np.ndarray | None = None
        self._labels: Codes | None = None  # true labels as (codes, names)
        self._labels_src: Any = None  # the labels object last given (identity cache)
        self._correct: np.ndarray | None = None
        self._judged: np.ndarray | None = None  # true label is one of the classnames
        self._results: tuple[np.ndarray, np.ndarray, str] | None = None
        self._order = np.zeros(0, np.int64)
        self.observe(self._on_view_change, names=["sort_by", "sort_prompt", "mistakes_only"])
        self.observe(self._on_view_change, names=["selected_only", "page_size"])
        self.observe(self._on_page, names="page")
        self.observe(self._on_selection, names="selection")
        self.overlay_handler: OverlayHandler | None = None
        self.observe(lambda _change: self.reload_thumbnails(), names="where")

    # ----------------------------------------------------------------- data in
    def set_images(
        self,
        ids: Sequence[str],
        thumbnails: Sequence[bytes] | ThumbnailSource | None = None,
        *,
        mime: str = "image/webp",
    ) -> None:
        """Set the images: unique ids and, optionally, their encoded thumbnails.

        Parameters
        ----------
        ids : sequence of str
            Unique image ids, in input order.
        thumbnails : sequence of bytes or callable, optional
            One encoded image per id, or a function ``indices -> list of bytes`` called for
            the thumbnails of the page shown (e.g. ``ThumbnailStore.page``: made lazily).
        mime : str
            Their MIME type, e.g. "image/webp" or "image/jpeg".
        """
        ids = [str(i) for i in ids]
        if len(set(ids)) != len(ids):
            raise ValueError("image ids must be unique; found duplicates in the ids given")
        if thumbnails is not None and not callable(thumbnails):
            if len(thumbnails) != len(ids):
                raise ValueError(f"got {len(thumbnails)} thumbnails for {len(ids)} image ids")
            listed = list(thumbnails)
            thumbnails = lambda indices: [listed[i] for i in indices]  # noqa: E731
        self.ids = ids
        self._index = IdRows(ids)
        self._rows = self._rows_of(list(self.selection))
        self._thumb_source, self.thumb_mime = thumbnails, mime
        self._topk_idx = np.zeros((len(ids), 0), np.int64)
        self._topk_probs = np.zeros((len(ids), 0), np.float32)
        self._similarity = self._labels = self._correct = self._results = None
        self._labels_src = None
        if self._widget is not None:
            with self._widget.hold_sync():
                self._widget.thumb_mime = mime
                self._widget.images_version += 1  # the page drops its thumbnails and asks again
        self._refresh()

    def thumbnail_messages(self, indices: Sequence[int]) -> list[tuple[dict[str, Any], bytes]]:
        """The reply to a page's request for thumbnails: (message, buffer) pairs.

        Each buffer joins the thumbnails of ``message["indices"]``; ``message["offsets"]``
        (plain ints, so no 4 GiB overflow) delimit them. Replies are split so that no message
        carries more than ``MAX_MESSAGE_BYTES`` (a single thumbnail larger than that is left out).
        """
        n = len(self.ids)
        wanted = [int(i) for i in list(indices)[:MAX_REQUEST] if 0 <= int(i) < n]
        if self._thumb_source is None or not wanted:
            return []
        return self._pack(wanted, self._thumb_source(wanted))

    def reload_thumbnails(self) -> None:
        """Make the page drop its thumbnails and ask again (overlays on, off or changed)."""
        if self._widget is not None:
            self._widget.images_version += 1

    def send_thumbnails(self, indices: Sequence[int], blobs: Sequence[bytes], version: int) -> bool:
        """Send these images' bytes to the page now; False (nothing sent) when ``version`` is
        stale, i.e. the thumbnails were reloaded since they were asked for."""
        w = self._widget
        if w is None or version != w.images_version:
            return False
        for message, buffer in self._pack([int(i) for i in indices], blobs):
            w.send(message, buffers=[buffer])
        return True

    def _pack(
        self, wanted: list[int], thumbs: Sequence[bytes]
    ) -> list[tuple[dict[str, Any], bytes]]:
        version = self._widget.images_version if self._widget is not None else 0
        out: list[tuple[dict[str, Any], bytes]] = []
        chunk: list[tuple[int, bytes]] = []
        size = 0
        for i, data in zip(wanted, thumbs, strict=True):
            if len(data) > MAX_MESSAGE_BYTES:
                continue
            if size + len(data) > MAX_MESSAGE_BYTES:
                out.append(_thumb_message(chunk, self.thumb_mime, version))
                chunk, size = [], 0
            chunk.append((i, bytes(data)))
            size += len(data)
        if chunk:
            out.append(_thumb_message(chunk, self.thumb_mime, version))
        return out

    def set_predictions(
        self,
        classnames: Sequence[str],
        topk_indices: np.ndarray,
        topk_probs: np.ndarray,
        *,
        labels: Sequence[str] | None = None,
        similarity: np.ndarray | None = None,
    ) -> None:
        """Set the zero-shot predictions for every image (in the order of ``set_images``).

        Parameters
        ----------
        classnames : sequence of str
            The class names (or free prompts) the indices refer to.
        topk_indices : numpy.ndarray
            (N, k) class indices, best first.
        topk_probs : numpy.ndarray
            (N, k) probabilities matching ``topk_indices``.
        labels : sequence of str or (codes, names), optional
            True labels (strings, or (N,) integer codes into names); when given, cells are
            marked correct or wrong and the mistakes filter works.
        similarity : numpy.ndarray, optional
            (N, C) cosine similarities, for sorting by similarity to one prompt.
        """
        n = len(self.ids)
        topk_indices = np.asarray(topk_indices)
        topk_probs = np.asarray(topk_probs, dtype=np.float32)
        if topk_indices.ndim != 2 or topk_indices.shape[0] != n:
            raise ValueError(f"topk_indices must be (N={n}, k), got shape {topk_indices.shape}")
        if topk_probs.shape != topk_indices.shape:
            raise ValueError(
                f"topk_probs shape {topk_probs.shape} differs from topk_indices {topk_indices.shape}"
            )
        if labels is not None and not isinstance(labels, tuple) and len(labels) != n:
            raise ValueError(f"got {len(labels)} labels for {n} images")
        if similarity is not None and np.shape(similarity) != (n, len(classnames)):
            raise ValueError(
                f"similarity must be (N={n}, C={len(classnames)}), got {np.shape(similarity)}"
            )
        self.classnames = [str(c) for c in classnames]
        self._topk_idx, self._topk_probs, self._similarity = topk_indices, topk_probs, similarity
        self._set_labels(labels)
        self._correct = self._judged = None
        if self._labels is not None and topk_indices.shape[1] > 0:
            # Compare integer codes, not N strings: labels are factorised once per label list.
            inverse, unique = self._labels
            index = {c: i for i, c in enumerate(self.classnames)}
            as_class = np.array([index.get(u, -1) for u in unique], dtype=np.int64)
            self._correct = topk_indices[:, 0] == as_class[inverse]
            # A label no prompt names cannot be predicted: neither right nor wrong.
            self._judged = as_class[inverse] >= 0
        if self.sort_prompt not in self.classnames:
            self.sort_prompt = self.classnames[0] if self.classnames else ""
        if self.where:  # new predictions: new top-1 prompts to show
            self.where = self.where if self.where in ("top-1", *self.classnames) else "top-1"
            self.reload_thumbnails()
        self._refresh()

    def _set_labels(self, labels: Sequence[str] | Codes | None) -> None:
        if labels is None:
            self._labels, self._labels_src = None, None
            return
        if labels is self._labels_src:  # the same labels again (every prompt edit): reuse
            return
        self._labels = as_codes(labels, "labels", len(self.ids))
        self._labels_src = labels

    @property
    def selected_rows(self) -> np.ndarray:
        """Row numbers (into the ids of :meth:`set_images`) of ``selection``, in its order."""
        return self._rows

    def _rows_of(self, ids: Sequence[str]) -> np.ndarray:
        """Row numbers of ``ids``; -1 for an unknown id."""
        if not len(ids):
            return np.zeros(0, np.int64)
        return self._index(ids)

    def show_results(self, ids: Sequence[str], scores: Sequence[float], title: str) -> None:
        """Show only these images, in this order (e.g. search hits), until cleared.

        Parameters
        ----------
        ids : sequence of str
            Image ids to show, best first.
        scores : sequence of float
            One score per id, shown in the cell.
        title : str
            What the results are, e.g. the search text (shown as text, never as HTML).
        """
        order = self._rows_of(ids)
        if (order < 0).any():
            unknown = [i for i, r in zip(ids, order, strict=True) if r < 0]
            raise ValueError(f"unknown image ids in results: {unknown[:5]}")
        self._results = (order, np.asarray(scores, dtype=np.float32), str(title))
        self._refresh(first_page=True)

    def clear_results(self) -> None:
        """Go back to showing every image."""
        self._results = None
        self._refresh()

    # ---------------------------------------------------------------- derived
    @property
    def order(self) -> np.ndarray:
        """Indices of the images shown, in display order, after filters and sorting."""
        return self._order

    @property
    def n_pages(self) -> int:
        """Number of pages for the images currently shown (at least 1)."""
        return max(1, -(-len(self._order) // max(1, self.page_size)))

    def page_items(self) -> list[dict[str, Any]]:
        """The cells of the current page as plain dicts (what the browser receives)."""
        start = self.page * self.page_size
        return [
            self._item(int(i), pos) for pos, i in enumerate(self._order[start:][: self.page_size])
        ]

    def _item(self, i: int, pos: int) -> dict[str, Any]:
        k = self._topk_idx.shape[1]
        topk = [
            [self.classnames[int(self._topk_idx[i, j])], round(float(self._topk_probs[i, j]), 4)]
            for j in range(k)
        ]
        item: dict[str, Any] = {"i": i, "id": self.ids[i], "topk": topk}
        if self._labels is not None:
            item["true"] = self._labels[1][int(self._labels[0][i])]
            judged = self._correct is not None and self._judged is not None and self._judged[i]
            item["correct"] = bool(self._correct[i]) if judged else None
        if self._results is not None:
            item["score"] = round(float(self._results[1][self.page * self.page_size + pos]), 4)
        elif self.sort_by == "similarity" and self._similarity is not None:
            c = self.classnames.index(self.sort_prompt)
            item["score"] = round(float(self._similarity[i, c]), 4)
        return item

    def _compute_order(self) -> np.ndarray:
        if self._results is not None:
            return self._results[0]
        idx = np.arange(len(self.ids))
        if self.mistakes_only and self._correct is not None:
            idx = idx[~self._correct & self._judged]
        if self.selected_only:
            idx = idx[np.isin(idx, self._rows[self._rows >= 0])]
        if self.sort_by.startswith("confidence") and self._topk_probs.shape[1] > 0:
            conf = self._topk_probs[idx, 0]
            idx = idx[
                np.argsort(conf if self.sort_by == "confidence_asc" else -conf, kind="stable")
            ]
        elif self.sort_by == "similarity" and self._similarity is not None and self.sort_prompt:
            c = self.classnames.index(self.sort_prompt)
            idx = idx[np.argsort(-self._similarity[idx, c], kind="stable")]
        return idx

    # -------------------------------------------------------------- reactions
    def _refresh(self, *, first_page: bool = False) -> None:
        self._order = self._compute_order()
        page = 0 if first_page else min(self.page, self.n_pages - 1)
        if page != self.page:
            self.page = page  # _on_page pushes the page
        else:
            self._push()

    def _on_view_change(self, change: dict[str, Any]) -> None:
        if change["name"] in ("sort_by", "sort_prompt") and self._results is not None:
            self._results = None  # choosing a sort leaves the search results
        self._refresh(first_page=True)

    @t.validate("page")
    def _clamp_page(self, proposal: dict[str, Any]) -> int:
        return min(max(0, int(proposal["value"])), self.n_pages - 1)

    def _on_page(self, change: dict[str, Any]) -> None:
        self._push()

    @t.validate("selection")
    def _check_selection(self, proposal: dict[str, Any]) -> list[str]:
        return check_ids(proposal["value"])

    def _on_selection(self, change: dict[str, Any]) -> None:
        self._rows = self._rows_of_selection(change["new"])
        if self.selected_only:
            self._refresh()

    def _push(self) -> None:
        w = self._widget
        if w is None:
            return
        with w.hold_sync():
            w.classnames = list(self.classnames)
            w.has_labels = self._labels is not None
            w.n_total = len(self.ids)
            w.n_shown = len(self._order)
            w.n_pages = self.n_pages
            w.results_title = self._results[2] if self._results is not None else ""
            w.has_where = self.overlay_handler is not None
            w.items = self.page_items()

    # ----------------------------------------------------------------- widget
    @property
    def widget(self) -> Any:
        """The anywidget that draws the grid (built on first access)."""
        if self._widget is None:
            self._widget = build_widget(self)
            self._push()
        return self._widget

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def _thumb_message(
    chunk: list[tuple[int, bytes]], mime: str, version: int
) -> tuple[dict[str, Any], bytes]:
    offsets = [0]
    for _, data in chunk:
        offsets.append(offsets[-1] + len(data))
    message = {
        "type": "thumbs",
        "indices": [i for i, _ in chunk],
        "offsets": offsets,
        "mime": mime,
        "version": version,
    }
    return message, b"".join(data for _, data in chunk)
