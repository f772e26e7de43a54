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
from typing import Any

import numpy as np

from clipviz.compute import _scores, _topk_update
from clipviz.compute._predictions import (  # noqa: F401  (imported from here elsewhere)
    DEFAULT_LOGIT_SCALE,
    Predictions,
    _label_columns,
    _true_from_codes,
)
from clipviz.compute._scores import topk as _topk  # noqa: F401  (imported from here elsewhere)
from clipviz.compute.types import ImageEmbeddings, ModelInfo, PromptEmbeddings


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
