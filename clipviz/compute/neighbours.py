"""How much each image's neighbourhood changes between two embedding spaces (numpy only).

For every image, the k nearest neighbours (cosine, itself excluded) are found in model A's
space and in model B's; the Jaccard overlap of the two sets says whether B sees the image among
the same company as A (1.0) or among strangers (0.0). This is the Embedding Comparator's
measure (Boggust et al., IUI 2022).

Exact search is a blocked matmul (2 N^2 D flops per model: at 100k x 512 over a minute on two
cores). From ``EXACT_BELOW`` images the default ``method="auto"`` searches approximately with
:func:`clipviz.compute.ivf_knn.ivf_knn` and checks itself: recall@k is measured against exact
search on ``_CHECK_ROWS`` random images, and ``nprobe`` grows until it reaches ``MIN_RECALL``
(exact search once a try would cost a tenth of it: hard data never costs much more than exact).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clipviz.compute.ivf_knn import ivf_knn
from clipviz.compute.topk import top_k_columns
from clipviz.compute.types import ImageEmbeddings

__all__ = ["EXACT_BELOW", "MIN_RECALL", "jaccard", "knn", "neighbour_overlap", "top_k_columns"]

#: Below this many shared images ``method="auto"`` searches exactly: it is faster there
#: (crossover ~1,500 rows at 512-d, ``benchmarks/compare_speed.py --parts 4``), and below
#: 4,000 a try of the recall-checked IVF would cost over a tenth of exact search anyway.
EXACT_BELOW = 4_000
#: recall@k that ``method="auto"`` must reach on its check sample before it is trusted.
MIN_RECALL = 0.99
_CHECK_ROWS = 256
_BLOCK_BYTES = 256 * 2**20  # similarity block kept in memory at once (float32)
_METHODS = ("auto", "exact", "ivf")


def neighbour_overlap(
    emb_a: ImageEmbeddings | np.ndarray,
    emb_b: ImageEmbeddings | np.ndarray,
    k: int = 10,
    *,
    method: str = "auto",
    nprobe: int = 10,
) -> np.ndarray:
    """Jaccard overlap of each image's k nearest neighbours in two embedding spaces.

    Parameters
    ----------
    emb_a, emb_b : ImageEmbeddings or np.ndarray
        The same images embedded by two models (dimensions may differ). ImageEmbeddings are
        matched by image id; raw (N, D) arrays are taken as the same images row by row.
    k : int
        Neighbours per image (cosine similarity, the image itself excluded).
    method : {"auto", "exact", "ivf"}
        ``"exact"``: blocked matmul. ``"ivf"``: approximate, k-means cells searched in batches
        (numpy only), ``nprobe`` as given. ``"auto"`` (default): exact below ``EXACT_BELOW``
        shared images; above, ``"ivf"`` with ``nprobe`` raised until recall@k against exact
        search on a random sample of images is at least ``MIN_RECALL`` (0.99).
    nprobe : int
        Cells scanned per image's cell with ``"ivf"`` (the first try with ``"auto"``).

    Returns
    -------
    np.ndarray
        (N_a,) float32 in A's order: |N_A(i) ∩ N_B(i)| / |N_A(i) ∪ N_B(i)|. Neighbours are
        searched among the images present in both sets only; an image of A that B lacks gets
        NaN (images only in B are ignored).

    Raises
    ------
    ValueError
        k is not a positive integer, fewer than k + 1 shared images, raw arrays of different
        lengths, an unknown method or nprobe below 1.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer (neighbours per image), got {k!r}.")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}.")
    if isinstance(nprobe, bool) or not isinstance(nprobe, (int, np.integer)) or nprobe < 1:
        raise ValueError(f"nprobe must be a positive integer (cells scanned), got {nprobe!r}.")
    a, b, rows_a = _matched(emb_a, emb_b)
    if len(rows_a) < k + 1:
        raise ValueError(
            f"neighbour_overlap needs at least k + 1 = {k + 1} images present in both "
            f"embeddings, got {len(rows_a)}; lower k or pass more images."
        )
    if method == "auto" and len(rows_a) < EXACT_BELOW:
        method = "exact"
    search = {"exact": knn, "ivf": lambda x, k: ivf_knn(x, k, nprobe=int(nprobe)),
              "auto": lambda x, k: checked_ivf_knn(x, k, nprobe=int(nprobe))[0]}[method]
    overlap = jaccard(search(a, k), search(b, k))
    out = np.full(len(_ids_or_rows(emb_a)), np.nan, dtype=np.float32)
    out[rows_a] = overlap
    return out


def checked_ivf_knn(
    vectors: np.ndarray, k: int, *, nprobe: int = 10, seed: int = 0
) -> tuple[np.ndarray, int]:
    """:func:`ivf_knn` whose recall@k on a random sample of rows is at least ``MIN_RECALL``.

    ``nprobe`` grows 4x until the sample's recall (against exact search of those rows) reaches
    ``MIN_RECALL``; once a try would cost a tenth of exact search, exact :func:`knn` is used.

    Returns
    -------
    tuple
        (N, k) neighbour rows and the nprobe that passed (0: exact search was used).
    """
    n = len(vectors)
    rows = np.sort(np.random.default_rng(seed).choice(n, min(n, _CHECK_ROWS), replace=False))
    truth = exact_rows_knn(vectors, rows, k)
    # a try costs ~2 sqrt(nprobe / n) of exact search (sqrt(nprobe n) cells); all tries
    # together stay under ~20% of it before exact search takes over
    while 2 * np.sqrt(nprobe / n) <= 0.1:
        found = ivf_knn(vectors, k, nprobe=nprobe, seed=seed)
        if recall(found[rows], truth) >= MIN_RECALL:
            return found, nprobe
        nprobe *= 4
    return knn(vectors, k), 0


def exact_rows_knn(vectors: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """Exact (len(rows), k) cosine neighbours of the given rows among all rows (itself out)."""
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1)
    inverse = 1 / np.where(norms == 0, 1, norms)  # a query's own norm does not change its order
    block = max(1, _BLOCK_BYTES // (4 * len(v)))
    out = np.empty((len(rows), k), dtype=np.int64)
    for start in range(0, len(rows), block):
        part = rows[start : start + block]
        sims = (v[part] @ v.T) * inverse
        sims[np.arange(len(part)), part] = -np.inf
        out[start : start + block] = top_k_columns(sims, k)
    return out


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Share of the true neighbours (rows of ``truth``) that ``found`` holds, over all rows."""
    k = truth.shape[1]
    hits = sum(int((found == truth[:, j : j + 1]).any(axis=1).sum()) for j in range(k))
    return hits / truth.size


def knn(vectors: np.ndarray, k: int, *, block: int | None = None) -> np.ndarray:
    """Exact k nearest neighbours of every row among the others, by cosine similarity.

    Parameters
    ----------
    vectors : np.ndarray
        (N, D), normalised here.
    k : int
        Neighbours per row, k < N.
    block : int, optional
        Rows per matmul block (default: as many as fit in 256 MiB of similarities).

    Returns
    -------
    np.ndarray
        (N, k) int64 row indices, in no particular order within a row.
    """
    x = _normalised(vectors)
    n = len(x)
    block = block or max(1, min(n, _BLOCK_BYTES // (4 * n)))
    out = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, block):
        stop = min(n, start + block)
        sims = x[start:stop] @ x.T
        sims[np.arange(stop - start), np.arange(start, stop)] = -np.inf  # not its own neighbour
        out[start:stop] = top_k_columns(sims, k)
    return out


def jaccard(nb_a: np.ndarray, nb_b: np.ndarray) -> np.ndarray:
    """Row-wise Jaccard overlap of two (N, k) neighbour index arrays (float32)."""
    k = nb_a.shape[1]
    shared = np.zeros(len(nb_a), dtype=np.int64)
    for j in range(k):  # k passes over (N, k) instead of one (N, k, k) temporary
        shared += (nb_a == nb_b[:, j : j + 1]).any(axis=1)
    return (shared / (2 * k - shared)).astype(np.float32)


def _matched(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectors of the shared images, in A's order, and their rows in A."""
    va, vb = _as_2d(a, "emb_a"), _as_2d(b, "emb_b")
    if isinstance(a, ImageEmbeddings) and isinstance(b, ImageEmbeddings):
        index_b = {i: n for n, i in enumerate(b.ids)}
        pairs = [(n, index_b[i]) for n, i in enumerate(a.ids) if i in index_b]
        rows_a = np.array([p[0] for p in pairs], dtype=np.int64)
        rows_b = np.array([p[1] for p in pairs], dtype=np.int64)
        return va[rows_a], vb[rows_b], rows_a
    if len(va) != len(vb):
        raise ValueError(
            f"emb_a has {len(va)} rows but emb_b {len(vb)}; raw arrays must hold the same "
            "images in the same order (pass ImageEmbeddings to match them by id)."
        )
    return va, vb, np.arange(len(va))


def _as_2d(x: Any, name: str) -> np.ndarray:
    v = np.asarray(x.vectors if isinstance(x, ImageEmbeddings) else x, dtype=np.float32)
    if v.ndim != 2:
        raise ValueError(f"{name} must be ImageEmbeddings or an (N, D) array, got shape {v.shape}.")
    return v


def _ids_or_rows(x: Any) -> list[Any]:
    return list(x.ids) if isinstance(x, ImageEmbeddings) else list(range(len(x)))


def _normalised(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norms == 0, 1, norms)
