"""Classification metrics for zero-shot predictions, named as CLIP_benchmark names them.

``acc1``/``acc5``: top-1/top-5 accuracy (acc5 is NaN with fewer than 5 classes, as in
CLIP_benchmark). ``mean_per_class_recall``: sklearn's ``balanced_accuracy_score``, i.e. the mean
recall over the classes that occur among the true labels.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from clipviz.compute.zeroshot import Predictions


@dataclass
class Metrics:
    """Accuracy summary of one set of predictions.

    Attributes
    ----------
    acc1, acc5, mean_per_class_recall : float
        As in CLIP_benchmark (fractions in [0, 1]).
    n : int
        Images evaluated (true label among the classnames).
    per_class : pandas.DataFrame
        Index ``class`` (every classname, in order); columns ``n`` (true images),
        ``n_correct``, ``accuracy`` (= recall; NaN when n is 0), ``n_predicted``, ``precision``.
    confusion : pandas.DataFrame
        Counts, rows = true class, columns = predicted class, both over all classnames.
    excluded_labels : dict
        Labels not among the classnames (or None) -> number of images left out.
    counts : np.ndarray
        (C, C) int64 confusion counts behind ``confusion`` and ``per_class``.
    classnames : list of str
        Their row and column order.

    ``per_class`` and ``confusion`` are made from ``counts`` on first read: a prompt edit's
    status line needs only the scalars, and a reopen then never imports pandas for them.
    """

    acc1: float
    acc5: float
    mean_per_class_recall: float
    n: int
    excluded_labels: dict[str | None, int]
    counts: np.ndarray
    classnames: list[str]

    @cached_property
    def per_class(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.class_columns, index=pd.Index(self.classnames, name="class"))

    @cached_property
    def class_columns(self) -> dict[str, np.ndarray]:
        """``per_class``'s columns as arrays in ``classnames`` order (no pandas import)."""
        return _class_columns(self.counts)

    @cached_property
    def confusion(self) -> Any:
        import pandas as pd

        cols = pd.Index(self.classnames, name="predicted")
        rows = pd.Index(self.classnames, name="true")
        return pd.DataFrame(self.counts, index=rows, columns=cols)

    def as_dict(self) -> dict[str, float | int]:
        """Scalar metrics: ``acc1``, ``acc5``, ``mean_per_class_recall``, ``n``."""
        return {
            "acc1": self.acc1,
            "acc5": self.acc5,
            "mean_per_class_recall": self.mean_per_class_recall,
            "n": self.n,
        }

    def compare(self, other: Metrics, names: tuple[str, str] = ("a", "b")) -> Any:
        """Per-class accuracy of this run (A) against ``other`` (B).

        Parameters
        ----------
        other : Metrics
            The second run, e.g. another prompt set or model on the same images.
        names : tuple of str
            Suffixes for the two runs' columns.

        Returns
        -------
        pandas.DataFrame
            Index ``class`` (A's classes, then B's new ones); columns ``n_<a>``,
            ``accuracy_<a>``, ``n_<b>``, ``accuracy_<b>``, ``difference`` (B - A), plus a
            final row ``"(all) acc1"`` comparing the overall top-1 accuracy.
        """
        import pandas as pd

        a, b = names
        left = self.per_class[["n", "accuracy"]].add_suffix(f"_{a}")
        right = other.per_class[["n", "accuracy"]].add_suffix(f"_{b}")
        table = left.join(right, how="outer", sort=False)
        order = list(self.per_class.index) + [
            c for c in other.per_class.index if c not in self.per_class.index
        ]
        table = table.reindex(order)
        overall = pd.DataFrame(
            {f"n_{a}": [self.n], f"accuracy_{a}": [self.acc1]}
            | {f"n_{b}": [other.n], f"accuracy_{b}": [other.acc1]},
            index=pd.Index(["(all) acc1"], name="class"),
        )
        table = pd.concat([table, overall])
        table["difference"] = table[f"accuracy_{b}"] - table[f"accuracy_{a}"]
        table.index.name = "class"
        return table


def evaluate(pred: Predictions) -> Metrics:
    """Accuracy metrics of zero-shot predictions against their true labels.

    Images whose label is not one of ``pred.classnames`` cannot be predicted correctly by
    construction; they are left out (with a warning naming those labels), as a benchmark over a
    class subset would do.

    Parameters
    ----------
    pred : Predictions
        From :func:`clipviz.compute.zero_shot` on images that carry labels.

    Returns
    -------
    Metrics

    Raises
    ------
    ValueError
        The predictions carry no labels, or none of the labels is a classname.
    """
    if pred.labels is None:
        raise ValueError(
            "These predictions carry no true labels, so there is nothing to evaluate against. "
            "Give the images labels (e.g. ImageSet.from_folder with one sub-folder per class)."
        )
    classes = list(pred.classnames)
    true_all = pred.true_indices  # hash look-ups in C (or per distinct label), not per image
    keep = true_all >= 0
    excluded = _excluded(pred, keep)
    if not keep.any():
        shown = ", ".join(repr(x) for x in list(excluded)[:5])
        raise ValueError(
            f"None of the true labels ({shown}{', ...' if len(excluded) > 5 else ''}) is one of "
            f"the classnames ({', '.join(repr(c) for c in classes[:5])}"
            f"{', ...' if len(classes) > 5 else ''}). Use the label names as classnames."
        )
    if excluded:
        warnings.warn(
            f"{int((~keep).sum())} images have labels that are not classnames and were left out "
            f"of the metrics: {dict(list(excluded.items())[:5])}.",
            stacklevel=2,
        )
    c, n = len(classes), int(np.count_nonzero(keep))
    counts = _updated_counts(pred, keep, c)
    if counts is None:
        rows = slice(None) if not excluded else keep  # all kept: views, not masked copies
        counts = _counts(pred, true_all[rows], rows, c)
    pred._counts = counts
    conf, hits5 = counts
    return Metrics(
        acc1=int(np.trace(conf)) / n,  # = mean(top1 == true): the hits are the diagonal
        acc5=hits5 / n if hits5 is not None else float("nan"),
        mean_per_class_recall=float(np.nanmean(_class_columns(conf)["accuracy"])),
        n=n,
        excluded_labels=excluded,
        counts=conf,
        classnames=classes,
    )


def _counts(
    pred: Predictions, true: np.ndarray, rows: np.ndarray | slice, c: int
) -> tuple[np.ndarray, int | None]:
    """(C, C) confusion counts (true, top-1) and the top-5 hits (None below 5 classes)."""
    hits5 = None
    if c >= 5:
        hits5 = _hits5(_top5(pred, rows), true)
    return _pairs(true, pred.topk_indices[rows, 0], c), hits5


def _pairs(true: np.ndarray, top1: np.ndarray, c: int) -> np.ndarray:
    pair = np.multiply(true, c)
    pair += top1
    return np.bincount(pair, minlength=c * c).reshape(c, c).astype(np.int64)


def _hits5(top5: np.ndarray, true: np.ndarray) -> int:
    hit = top5[:, 0] == true
    for r in range(1, 5):  # column by column: per-row any() over 5 values is slow
        hit |= top5[:, r] == true
    return int(np.count_nonzero(hit))


def _updated_counts(pred: Predictions, keep: np.ndarray, c: int) -> Any:
    """The previous predictions' counts, recounted on the rows whose top-k changed; None
    when there is no such link (``zero_shot(previous=)`` leaves one when the kept columns
    kept their numbers) or the true label columns differ."""
    link = pred._previous
    before = link[0]() if link is not None else None
    if before is None or before._counts is None or vars(before).get("true_indices") is None:
        return None
    true_all = pred.true_indices
    if vars(before)["true_indices"] is not true_all:  # the same array: same label columns
        return None
    (old_conf, old_hits5), old_c = before._counts, len(before.classnames)
    if (c >= 5) != (old_hits5 is not None) or (c >= 5 and min(pred.k, before.k) < 5):
        return None  # top-5 hits from re-ranked similarities: count them from scratch
    rows = link[1][keep[link[1]]]
    true = true_all[rows]
    size = max(c, old_c)
    conf = np.zeros((size, size), np.int64)
    conf[:old_c, :old_c] = old_conf
    conf -= _pairs(true, before.topk_indices[rows, 0], size)
    conf += _pairs(true, pred.topk_indices[rows, 0], size)
    hits5 = None
    if c >= 5:
        hits5 = old_hits5 - _hits5(before.topk_indices[rows, :5], true)
        hits5 += _hits5(pred.topk_indices[rows, :5], true)
    return conf[:c, :c], hits5


def _top5(pred: Predictions, keep: np.ndarray | slice) -> np.ndarray:
    if pred.k >= 5:
        return pred.topk_indices[keep, :5]
    # zero_shot kept fewer than 5: rank again, on similarity (float32 probs underflow to ties)
    return np.argpartition(-pred.similarity[keep], 4, axis=1)[:, :5]


def _class_columns(conf: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class counts and rates of a (C, C) confusion: the columns of ``per_class``."""
    support, hits, predicted = conf.sum(axis=1), np.diag(conf), conf.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(support > 0, hits / np.maximum(support, 1), np.nan)  # NaN: no image
        precision = np.where(predicted > 0, hits / np.maximum(predicted, 1), np.nan)
    return {
        "n": support,
        "n_correct": hits,
        "accuracy": accuracy,
        "n_predicted": predicted,
        "precision": precision,
    }


def _excluded(pred: Predictions, keep: np.ndarray) -> dict[str | None, int]:
    """Label -> number of images left out; only the images left out are read."""
    left_out = np.flatnonzero(~keep)
    if pred.label_codes is not None:
        codes, names = pred.label_codes
        found, counts = np.unique(np.asarray(codes)[left_out], return_counts=True)
        return {
            (names[c] if c >= 0 else None): int(k)
            for c, k in zip(found.tolist(), counts.tolist(), strict=True)
        }
    out: dict[str | None, int] = {}
    labels = pred.labels
    for i in left_out.tolist():
        out[labels[i]] = out.get(labels[i], 0) + 1
    return out
