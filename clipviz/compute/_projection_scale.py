"""Projections of many points: fit on a sample, place the rest by their nearest fitted points.

A UMAP fit grows faster than linearly with the number of points (``benchmarks/
projection_speed.py``), so above ``max_fit_points`` a seeded sample of the images (plus every
prompt) is fitted and every other image is put at the similarity-weighted mean position of its
nearest sampled images. The UMAP fit itself is a function argument (``fit_xy``): the workbench
runs it in a child process it can kill; :func:`clipviz.compute.project` runs it in-process.
Placement goes in chunks and checks ``cancelled`` between them, so it can be abandoned.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from clipviz.compute.topk import top_k_columns

DEFAULT_MAX_FIT_POINTS = 20_000
# Each placed point is compared with this many fitted images (a subset of the sample when it
# is larger): 1M x 4,096 x 128 is ~0.5 TFLOP, tens of seconds on two cores, in the background.
_LANDMARKS = 4_096
_CHUNK = 2_048  # per chunk: 2k x 4,096 float32 sims (32 MB) and a partitioned copy


class Cancelled(Exception):
    """Raised inside a placement when ``cancelled()`` turned true: the result is not wanted."""


def sample_indices(n: int, max_points: int | None, seed: int | None) -> np.ndarray:
    """Sorted indices of the images to fit: all of them, or a seeded sample of ``max_points``."""
    if max_points is None or n <= max_points:
        return np.arange(n)
    rng = np.random.default_rng(0 if seed is None else seed)
    return np.sort(rng.choice(n, size=int(max_points), replace=False))


def place_by_neighbours(
    vectors: np.ndarray,
    base: np.ndarray,
    base_xy: np.ndarray,
    k: int = 15,
    *,
    rows: np.ndarray | None = None,
    cancelled: Callable[[], bool] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """(M, 2) positions: each vector at the weighted mean of its ``k`` most similar base points.

    Parameters
    ----------
    vectors : np.ndarray
        (M, D) unit vectors to place.
    base, base_xy : np.ndarray
        (B, D) unit vectors already in the map and their (B, 2) positions.
    k : int
        Neighbours averaged; an exact copy of a base point lands on it.
    rows : np.ndarray, optional
        Place only ``vectors[rows]`` (read chunk by chunk: no (M, D) copy is made).
    cancelled : callable, optional
        Checked between chunks; when it returns True, :class:`Cancelled` is raised.
    progress : callable, optional
        ``progress(done, total)`` after each chunk.
    """
    k = max(1, min(int(k), len(base)))
    total = len(vectors) if rows is None else len(rows)
    out = np.empty((total, 2), np.float32)
    base_t = np.ascontiguousarray(base.T, dtype=np.float32)
    for start in range(0, total, _CHUNK):
        if cancelled is not None and cancelled():
            raise Cancelled
        part = slice(start, start + _CHUNK)
        chunk = np.asarray(vectors[part] if rows is None else vectors[rows[part]], np.float32)
        sim = chunk @ base_t
        idx = top_k_columns(sim, k)
        dist = np.clip(1.0 - np.take_along_axis(sim, idx, axis=1), 0.0, None)
        w = 1.0 / (dist + 1e-6)
        w /= w.sum(axis=1, keepdims=True)
        out[start : start + len(chunk)] = np.einsum("mk,mkj->mj", w, base_xy[idx])
        if progress is not None:
            progress(min(start + _CHUNK, total), total)
    return out


def landmarks(n_fitted: int, seed: int | None) -> np.ndarray:
    """Indices into the fitted sample used as neighbours for placing the other images."""
    return sample_indices(n_fitted, _LANDMARKS, seed)


def fit_on_sample(
    img: np.ndarray,
    txt: np.ndarray,
    fit_xy: Callable[[np.ndarray], np.ndarray],
    *,
    max_fit_points: int | None,
    seed: int | None,
    n_neighbors: int = 15,
    cancelled: Callable[[], bool] | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit a layout on a sample of ``img`` plus all of ``txt``; place the other images.

    Returns
    -------
    tuple
        ``(xy, fitted_vectors, fitted_xy)``: (N + C, 2) positions of every image then every
        prompt, and the vectors and positions the layout was fitted on (for later placement).
    """
    n = len(img)
    chosen = sample_indices(n, max_fit_points, seed)
    fitted = np.vstack([img[chosen], txt]) if len(chosen) < n else np.vstack([img, txt])
    if progress is not None:
        progress(f"fitting {len(chosen):,} of {n:,} images")
    fitted_xy = np.asarray(fit_xy(fitted), dtype=np.float32)
    if cancelled is not None and cancelled():
        raise Cancelled
    if len(chosen) == n:
        return fitted_xy, fitted, fitted_xy
    xy = np.empty((n + len(txt), 2), np.float32)
    xy[chosen] = fitted_xy[: len(chosen)]
    xy[n:] = fitted_xy[len(chosen) :]
    rest = np.setdiff1d(np.arange(n), chosen, assume_unique=True)
    marks = landmarks(len(chosen), seed)

    def report(done: int, total: int) -> None:
        if progress is not None:
            progress(f"placing the other images {100 * done // total}%")

    xy[rest] = place_by_neighbours(
        img,
        fitted[marks],
        fitted_xy[marks],
        n_neighbors,
        rows=rest,
        cancelled=cancelled,
        progress=report,
    )
    return xy, fitted, fitted_xy
