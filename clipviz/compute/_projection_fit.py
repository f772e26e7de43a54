"""The two layouts a joint map is made with, and the modality centering before them.

PCA in numpy (top eigenvectors of the covariance, sklearn's sign rule), seeded UMAP (umap-learn,
imported lazily), and each modality's mean removed then renormalised. ``projection.py`` adds the
cache, the sample fit and ``Projection.transform`` around them.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from clipviz.compute import _projection_scale as scale

__all__ = ["PCA_MAX_ROWS", "center_each", "pca_axes", "umap_layout", "unit_rows"]

PCA_MAX_ROWS = 20_000


def pca_axes(img: np.ndarray, txt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top-2 principal axes: (mean (D,), components (2, D)), sign-stable.

    Exact up to ``PCA_MAX_ROWS`` images; above, the axes come from a seeded sample of that
    many images plus every prompt (random rows give the axes of the whole to ~1e-2; the
    full covariance took 0.5 s at 1M x 128 alone and 8 s at 100k on a loaded 2-core machine).
    The axes are the top eigenvectors of the D x D covariance (what sklearn's "covariance_eigh"
    solver computes, with its sign rule: each axis's largest entry positive), in numpy: importing
    sklearn for it cost 1-2 s on a quiet machine and up to a minute under load.
    """
    rows = scale.sample_indices(len(img), PCA_MAX_ROWS, 0)
    x = np.vstack([img[rows] if len(rows) < len(img) else img, txt]).astype(np.float64)
    mean = x.mean(axis=0)
    x -= mean
    n_comp = min(2, *x.shape)
    _, vectors = np.linalg.eigh(x.T @ x / max(len(x) - 1, 1))
    axes = vectors[:, ::-1][:, :n_comp].T  # largest eigenvalue first
    signs = np.sign(axes[np.arange(n_comp), np.abs(axes).argmax(axis=1)])
    comps = np.zeros((2, x.shape[1]), np.float32)
    comps[:n_comp] = axes * np.where(signs == 0, 1.0, signs)[:, None]
    return mean.astype(np.float32), comps


def umap_layout(x: np.ndarray, params: dict[str, Any]) -> tuple[np.ndarray, Any]:
    import umap  # lazily: heavy import plus numba compilation

    seed = params["seed"]
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=min(params["n_neighbors"], len(x) - 1),
        min_dist=params["min_dist"],
        metric=params["metric"],
        random_state=seed,
        transform_seed=seed if seed is not None else 42,
        n_jobs=1 if seed is not None else -1,
    )
    with warnings.catch_warnings():
        # umap warns that random_state forces one thread: that is the point of a seed
        warnings.filterwarnings("ignore", message=".*n_jobs value.*", category=UserWarning)
        xy = reducer.fit_transform(x)
    return np.asarray(xy, dtype=np.float32), reducer


def center_each(
    img: np.ndarray, txt: np.ndarray
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    for arr, what in [(img, "image"), (txt, "prompt")]:
        if arr.ndim != 2 or len(arr) < 2:
            raise ValueError(
                f"Centering the modalities needs at least two {what} vectors, got "
                f"{len(arr) if arr.ndim == 2 else arr.shape}: one vector minus its own mean is "
                "zero. Add more, or use center=False."
            )
    means = (img.mean(axis=0), txt.mean(axis=0))
    return unit_rows(img - means[0]), unit_rows(txt - means[1]), means


def unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.where(norms == 0, 1, norms)).astype(np.float32, copy=False)
