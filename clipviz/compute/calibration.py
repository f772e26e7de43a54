"""Do the predicted probabilities mean anything? Calibration of zero-shot predictions.

``calibration`` bins the top-1 confidence into equal-width bins and compares each bin's mean
confidence with its accuracy (the reliability diagram); the expected calibration error (ECE)
is the count-weighted L1 gap (Guo et al., ICML 2017). ``fit_temperature`` finds the logit scale
that minimises the negative log-likelihood of the true labels (temperature scaling), and
``rescale`` re-scores predictions with another scale without touching the embeddings.

Only images whose true label is one of the classnames count, as in ``evaluate``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from clipviz.compute._scores import softmax_scaled as _softmax_scaled
from clipviz.compute.zeroshot import Predictions

_SCALE_RANGE = (1e-3, 1e4)  # bracket for the logit scale search (CLIP's saturates at 100)
_WARM_START_ROWS = 20_000  # subsample that gives the full fit its starting point


@dataclass
class Calibration:
    """Reliability of top-1 confidences.

    Attributes
    ----------
    ece : float
        Expected calibration error: sum over bins of count/n * |accuracy - mean confidence|.
    mce : float
        Maximum calibration error: the largest gap over non-empty bins.
    n : int
        Images counted (true label among the classnames).
    logit_scale : float
        The temperature the probabilities were computed with.
    bins : pandas.DataFrame
        One row per bin: ``lower``, ``upper`` (bin ``(lower, upper]``), ``count``,
        ``confidence`` (mean top-1 probability; NaN when empty), ``accuracy`` (NaN when
        empty), ``gap`` (accuracy - confidence). Made on first read from the arrays below
        (the status line's ECE, on every edit, needs none of it).
    count, confidence, accuracy : np.ndarray
        (M,) per bin, as in ``bins``.
    """

    ece: float
    mce: float
    n: int
    logit_scale: float
    count: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray

    @cached_property
    def bins(self) -> Any:
        import pandas as pd

        edges = np.linspace(0.0, 1.0, len(self.count) + 1)
        return pd.DataFrame(
            {
                "lower": edges[:-1],
                "upper": edges[1:],
                "count": self.count,
                "confidence": self.confidence,
                "accuracy": self.accuracy,
                "gap": self.accuracy - self.confidence,
            }
        )

    def as_dict(self) -> dict[str, float | int]:
        """Scalars: ``ece``, ``mce``, ``n``, ``logit_scale``."""
        return {"ece": self.ece, "mce": self.mce, "n": self.n, "logit_scale": self.logit_scale}


def calibration(pred: Predictions, n_bins: int = 15) -> Calibration:
    """Reliability bins and expected calibration error of top-1 confidences.

    Parameters
    ----------
    pred : Predictions
        Zero-shot predictions of labelled images.
    n_bins : int
        Equal-width confidence bins over [0, 1]; bin m holds ``(m-1)/M < conf <= m/M``.

    Returns
    -------
    Calibration

    Raises
    ------
    ValueError
        No labels, no label among the classnames, or n_bins < 1.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}.")

    true = _labelled(pred, "calibration")
    keep = true >= 0
    conf, top1 = pred.confidence, pred.topk_indices[:, 0]
    if not keep.all():  # (the status line calls this on every edit: no copies when all count)
        conf, top1, true = conf[keep], top1[keep], true[keep]
    # (m-1)/M < conf <= m/M  ->  bin m-1; ceil keeps a confidence of exactly 1.0 in the last
    # bin. A float32 confidence times M is exact in float64, so the bins are exact.
    scaled = np.multiply(conf, float(n_bins), dtype=np.float64)
    np.ceil(scaled, out=scaled)
    which = scaled.astype(np.intp)
    which -= 1
    np.clip(which, 0, n_bins - 1, out=which)
    conf_sum = np.bincount(which, conf.astype(np.float64), minlength=n_bins)
    which *= 2  # (bin, hit) pairs: one count gives each bin's size and its hits
    which += top1 == true
    pairs = np.bincount(which, minlength=2 * n_bins).reshape(n_bins, 2)
    count = pairs.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = conf_sum / count
        accuracy = pairs[:, 1] / count
    gap = accuracy - mean_conf
    filled = count > 0
    n = int(keep.sum())
    return Calibration(
        ece=float(np.sum(count[filled] / n * np.abs(gap[filled]))),
        mce=float(np.max(np.abs(gap[filled]))),
        n=n,
        logit_scale=float(pred.logit_scale),
        count=count,
        confidence=mean_conf,
        accuracy=accuracy,
    )


def fit_temperature(pred: Predictions, *, tol: float = 1e-6, max_iter: int = 50) -> float:
    """The logit scale minimising the mean negative log-likelihood of the true labels.

    The NLL of ``softmax(scale * similarity)`` is convex in the scale, so a safeguarded Newton
    iteration (bisection whenever a step leaves the bracket) finds the minimum. On large sets
    it starts from the optimum of a subsample, so only two or three passes touch every image.

    Parameters
    ----------
    pred : Predictions
        Labelled predictions; only ``similarity`` and the labels are used.
    tol : float
        Relative change of the scale at which to stop.
    max_iter : int
        Iteration cap.

    Returns
    -------
    float
        The fitted logit scale (CLIP's learned one is typically 100). Re-score with
        :func:`rescale`.

    Raises
    ------
    ValueError
        No labels, or no label among the classnames.
    """
    true = _labelled(pred, "fit_temperature")
    keep = true >= 0
    sim = pred.similarity if keep.all() else pred.similarity[keep]
    true = true[keep]
    # softmax is shift-invariant per row and the scale is positive: centre on the row max once
    centred = np.subtract(sim, sim.max(axis=1, keepdims=True), dtype=np.float32)
    centred_true = centred[np.arange(len(true)), true]
    scale = float(np.clip(pred.logit_scale, *_SCALE_RANGE))
    if len(true) > 4 * _WARM_START_ROWS:
        rows = slice(None, None, len(true) // _WARM_START_ROWS)
        scale = _newton(centred[rows], centred_true[rows], scale, 1e-3, max_iter)
    return _newton(centred, centred_true, scale, tol, max_iter)


def _newton(
    centred: np.ndarray, centred_true: np.ndarray, scale: float, tol: float, max_iter: int
) -> float:
    """Minimise the NLL over the scale by Newton steps kept inside a shrinking bracket."""
    lo, hi = _SCALE_RANGE
    target = float(np.mean(centred_true, dtype=np.float64))
    buffer = np.empty_like(centred)
    for _ in range(max_iter):
        grad, curv = _nll_derivatives(centred, scale, target, buffer)
        if grad > 0:
            hi = scale
        else:
            lo = scale
        step = scale - grad / curv if curv > 0 else np.inf
        if lo < step < hi:
            new = step
        else:  # bisect; geometrically while the bracket spans orders of magnitude
            new = (lo + hi) / 2 if hi < 10 * lo else float(np.sqrt(lo * hi))
        if abs(new - scale) <= tol * scale:
            return float(new)
        scale = float(new)
    return scale


def nll(pred: Predictions, logit_scale: float) -> float:
    """Mean negative log-likelihood of the true labels at ``logit_scale`` (labelled images)."""
    true = _labelled(pred, "nll")
    keep = true >= 0
    logits = pred.similarity[keep].astype(np.float64) * float(logit_scale)
    top = logits.max(axis=1, keepdims=True)
    lse = np.log(np.exp(logits - top).sum(axis=1)) + top[:, 0]
    return float(np.mean(lse - logits[np.arange(len(logits)), true[keep]]))


def rescale(pred: Predictions, logit_scale: float) -> Predictions:
    """The same predictions re-scored at another logit scale (top-1 and ranks unchanged).

    Parameters
    ----------
    pred : Predictions
    logit_scale : float
        Positive softmax scale, e.g. from :func:`fit_temperature`.

    Returns
    -------
    Predictions
        New ``probs`` and ``topk_probs``; everything else shared with ``pred``.
    """
    scale = float(logit_scale)
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"logit_scale must be a positive number, got {logit_scale!r}.")
    probs = _softmax_scaled(np.ascontiguousarray(pred.similarity.T), scale)
    top_p = np.take_along_axis(probs, pred.topk_indices, axis=1)
    return dataclasses.replace(pred, probs=probs, topk_probs=top_p, logit_scale=scale)


def _nll_derivatives(
    centred: np.ndarray, scale: float, target: float, buffer: np.ndarray
) -> tuple[float, float]:
    """d NLL / d scale and d2 NLL / d scale2 (means over images) for row-centred similarities.

    grad = E_p[sim] - sim_true and curvature = Var_p[sim], with p = softmax(scale * sim); the
    weights stay unnormalised (exp of values <= 0) and are divided out per image.
    """
    np.multiply(centred, np.float32(scale), out=buffer)
    np.maximum(buffer, np.float32(-87.0), out=buffer)  # avoid exp's slow float32 underflow path
    np.exp(buffer, out=buffer)
    total = buffer.sum(axis=1)
    first = np.einsum("nc,nc->n", buffer, centred) / total
    second = np.einsum("nc,nc,nc->n", buffer, centred, centred) / total
    grad = float(np.mean(first, dtype=np.float64)) - target
    return grad, float(np.mean(second - first * first, dtype=np.float64))


def _labelled(pred: Predictions, what: str) -> np.ndarray:
    true = pred.true_indices
    if true is None:
        raise ValueError(
            f"{what} needs true labels, and these predictions carry none. Give the images "
            "labels (e.g. ImageSet.from_folder with one sub-folder per class)."
        )
    if not (true >= 0).any():
        raise ValueError(
            f"{what}: none of the true labels is one of the classnames "
            f"({', '.join(repr(c) for c in pred.classnames[:5])}); use the label names as "
            "classnames."
        )
    return true
