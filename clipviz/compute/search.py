"""Nearest-neighbour search by cosine similarity (text -> images, image -> images)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clipviz.compute.topk import top_k_columns
from clipviz.compute.types import ImageEmbeddings, PromptEmbeddings
from clipviz.compute.zeroshot import _vectors


def nearest(
    vectors: ImageEmbeddings | PromptEmbeddings | np.ndarray,
    query: np.ndarray,
    k: int = 10,
    *,
    exclude: int | Sequence[int] | np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The k rows of ``vectors`` most similar (cosine) to each query, best first.

    Parameters
    ----------
    vectors : ImageEmbeddings, PromptEmbeddings or np.ndarray
        The (N, D) collection to search (a raw array is L2-normalised here).
    query : np.ndarray
        One (D,) query or (M, D) queries; normalised here.
    k : int
        Results per query; clipped to N (or N - 1 with ``exclude``).
    exclude : int or sequence of int, optional
        Row index to leave out of each query's results, e.g. the query image itself for
        image -> image search: ``nearest(emb, emb.vectors[i], exclude=i)``. With M queries
        pass M indices, one per query.

    Returns
    -------
    indices : np.ndarray
        (k,) int64 for a single query, (M, k) for several.
    scores : np.ndarray
        Cosine similarities, same shape, float32, descending.

    Raises
    ------
    ValueError
        Dimension mismatch, k < 1, an empty collection, or bad ``exclude`` indices.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer (results per query), got {k!r}.")
    base = _vectors(vectors, "collection")
    q = np.asarray(query, dtype=np.float32)
    single = q.ndim == 1
    q = _vectors(q[None, :] if single else q, "query")
    if base.shape[0] == 0:
        raise ValueError("nearest() got an empty collection to search.")
    if q.shape[1] != base.shape[1]:
        raise ValueError(
            f"Query dimension {q.shape[1]} does not match the collection's {base.shape[1]}; "
            "embed the query with the same model."
        )
    scores = q @ base.T
    n = base.shape[0]
    if exclude is not None:
        rows = _exclude_rows(exclude, q.shape[0], n)
        scores[np.arange(q.shape[0]), rows] = -np.inf
        n -= 1
    k = min(int(k), n)
    if k == 0:
        idx = np.zeros((q.shape[0], 0), np.int64)
        top = np.zeros((q.shape[0], 0), np.float32)
    else:
        idx = top_k_columns(scores, k)
        top = np.take_along_axis(scores, idx, axis=1)
        order = np.argsort(-top, axis=1, kind="stable")
        idx = np.take_along_axis(idx, order, axis=1).astype(np.int64, copy=False)
        top = np.take_along_axis(top, order, axis=1)
    return (idx[0], top[0]) if single else (idx, top)


def _exclude_rows(exclude: int | Sequence[int] | np.ndarray, m: int, n: int) -> np.ndarray:
    rows = np.atleast_1d(np.asarray(exclude))
    if rows.dtype.kind not in "iu" or rows.ndim != 1 or rows.size != m:
        raise ValueError(
            f"exclude must be one integer row index per query ({m} queries), got {exclude!r}."
        )
    if rows.min() < -n or rows.max() >= n:
        raise ValueError(f"exclude index out of range for a collection of {n} rows: {exclude!r}.")
    return rows
