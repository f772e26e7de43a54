"""The zero-shot result: ``Predictions`` (what ``zero_shot`` returns and updates) and its label
look-ups.

Split from ``zeroshot.py`` (which computes and updates them); import both from there or from
``clipviz.compute``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from clipviz.compute._scores import sigmoid_scaled as _sigmoid_scaled
from clipviz.compute._scores import softmax_scaled as _softmax_scaled
from clipviz.compute.types import ModelInfo

# CLIP's learned temperature saturates at exp(4.6052) = 100; used when only raw arrays are given.
DEFAULT_LOGIT_SCALE = 100.0


class _ComputedOnRead:
    """A dataclass field stored when given, else computed by ``owner._compute_<name>()`` on
    first read (the (N, C) probabilities: an update needs only their top-k)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name, self.slot = name, "_" + name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            raise AttributeError(self.name)  # no class-level default: a required field
        value = obj.__dict__.get(self.slot)
        if value is None:
            value = obj.__dict__[self.slot] = getattr(obj, "_compute_" + self.name)()
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self.slot] = value


@dataclass
class Predictions:
    """Zero-shot predictions for N images over C classes.

    Attributes
    ----------
    ids : list of str
        Image ids, row order of every array.
    classnames : list of str
        Column order of ``probs`` and ``similarity``.
    probs : np.ndarray
        (N, C) float32, computed on first read when made by ``zero_shot``. CLIP (``scoring="softmax"``): softmax over classes of ``logit_scale *
        similarity``, rows sum to 1. SigLIP (``scoring="sigmoid"``): per-prompt
        ``sigmoid(logit_scale * similarity + logit_bias)``, rows need not sum to 1.
    similarity : np.ndarray
        (N, C) float32 cosine similarity.
    topk_indices : np.ndarray
        (N, k) int64 class indices, most probable first (k is clipped to C).
    topk_probs : np.ndarray
        (N, k) float32 probabilities matching ``topk_indices``.
    labels : list of str or None
        True labels, when the images carry them.
    model : ModelInfo or None
        The model the embeddings came from.
    logit_scale : float
        The temperature used for ``probs``.
    scoring : {"softmax", "sigmoid"}
        How ``probs`` were computed (see above).
    logit_bias : float or None
        The bias of the sigmoid scoring; None for softmax.
    label_codes : (codes, names) or None
        ``labels`` as (N,) integer codes into ``names`` when known (``true_indices`` then
        looks up each distinct label once, not each image).
    prompt_vectors : np.ndarray or None
        (C, D) float32 prompt vectors behind the similarity columns (``zero_shot(previous=)``
        reuses the columns of unchanged vectors).
    topk_similarity : np.ndarray or None
        (N, k) float32 cosine similarity matching ``topk_indices``.

    Notes
    -----
    ``zero_shot`` returns ``similarity`` and the top-k arrays column-major (transposed views
    of (C, N) and (k, N) storage): a prompt edit copies, computes or ranks whole columns, each
    one contiguous. ``np.ascontiguousarray`` gives a row-major copy where one is needed.
    """

    ids: list[str]
    classnames: list[str]
    probs: np.ndarray = _ComputedOnRead()  # type: ignore[assignment]
    similarity: np.ndarray
    topk_indices: np.ndarray
    topk_probs: np.ndarray
    labels: list[str] | None = None
    model: ModelInfo | None = None
    logit_scale: float = DEFAULT_LOGIT_SCALE
    scoring: str = "softmax"
    logit_bias: float | None = None
    label_codes: tuple[np.ndarray, list[str]] | None = None
    prompt_vectors: np.ndarray | None = None
    topk_similarity: np.ndarray | None = None
    # the image vectors scored (weakly held): previous= reuses columns only for the same array
    _images: Any = field(default=None, init=False, repr=False, compare=False)
    # (logit scale, (N,) softmax denominators): an update with the same scale adjusts them
    _denominators: Any = field(default=None, init=False, repr=False, compare=False)
    # edits since the softmax top-k probabilities were computed exactly (not rescaled)
    _inexact: int = field(default=0, init=False, repr=False, compare=False)
    # (weak reference to the predictions this one updated, rows whose top-k changed) when
    # the kept columns kept their numbers: evaluate() then recounts only those rows
    _previous: Any = field(default=None, init=False, repr=False, compare=False)
    # (confusion counts, top-5 hits or None) that evaluate() counted, for the next update
    _counts: Any = field(default=None, init=False, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_images": None, "_previous": None}  # weak references

    def _compute_probs(self) -> np.ndarray:
        if self.scoring == "sigmoid":
            return _sigmoid_scaled(self.similarity, self.logit_scale, float(self.logit_bias))
        return _softmax_scaled(np.ascontiguousarray(self.similarity.T), self.logit_scale)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def k(self) -> int:
        """Number of classes kept in the top-k arrays."""
        return int(self.topk_indices.shape[1])

    @cached_property
    def predicted(self) -> list[str]:
        """Top-1 class name per image."""
        names = np.asarray(self.classnames, dtype=object)
        return names[self.topk_indices[:, 0]].tolist()

    @property
    def confidence(self) -> np.ndarray:
        """(N,) float32 probability of the top-1 class."""
        return self.topk_probs[:, 0]

    @cached_property
    def correct(self) -> np.ndarray | None:
        """(N,) bool, top-1 equals the true label; None without labels.

        A label that is not among ``classnames`` (or a missing label) counts as wrong.
        """
        if self.labels is None:
            return None
        return self.true_indices == self.topk_indices[:, 0]

    @cached_property
    def true_indices(self) -> np.ndarray | None:
        """(N,) int64 column of each true label in ``classnames``; -1 when not a classname."""
        if self.labels is None:
            return None
        if self.label_codes is not None:
            return _true_from_codes(self.label_codes, self.classnames, len(self.ids))
        import pandas as pd

        # hash lookup in C: a Python loop over 100k labels would cost more than the zero-shot
        index = {name: i for i, name in reversed(list(enumerate(self.classnames)))}  # first wins
        found = pd.Series(self.labels, dtype=object).map(index)
        return found.fillna(-1).to_numpy(dtype=np.int64)

    def to_pandas(self) -> Any:
        """One row per image.

        Returns
        -------
        pandas.DataFrame
            Columns ``id``, ``label``, ``predicted``, ``confidence``, ``correct``, then for
            each rank r = 1..k ``top{r}`` (class name) and ``top{r}_prob``.
        """
        import pandas as pd

        n = len(self.ids)
        correct = self.correct
        columns: dict[str, Any] = {
            "id": self.ids,
            "label": self.labels if self.labels is not None else [None] * n,
            "predicted": self.predicted,
            "confidence": self.confidence,
            "correct": correct if correct is not None else [None] * n,
        }
        names = np.asarray(self.classnames, dtype=object)
        for r in range(self.k):
            columns[f"top{r + 1}"] = names[self.topk_indices[:, r]]
            columns[f"top{r + 1}_prob"] = self.topk_probs[:, r]
        return pd.DataFrame(columns)


def _true_from_codes(
    label_codes: tuple[np.ndarray, list[str]], classnames: list[str], n: int
) -> np.ndarray:
    codes, names = label_codes
    codes = np.asarray(codes)
    if codes.shape != (n,):
        raise ValueError(f"label_codes has shape {codes.shape}; expected ({n},), one per image")
    as_class = _label_columns(names, classnames)
    return as_class[np.where(codes >= 0, codes, len(names))]  # a negative code: no label


def _label_columns(names: list[str], classnames: list[str]) -> np.ndarray:
    """(L + 1,) column of each label name in ``classnames`` (-1: none), then -1 for no label."""
    index = {name: i for i, name in reversed(list(enumerate(classnames)))}  # first wins
    return np.array([index.get(str(name), -1) for name in names] + [-1], np.int64)
