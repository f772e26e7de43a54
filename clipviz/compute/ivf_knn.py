"""Approximate k nearest neighbours of every row among all rows (numpy only, no index).

An all-pairs search over N rows is N queries against the same N rows, so an inverted file can
be searched as a batch: rows are grouped into k-means cells, and each cell's rows are scored,
with one BLAS matrix product, against the rows of the ``nprobe`` cells whose centroids lie
nearest to that cell's centroid (its own cell first). A per-query index (faiss IVFFlat) scans
as much but one query at a time, outside BLAS and out of cache; the one used before trained
k-means on every row (25 iterations over 1,265 cells: a third of exact search's flops at 100k),
here 5 iterations on 8 rows per cell. The faiss path this replaced took 1,259 s
for 100k x 512 at a 1-min load of 15-25, this one 65-79 s at 7-12 (both on 2 loaded cores).
Cost per model: the cell assignment (N x cells x D) plus the scan (N x nprobe x N / cells x D);
``cells = sqrt(nprobe x N)`` balances the two.

Work is split over threads (numpy and BLAS release the GIL) with BLAS itself held to one thread,
so BLAS's and OpenMP's spinning threads never outnumber the cores.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

from clipviz.compute.topk import top_k_columns

_T = TypeVar("_T")
_TRAIN_PER_CELL = 8  # k-means sample points per cell: cells only need to be compact, not optimal
_TRAIN_ITERATIONS = 5
_ROWS_PER_TASK = 4096  # rows per assignment task
_SIMS_BYTES = 64 * 2**20  # similarities of one block of a cell's rows (float32)


def ivf_knn(
    vectors: np.ndarray,
    k: int,
    *,
    nprobe: int = 10,
    cells: int | None = None,
    seed: int = 0,
    workers: int | None = None,
) -> np.ndarray:
    """Approximate k nearest neighbours (cosine) of every row among the others.

    Parameters
    ----------
    vectors : np.ndarray
        (N, D) vectors, any norm (normalised here).
    k : int
        Neighbours per row, k < N.
    nprobe : int
        Cells scanned per row's cell (more = closer to exact; all cells = exact).
    cells : int, optional
        Number of k-means cells; default ``sqrt(nprobe * N)``.
    seed : int
        Seed of the k-means sample and initial centroids (the result is deterministic).
    workers : int, optional
        Threads; default the number of CPUs.

    Returns
    -------
    np.ndarray
        (N, k) int64 row indices, in no particular order within a row.
    """
    v = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(v)
    n_cells = int(cells or np.sqrt(max(1, nprobe) * n))
    n_cells = max(1, min(n_cells, n // max(1, 2 * k)))
    workers = workers or os.cpu_count() or 1
    from threadpoolctl import threadpool_limits  # scikit-learn's dependency, no torch

    with threadpool_limits(limits=1, user_api="blas"):
        centroids = spherical_kmeans(v, n_cells, seed=seed, workers=workers)
        cell = nearest_centroid(v, centroids, workers)  # norms do not change the argmax
        order = np.argsort(cell, kind="stable")
        xs = v[order]  # a copy: normalised in place
        xs /= np.maximum(np.linalg.norm(xs, axis=1, keepdims=True), 1e-30)
        starts = np.searchsorted(cell[order], np.arange(n_cells + 1))
        probes = _probe_lists(centroids, starts, nprobe, k)
        out = np.empty((n, k), dtype=np.int64)

        def scan(g: int) -> None:
            lo, hi = starts[g], starts[g + 1]
            if hi == lo:
                return
            cand = np.concatenate([np.arange(starts[p], starts[p + 1]) for p in probes[g]])
            xc = xs[cand]
            step = max(1, _SIMS_BYTES // (4 * len(cand)))  # a crowded cell goes in blocks
            for a in range(lo, hi, step):
                b = min(hi, a + step)
                sims = xs[a:b] @ xc.T
                # own cell comes first in cand: row r of the cell meets itself at column r
                sims[np.arange(b - a), np.arange(a - lo, b - lo)] = -np.inf
                out[order[a:b]] = order[cand[top_k_columns(sims, k)]]

        _parallel(scan, range(n_cells), workers)
    return out


def spherical_kmeans(
    v: np.ndarray,
    n_cells: int,
    *,
    seed: int = 0,
    workers: int = 1,
    per_cell: int = _TRAIN_PER_CELL,
) -> np.ndarray:
    """(n_cells, D) unit centroids from a few Lloyd steps on a sample (cosine k-means)."""
    rng = np.random.default_rng(seed)
    n = len(v)
    sample = _unit(v[np.sort(rng.choice(n, min(n, n_cells * per_cell), replace=False))])
    centroids = sample[rng.choice(len(sample), n_cells, replace=False)]
    for _ in range(_TRAIN_ITERATIONS):
        cell = nearest_centroid(sample, centroids, workers)
        counts = np.bincount(cell, minlength=n_cells)
        order = np.argsort(cell, kind="stable")
        filled = counts > 0
        sums = np.empty_like(centroids)
        offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
        sums[filled] = np.add.reduceat(sample[order], offsets[filled], axis=0)
        # an empty cell restarts at a random sample point
        sums[~filled] = sample[rng.choice(len(sample), int((~filled).sum()), replace=False)]
        centroids = _unit(sums)
    return centroids


def nearest_centroid(v: np.ndarray, centroids: np.ndarray, workers: int = 1) -> np.ndarray:
    """(N,) index of each row's most similar centroid (inner product), in row blocks."""
    out = np.empty(len(v), dtype=np.int64)

    def block(start: int) -> None:
        out[start : start + _ROWS_PER_TASK] = np.argmax(
            v[start : start + _ROWS_PER_TASK] @ centroids.T, axis=1
        )

    _parallel(block, range(0, len(v), _ROWS_PER_TASK), workers)
    return out


def _probe_lists(
    centroids: np.ndarray, starts: np.ndarray, nprobe: int, k: int
) -> list[np.ndarray]:
    """Per cell: its own cell, then the nearest other cells, until nprobe cells and > k rows."""
    sizes = np.diff(starts)
    near = np.argsort(-(centroids @ centroids.T), axis=1, kind="stable")
    lists = []
    for g, row in enumerate(near):
        row = np.concatenate([[g], row[row != g]])
        enough = np.searchsorted(np.cumsum(sizes[row]), k + 1)  # the row itself is no neighbour
        lists.append(row[: max(nprobe, int(enough) + 1)])
    return lists


def _parallel(fn: Callable[[_T], None], items: Sequence[_T], workers: int) -> None:
    if workers <= 1:
        for item in items:
            fn(item)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(fn, items):  # re-raises the first error
            pass


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norms == 0, 1, norms)
