"""How much each image's neighbourhood changes between two embedding spaces (numpy only).

For every image, the k nearest neighbours (cosine, itself excluded) are found in model A's
space and in model B's; the Jaccard overlap of the two sets says whether B sees the image among
the same company as A (1.0) or among strangers (0.0). This is the Embedding Comparator's
measure (Boggust et al., IUI 2022).

The exact search is a blocked matmul: one block of rows at a time against all vectors, so
memory stays at ``block x N`` floats instead of ``N x N``. Taking the top k of a 100k-wide row
with ``argpartition`` costs three times the matmul itself, so it is done in two stages (the k
best chunk maxima, then the k best among those chunks' values), which is exact and ~10x faster.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clipviz.compute.types import ImageEmbeddings

_BLOCK_BYTES = 256 * 2**20  # similarity block kept in memory at once (float32)
_METHODS = ("exact", "ivf")


def neighbour_overlap(
    emb_a: ImageEmbeddings | np.ndarray,
    emb_b: ImageEmbeddings | np.ndarray,
    k: int = 10,
    *,
    method: str = "exact",
    nprobe: int = 16,
) -> np.ndarray:
    """Jaccard overlap of each image's k nearest neighbours in two embedding spaces.

    Parameters
    ----------
    emb_a, emb_b : ImageEmbeddings or np.ndarray
        The same images embedded by two models (dimensions may differ). ImageEmbeddings are
        matched by image id; raw (N, D) arrays are taken as the same images row by row.
    k : int
        Neighbours per image (cosine similarity, the image itself excluded).
    method : {"exact", "ivf"}
        ``"exact"``: blocked numpy matmul. ``"ivf"``: approximate, with a faiss inverted-file
        index (``pip install "clipviz[distributed]"``, i.e. faiss-cpu); faster on large sets.
    nprobe : int
        Lists visited per query with ``method="ivf"`` (more = closer to exact).

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
        lengths, or an unknown method.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer (neighbours per image), got {k!r}.")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}.")
    a, b, rows_a = _matched(emb_a, emb_b)
    if len(rows_a) < k + 1:
        raise ValueError(
            f"neighbour_overlap needs at least k + 1 = {k + 1} images present in both "
            f"embeddings, got {len(rows_a)}; lower k or pass more images."
        )
    search = knn if method == "exact" else _knn_ivf
    opts: dict[str, Any] = {} if method == "exact" else {"nprobe": int(nprobe)}
    overlap = jaccard(search(a, k, **opts), search(b, k, **opts))
    out = np.full(len(_ids_or_rows(emb_a)), np.nan, dtype=np.float32)
    out[rows_a] = overlap
    return out


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


def top_k_columns(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k largest values per row (unordered), exact.

    Each row is cut into chunks; the k largest values lie in at most k chunks, namely those
    with the k largest maxima, so only those chunks' values are partitioned.
    """
    b, n = scores.shape
    chunk = max(1, int(np.sqrt(n / k)))
    if n <= 4 * k * chunk:  # short rows: one argpartition is cheaper than two stages
        return np.argpartition(-scores, k - 1, axis=1)[:, :k]
    n_chunks = -(-n // chunk)
    if n_chunks * chunk != n:
        pad = np.full((b, n_chunks * chunk - n), -np.inf, dtype=scores.dtype)
        scores = np.concatenate([scores, pad], axis=1)
    chunks = scores.reshape(b, n_chunks, chunk)
    best = np.argpartition(-chunks.max(axis=2), k - 1, axis=1)[:, :k]  # (b, k) chunk numbers
    candidates = chunks[np.arange(b)[:, None], best].reshape(b, k * chunk)
    pick = np.argpartition(-candidates, k - 1, axis=1)[:, :k]
    return best[np.arange(b)[:, None], pick // chunk] * chunk + pick % chunk


def jaccard(nb_a: np.ndarray, nb_b: np.ndarray) -> np.ndarray:
    """Row-wise Jaccard overlap of two (N, k) neighbour index arrays (float32)."""
    k = nb_a.shape[1]
    shared = np.zeros(len(nb_a), dtype=np.int64)
    for j in range(k):  # k passes over (N, k) instead of one (N, k, k) temporary
        shared += (nb_a == nb_b[:, j : j + 1]).any(axis=1)
    return (shared / (2 * k - shared)).astype(np.float32)


def _knn_ivf(vectors: np.ndarray, k: int, *, nprobe: int) -> np.ndarray:
    try:
        import faiss
    except ImportError as err:
        raise ImportError(
            'method="ivf" needs faiss: pip install "clipviz[distributed]" (or pip install faiss-cpu)'
        ) from err
    x = np.ascontiguousarray(_normalised(vectors))
    n, d = x.shape
    n_lists = max(1, min(int(4 * np.sqrt(n)), n // 39))  # faiss wants >= 39 points per list
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, n_lists, faiss.METRIC_INNER_PRODUCT)
    index.train(x[:: max(1, n // (64 * n_lists))])
    index.add(x)
    index.nprobe = min(nprobe, n_lists)
    _, found = index.search(x, k + 1)
    return _drop_self(found, k)


def _drop_self(found: np.ndarray, k: int) -> np.ndarray:
    """From (N, k+1) results that usually include the row itself, keep k others."""
    rows = np.arange(len(found))[:, None]
    is_self = (found == rows) | (found < 0)
    # stable sort puts the non-self hits first, in rank order
    order = np.argsort(is_self, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(found, order, axis=1).astype(np.int64)


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
