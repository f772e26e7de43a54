"""Prompt ensembling: one classifier vector per class from its template embeddings."""

from __future__ import annotations

import numpy as np


def ensemble(per_template: np.ndarray) -> np.ndarray:
    """Average the normalised template embeddings of each class and renormalise.

    This is what open_clip's ``build_zero_shot_classifier`` does (mean over templates of the
    normalised text embeddings, then L2 normalisation), returned as (C, D) instead of (D, C).

    Parameters
    ----------
    per_template : np.ndarray
        (C, T, D) text embeddings: C classes, T templates, D dimensions. Rows are normalised
        here first, so unnormalised input gives the same result as normalised input.

    Returns
    -------
    np.ndarray
        (C, D) float32, each row L2-normalised.

    Raises
    ------
    ValueError
        Input that is not 3-D, has no templates, or holds non-finite or all-zero vectors.
    """
    arr = np.asarray(per_template)
    if arr.ndim != 3:
        raise ValueError(
            f"ensemble() expects (classes, templates, dim) embeddings, got shape {arr.shape}. "
            "For a single template use per_template[:, None, :]."
        )
    if arr.shape[1] == 0:
        raise ValueError(f"ensemble() got zero templates per class (shape {arr.shape}).")
    arr = arr.astype(np.float32, copy=False)
    mean = _normalise(arr, "template embedding").mean(axis=1)
    return _normalise(mean, "ensembled class vector (templates cancel out)")


def _normalise(x: np.ndarray, what: str) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        bad = np.argwhere(~np.isfinite(norms[..., 0]) | (norms[..., 0] == 0))[0].tolist()
        raise ValueError(f"Cannot normalise: {what} at index {bad} is zero or not finite.")
    return (x / norms).astype(np.float32, copy=False)
