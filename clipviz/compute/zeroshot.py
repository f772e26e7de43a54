"""Zero-shot classification and cosine similarity on precomputed embeddings (numpy only).

Everything here works on vectors that were embedded once: updating the predictions after a
prompt change is a (N, D) x (D, C) product plus a softmax, with top-k taken by argpartition.

SigLIP models (``ModelInfo.scoring == "sigmoid"``) were trained with a sigmoid per image-text
pair, not a softmax over classes: their probabilities are ``sigmoid(logit_scale * cosine +
logit_bias)``, one independent "does this prompt match" probability per prompt, which need not
sum to 1 over the classes. The ranking (top-k) is the same cosine ranking in both cases.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from clipviz.compute import _scores, _topk_update
from clipviz.compute._scores import sigmoid_scaled as _sigmoid_scaled
from clipviz.compute._scores import softmax_scaled as _softmax_scaled
from clipviz.compute._scores import topk as _topk  # noqa: F401  (imported from here elsewhere)
from clipviz.compute.types import ImageEmbeddings, ModelInfo, PromptEmbeddings

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
    return _scores.products(img, txt, _CHUNK)


def zero_shot(
    emb: ImageEmbeddings | np.ndarray,
    prompts: PromptEmbeddings | np.ndarray,
    k: int = 5,
    *,
    logit_scale: float | None = None,
    classnames: list[str] | None = None,
    label_codes: tuple[np.ndarray, list[str]] | None = None,
    previous: Predictions | None = None,
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
    previous : Predictions, optional
        Predictions made before on the same image vectors (the same array), e.g. before a
        prompt edit: the similarity columns of prompt vectors it scored already are copied, not
        recomputed, and when prompts were only added, removed or replaced in place (the others
        keep their order) the top-k is updated where it can change instead of ranked again.
        Ignored for other images. The result is that of a fresh call (a new column, computed
        alone, may differ from the full product in the last float32 bit).

    Raises
    ------
    ValueError
        Different models or dimensions, no classes, or k < 1.

    Returns
    -------
    Predictions
        ``ids`` and ``labels`` are the embeddings' own lists (shared, not copied).

    Notes
    -----
    The work goes in chunks of rows (product, top-k, softmax normaliser per chunk), so the
    temporaries stay a few MB at any N and float16 or memory-mapped vectors are read, not
    copied, once. The (N, C) ``probs`` are computed only when read: the views need only the
    top-k probabilities.
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
    usable = _usable(previous, img)
    sim, top_idx, top_sim, sums, reuse = _scored(img, txt, k, usable, scale, scoring)
    top_p, inexact = _probabilities(top_sim, sums, reuse, usable, (scale, scoring, bias))
    ids = emb.ids if isinstance(emb, ImageEmbeddings) else [str(i) for i in range(n)]
    labels = emb.labels if isinstance(emb, ImageEmbeddings) else None
    codes = label_codes if labels is not None else None
    fields = (ids, names, None, sim, top_idx, top_p, labels, model, scale, scoring, bias)
    pred = Predictions(*fields, codes, prompt_vectors=txt, topk_similarity=top_sim)
    pred._images = weakref.ref(img)
    pred._denominators = (scale, sums) if sums is not None else None
    pred._inexact = inexact
    if reuse is not None and reuse[2]:
        pred._previous = (weakref.ref(usable), reuse[0])
    _reuse_true_indices(pred, previous)
    return pred


#: Softmax probabilities rescaled from the previous ones lose up to two float32 roundings per
#: edit; after this many edits in a row they are computed exactly again (error <= ~2e-6).
_EXACT_EVERY = 16


def _probabilities(
    top_sim: np.ndarray,
    sums: np.ndarray | None,
    reuse: tuple[np.ndarray, np.ndarray | None, bool] | None,
    previous: Predictions | None,
    scoring_of: tuple[float, str, float | None],
) -> tuple[np.ndarray, int]:
    """Top-k probabilities, from ``previous``'s where ``reuse`` = (rows whose top-k changed,
    previous denominators) allows; and how many rescaling edits they are from exact."""
    scale, scoring, bias = scoring_of
    same = previous is not None and (previous.logit_scale, previous.scoring) == (scale, scoring)
    same = same and previous.topk_probs.shape == top_sim.shape and reuse is not None
    if same and scoring == "sigmoid" and previous.logit_bias == bias:  # kept rows: exact
        probs = _scores.topk_probs_update(previous.topk_probs, top_sim, scale, reuse[0], bias=bias)
        return probs, 0
    steps = previous._inexact + 1 if previous is not None else 0
    if same and scoring != "sigmoid" and reuse[1] is not None and steps < _EXACT_EVERY:
        rescaled = (reuse[1], sums)
        probs = _scores.topk_probs_update(
            previous.topk_probs, top_sim, scale, reuse[0], sums=rescaled
        )
        return probs, steps
    return _scores.topk_probs(top_sim, sums, scale, scoring=scoring, bias=bias), 0


def _reuse_true_indices(pred: Predictions, previous: Predictions | None) -> None:
    """Give ``pred`` the true label columns ``previous`` computed, where the same label codes
    map to the same columns (an edit of prompts no label names): one gather per image saved."""
    known = vars(previous).get("true_indices") if previous is not None else None
    ours, theirs = pred.label_codes, previous.label_codes if previous is not None else None
    if known is None or ours is None or theirs is None or ours[0] is not theirs[0]:
        return
    if list(ours[1]) != list(theirs[1]) or len(known) != len(pred.ids):
        return
    if np.array_equal(
        _label_columns(ours[1], pred.classnames), _label_columns(ours[1], previous.classnames)
    ):
        vars(pred)["true_indices"] = known  # the cached_property's slot


def _usable(previous: Predictions | None, img: np.ndarray) -> Predictions | None:
    """``previous`` when it scored this very image array and kept what an update needs."""
    if previous is None or previous._images is None or previous._images() is not img:
        return None
    if previous.prompt_vectors is None or previous.topk_similarity is None:
        return None
    return previous


def _scored(
    img: np.ndarray,
    txt: np.ndarray,
    k: int,
    previous: Predictions | None,
    scale: float,
    scoring: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, Any]:
    """Similarity (N, C), top-k indices, their similarities, the softmax denominators (None
    for sigmoid scoring), updated from ``previous`` where it allows; and when the top-k was
    updated, (the rows whose top-k changed, the previous denominators or None, whether the
    kept columns kept their numbers)."""
    old_vectors = previous.prompt_vectors if previous is not None else None
    old_of_new = _scores.match_columns(old_vectors, txt)
    old_sim = previous.similarity if previous is not None else None
    sim, new_cols = _scores.score(img, txt, old_sim, old_of_new, _CHUNK)
    update = None
    if previous is not None:
        old = (previous.topk_indices, previous.topk_similarity, old_sim)
        update = _topk_update.topk_update(sim, k, old, old_of_new, new_cols, _CHUNK)
    if update is None:
        idx, vals = _scores.topk_full(sim, k, _CHUNK)
        return sim, idx, vals, _normaliser(sim, vals, scale, scoring), None
    idx, vals, lost_top1, touched = update
    kept = np.flatnonzero(old_of_new >= 0)
    numbered = bool((old_of_new[kept] == kept).all())  # kept columns kept their numbers
    if scoring == "sigmoid":
        return sim, idx, vals, None, (touched, None, numbered)
    before = previous._denominators
    if before is None or before[0] != scale:
        return sim, idx, vals, _normaliser(sim, vals, scale, scoring), (touched, None, numbered)
    removed = np.setdiff1d(np.arange(old_sim.shape[1]), old_of_new)
    change = (old_sim[:, removed], new_cols, lost_top1)
    old = (before[1], previous.topk_similarity[:, 0])
    sums = _scores.normaliser_update(old, vals[:, 0], scale, change, sim, _CHUNK)
    return sim, idx, vals, sums, (touched, before[1], numbered)


def _normaliser(sim: np.ndarray, vals: np.ndarray, scale: float, scoring: str) -> Any:
    return None if scoring == "sigmoid" else _scores.normaliser(sim, vals[:, 0], scale, _CHUNK)


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
