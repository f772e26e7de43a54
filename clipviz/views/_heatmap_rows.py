"""Which rows the heatmap draws: one per image when few, else one per group plus a drill-down.

Grouping works on integer codes (``(codes, names)``), never on one Python string per image, so
a million images cost a few ``np.bincount`` passes. A row is a ``RowKey``; the image indices
behind it are resolved only when asked (a click, a hover, a test), not for every row.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np

DRILL_IMAGES = 30  # a selection up to this size gets one row per selected image


@dataclass(frozen=True)
class RowKey:
    """One heatmap row: ``kind`` is "image", "group", "chunk", "selected" or "selected_group"."""

    kind: str
    value: int  # image index, group code, or chunk number
    size: int


@dataclass
class Grouping:
    """Integer codes per image and the names they stand for (None: input order, no groups)."""

    codes: np.ndarray | None
    names: list[str]


def group_means(sim: np.ndarray, codes: np.ndarray, n_groups: int, rows: np.ndarray | None = None):
    """(G, C) mean similarity per group code (over ``rows`` only, when given) and (G,) sizes.

    Column-major similarities (as ``zero_shot`` makes them): one weighted ``bincount`` per
    contiguous column (summed in float64). Row-major: one sparse (G, N) indicator times the
    similarities, a single pass over the rows.
    """
    c = codes if rows is None else codes[rows]
    sub = sim if rows is None else sim[rows]
    counts = np.bincount(c, minlength=n_groups)
    if sub.flags.f_contiguous:  # (a single column is both)
        c = np.asarray(c, np.intp)  # once, not per column
        sums = np.empty((n_groups, sub.shape[1]), np.float64)
        for j in range(sub.shape[1]):
            sums[:, j] = np.bincount(c, weights=sub[:, j], minlength=n_groups)
    else:
        import scipy.sparse as sp  # lazily: scipy comes with scikit-learn

        indicator = sp.csc_matrix(
            (np.ones(len(c), np.float32), np.asarray(c, np.int64), np.arange(len(c) + 1)),
            shape=(n_groups, len(c)),
        )
        sums = np.asarray(indicator @ sub)
    return (sums / np.maximum(counts, 1)[:, None]).astype(np.float32), counts


@dataclass
class ColumnMeans:
    """Group means per similarity column, kept by column key for the codes they came from.

    A prompt edit changes a few columns: the group means of the others are reused (keys:
    anything that changes with a column's values, e.g. its prompt vector's bytes).
    """

    codes: np.ndarray | None = None
    counts: np.ndarray | None = None
    columns: dict[Hashable, np.ndarray] = field(default_factory=dict)

    def means(
        self, sim: np.ndarray, grouping: Grouping, keys: Sequence[Hashable]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(G, C) group means of ``sim`` and (G,) sizes, computing only unseen columns."""
        n_groups = len(grouping.names)
        if self.codes is not grouping.codes or self.counts is None or len(self.counts) != n_groups:
            self.codes, self.columns = grouping.codes, {}
            self.counts = np.bincount(grouping.codes, minlength=n_groups)
        missing = [j for j, key in enumerate(keys) if key not in self.columns]
        if missing:
            means, _ = group_means(sim[:, missing], grouping.codes, n_groups)
            for i, j in enumerate(missing):
                self.columns[keys[j]] = means[:, i]
        self.columns = {key: self.columns[key] for key in keys}  # forget removed columns
        out = np.empty((n_groups, len(keys)), np.float32)
        for j, key in enumerate(keys):
            out[:, j] = self.columns[key]
        return out, self.counts


def build_rows(
    sim: np.ndarray,
    grouping: Grouping,
    selected: np.ndarray,
    max_rows: int,
    means: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[list[RowKey], np.ndarray]:
    """The rows to draw and their (R, C) values.

    Up to ``max_rows`` images: one row per image, ordered by group (stable). Above: one row
    per group (or per run of consecutive images without groups), then the drill-down: each
    selected image (up to ``DRILL_IMAGES``) or the selection's mean per group. ``means``:
    the groups' (means, sizes) when already known (``ColumnMeans``).
    """
    n = len(sim)
    codes = grouping.codes
    if n <= max_rows:
        order = np.arange(n) if codes is None else np.argsort(codes, kind="stable")
        return [RowKey("image", int(i), 1) for i in order], sim[order]
    keys: list[RowKey] = []
    if codes is None:
        step = -(-n // max_rows)
        starts = np.arange(0, n, step)
        z = np.add.reduceat(sim, starts, axis=0) / np.diff(np.append(starts, n))[:, None]
        keys = [RowKey("chunk", k, int(min(step, n - s))) for k, s in enumerate(starts)]
        parts = [z.astype(np.float32)]
    else:
        means, counts = means or group_means(sim, codes, len(grouping.names))
        present = np.flatnonzero(counts)[:max_rows]
        keys = [RowKey("group", int(g), int(counts[g])) for g in present]
        parts = [means[present]]
    if len(selected):
        if len(selected) <= DRILL_IMAGES:
            keys += [RowKey("selected", int(i), 1) for i in selected]
            parts.append(sim[selected])
        elif codes is not None:
            means, counts = group_means(sim, codes, len(grouping.names), selected)
            present = np.flatnonzero(counts)
            keys += [RowKey("selected_group", int(g), int(counts[g])) for g in present]
            parts.append(means[present])
        else:
            keys.append(RowKey("selected_group", -1, len(selected)))
            parts.append(sim[selected].mean(axis=0, keepdims=True))
    return keys, np.concatenate(parts).astype(np.float32, copy=False)


def members(key: RowKey, grouping: Grouping, selected: np.ndarray, n: int, max_rows: int):
    """Image indices behind one row."""
    if key.kind in ("image", "selected"):
        return np.array([key.value])
    if key.kind == "chunk":
        step = -(-n // max_rows)
        return np.arange(key.value * step, min(n, (key.value + 1) * step))
    if key.kind == "group":
        return np.flatnonzero(grouping.codes == key.value)
    if key.value < 0:
        return np.asarray(selected)
    return np.asarray(selected)[grouping.codes[selected] == key.value]
