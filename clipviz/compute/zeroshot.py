"""Zero-shot classification and cosine similarity on precomputed embeddings (numpy only).

Everything here works on vectors that were embedded once: updating the predictions after a
prompt change is a (N, D) x (D, C) product plus a softmax, with top-k taken by argpartition.

SigLIP models (``ModelInfo.scoring == "sigmoid"``) were trained with a sigmoid per image-text
pair, not a softmax over classes: their probabilities are ``sigmoid(logit_scale * cosine +
logit_bias)``, one independent "does this prompt match" probability per prompt, which need not
sum to 1 over the classes. The ranking (top-k) is the same cosine ranking in both cases.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from clipviz.compute.types import ImageEmbeddings, ModelInfo, PromptEmbeddings

# CLIP's learned temperature saturates at exp(4.6052) = 100; used when only raw arrays are given.
DEFAULT_LOGIT_SCALE = 100.0


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
        (N, C) float32. CLIP (``scoring="softmax"``): softmax over classes of ``logit_scale *
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
    """

    ids: list[str]
    classnames: list[str]
    probs: np.ndarray
    similarity: np.ndarray
    topk_indices: np.ndarray
    topk_probs: np.ndarray
    labels: list[str] | None = None
    model: ModelInfo | None = None
    logit_scale: float = DEFAULT_LOGIT_SCALE
    scoring: str = "softmax"
    logit_bias: float | None = None
    label_codes: tuple[np.ndarray, list[str]] | None = None

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


def similarity(
    emb: ImageEmbeddings | np.ndarray, prompts: PromptEmbeddings | np.ndarray
) -> np.ndarray:
    """Cosine similarity between every image and every prompt.

    Parameters
    ----------
    emb : ImageEmbeddings or np.ndarray
        Images, or an (N, D) array (normalised here when given raw).
    prompts : PromptEmbeddings or np.ndarray
        Prompts (class vectors), or a (C, D) array (normalised here when given raw).

    Returns
    -------
    np.ndarray
        (N, C) float32.

    Raises
    ------
    ValueError
        Embeddings from different models, or different dimensions.
    """
    img, txt = _rows(emb, "images"), _vectors(prompts, "prompts")
    _check_compatible(emb, prompts, img, txt)
    out = np.empty((len(img), len(txt)), np.float32)
    for _ in _similarity_chunks(img, txt, out=out):
        pass
    return out


def zero_shot(
    emb: ImageEmbeddings | np.ndarray,
    prompts: PromptEmbeddings | np.ndarray,
    k: int = 5,
    *,
    logit_scale: float | None = None,
    classnames: list[str] | None = None,
    label_codes: tuple[np.ndarray, list[str]] | None = None,
) -> Predictions:
    """Zero-shot classify embedded images against class prompt vectors.

    Parameters
    ----------
    emb : ImageEmbeddings or np.ndarray
        Embedded images, or a raw (N, D) array (ids become "0", "1", ...).
    prompts : PromptEmbeddings or np.ndarray
        One vector per class, or a raw (C, D) array (then pass ``classnames``).
    k : int
        Number of top classes to keep per image; clipped to the number of classes.
    logit_scale : float, optional
        Temperature. Defaults to the model's (``ModelInfo.logit_scale``), or 100.
    classnames : list of str, optional
        Class names for a raw prompt array (default "0", "1", ...).
    label_codes : (codes, names), optional
        The images' true labels as (N,) integer codes into ``names`` (e.g. from
        ``pandas.factorize``): ``true_indices`` then costs one look-up per distinct label
        instead of one per image.

    Returns
    -------
    Predictions
        ``ids`` and ``labels`` are the embeddings' own lists (shared, not copied).

    Raises
    ------
    ValueError
        Different models or dimensions, no classes, or k < 1.

    Notes
    -----
    The work goes in chunks of rows (product, softmax, top-k per chunk), so the temporaries stay
    a few MB at any N and float16 or memory-mapped vectors are read, not copied, once.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer (top-k classes per image), got {k!r}.")
    img, txt = _rows(emb, "images"), _vectors(prompts, "prompts")
    _check_compatible(emb, prompts, img, txt)
    n, c = len(img), len(txt)
    if c == 0:
        raise ValueError("zero_shot() needs at least one class prompt; got 0.")
    names = _classnames(prompts, classnames, c)
    model = _model_of(emb) or _model_of(prompts)
    scale = float(
        logit_scale
        if logit_scale is not None
        else getattr(model, "logit_scale", None) or DEFAULT_LOGIT_SCALE
    )
    scoring = getattr(model, "scoring", "softmax")
    bias = getattr(model, "logit_bias", None) if scoring == "sigmoid" else None
    k = min(int(k), c)
    sim, probs = np.empty((n, c), np.float32), np.empty((n, c), np.float32)
    top_idx, top_p = np.empty((n, k), np.int64), np.empty((n, k), np.float32)
    for part, s in _similarity_chunks(img, txt, out=sim):
        if scoring == "sigmoid":
            probs[part] = _sigmoid_scaled(s, scale, float(bias))
        else:  # class-major chunk: per-image reductions become vectorised row operations
            probs[part] = _softmax_scaled(np.ascontiguousarray(s.T), scale)
        top_idx[part] = _topk(s, k)
        top_p[part] = np.take_along_axis(probs[part], top_idx[part], axis=1)
    ids = emb.ids if isinstance(emb, ImageEmbeddings) else [str(i) for i in range(n)]
    labels = emb.labels if isinstance(emb, ImageEmbeddings) else None
    codes = label_codes if labels is not None else None
    return Predictions(
        ids, names, probs, sim, top_idx, top_p, labels, model, scale, scoring, bias, codes
    )


#: Rows per chunk in zero_shot/similarity: 32k x 128 float32 vectors are 16 MB, sims ~3 MB.
_CHUNK = 32_768


def _rows(x: Any, what: str) -> np.ndarray:
    """Image vectors as stored (float16/float32, a memory map stays one); checked 2-D."""
    if isinstance(x, ImageEmbeddings):
        v = np.asanyarray(x.vectors)
    else:
        v = _vectors(x, what)
    if v.ndim != 2:
        raise ValueError(f"The {what} vectors must be 2-D (count, dim), got shape {v.shape}.")
    return v


def _similarity_chunks(
    img: np.ndarray, txt: np.ndarray, *, out: np.ndarray
) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield ``(rows, out[rows])`` with ``out[rows] = img[rows] @ txt.T``, chunk by chunk.

    ``img`` is read one chunk at a time as float32, so float16 or memory-mapped vectors are
    never converted whole.
    """
    txt_t = np.ascontiguousarray(txt.T, dtype=np.float32)
    for start in range(0, len(img), _CHUNK):
        part = slice(start, min(start + _CHUNK, len(img)))
        chunk = img[part]
        if chunk.dtype != np.float32:
            chunk = chunk.astype(np.float32)
        np.matmul(chunk, txt_t, out=out[part])
        yield part, out[part]


def _true_from_codes(
    label_codes: tuple[np.ndarray, list[str]], classnames: list[str], n: int
) -> np.ndarray:
    codes, names = label_codes
    codes = np.asarray(codes)
    if codes.shape != (n,):
        raise ValueError(f"label_codes has shape {codes.shape}; expected ({n},), one per image")
    index = {name: i for i, name in reversed(list(enumerate(classnames)))}  # first wins
    as_class = np.array([index.get(str(name), -1) for name in names] + [-1], np.int64)
    return as_class[np.where(codes >= 0, codes, len(names))]  # a negative code: no label


def _sigmoid_scaled(sim: np.ndarray, scale: float, bias: float) -> np.ndarray:
    """SigLIP's per-pair probability ``sigmoid(scale * sim + bias)``, (N, C) float32."""
    z = np.multiply(sim, np.float32(scale), dtype=np.float32)
    z += np.float32(bias)
    np.negative(z, out=z)
    np.clip(z, -88.0, 88.0, out=z)  # exp overflows float32 beyond 88
    np.exp(z, out=z)
    z += np.float32(1.0)
    np.reciprocal(z, out=z)
    return z


def _softmax_scaled(sim_t: np.ndarray, scale: float) -> np.ndarray:
    """Softmax over classes of (C, N) similarities, returned as (N, C) C-contiguous float32.

    Reducing over axis 0 of the class-major array is a handful of vectorised row operations
    (per-row reductions over 20 columns are several times slower for 100k images); one float32
    buffer is reused throughout, no float64 copies.
    """
    out = np.multiply(sim_t, np.float32(scale), dtype=np.float32)
    out -= out.max(axis=0, keepdims=True)
    # exp of very negative float32 values takes a slow underflow path; exp(-87) is ~1e-38 anyway
    np.maximum(out, np.float32(-87.0), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=0, keepdims=True)
    return np.ascontiguousarray(out.T)


def _topk(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest scores per row, largest first.

    Ranked on cosine similarity, not probabilities: with a logit scale of 100 the float32
    softmax underflows to exactly 0 for distant classes, which would make their order arbitrary.
    For short rows a full argsort is faster than argpartition plus a sort of the k winners.
    """
    n, c = scores.shape
    if c <= 64 or k == c:
        idx = np.argsort(-scores, axis=1)[:, :k]
    else:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1)
        idx = np.take_along_axis(part, order, axis=1)
    return np.ascontiguousarray(idx, dtype=np.int64)


def _vectors(x: Any, what: str) -> np.ndarray:
    if isinstance(x, (ImageEmbeddings, PromptEmbeddings)):
        v = np.asarray(x.vectors, dtype=np.float32)
    elif isinstance(x, np.ndarray) or isinstance(x, (list, tuple)):
        v = np.asarray(x, dtype=np.float32)
        if v.ndim == 2 and v.shape[0]:
            norms = np.linalg.norm(v, axis=1, keepdims=True)
            v = v / np.where(norms == 0, 1, norms)  # raw arrays: normalise for a true cosine
    else:
        raise TypeError(
            f"Expected ImageEmbeddings/PromptEmbeddings or a 2-D array for the {what}, "
            f"got {type(x).__name__}."
        )
    if v.ndim != 2:
        raise ValueError(f"The {what} vectors must be 2-D (count, dim), got shape {v.shape}.")
    return v


def _model_of(x: Any) -> ModelInfo | None:
    return getattr(x, "model", None) if isinstance(x, (ImageEmbeddings, PromptEmbeddings)) else None


def _check_compatible(emb: Any, prompts: Any, img: np.ndarray, txt: np.ndarray) -> None:
    a, b = _model_of(emb), _model_of(prompts)
    if a is not None and b is not None and a.key != b.key:
        raise ValueError(
            f"The images were embedded with model {a.name!r} (key {a.key!r}) but the prompts with "
            f"{b.name!r} (key {b.key!r}); their vectors live in different spaces. Embed both "
            "with the same model."
        )
    if img.shape[1] != txt.shape[1]:
        raise ValueError(
            f"Image vectors have dimension {img.shape[1]} but prompt vectors {txt.shape[1]}; "
            "they must come from the same model."
        )


def _classnames(prompts: Any, classnames: list[str] | None, c: int) -> list[str]:
    if classnames is None:
        if isinstance(prompts, PromptEmbeddings):
            return list(prompts.classnames)
        return [str(i) for i in range(c)]
    names = [str(name) for name in classnames]
    if len(names) != c:
        raise ValueError(f"Got {len(names)} classnames for {c} prompt vectors; they must match.")
    return names
