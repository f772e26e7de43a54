"""Row numbers of image ids: a hash look-up built on first use, in plain Python (no pandas).

A selection set from Python arrives as ids; the views and the Workbench turn them into rows
once. A dict over the ids costs ~0.1 s to build for 1M ids and is made only when ids are looked
up (a lasso in the map reports rows and needs none); pandas' Index did the same after a 0.7 s
import.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class IdRows:
    """``rows(ids)``: the row of each id in ``all_ids`` (the first, if one repeats); -1 if absent."""

    __slots__ = ("_all", "_rows")

    def __init__(self, all_ids: Sequence[str]) -> None:
        self._all = all_ids
        self._rows: dict[str, int] | None = None

    def __call__(self, ids: Sequence[str]) -> np.ndarray:
        if self._rows is None:
            n = len(self._all)  # built backwards: the first of a repeated id wins
            self._rows = dict(zip(reversed(self._all), range(n - 1, -1, -1), strict=True))
        get = self._rows.get
        return np.fromiter((get(i, -1) for i in ids), np.int64, count=len(ids))
