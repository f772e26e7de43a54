"""A view's selection as image ids (the public trait) and as row numbers (what it draws from).

The Workbench knows the rows of a selection (a lasso reports rows), so it hands them over with
``show_selection`` and no view looks a single id up; a selection set from Python alone is
looked up once by the view. The ``selection`` traits are untyped lists checked here in one
pass: ``List(Unicode())`` validates item by item, ~0.1 s per 13k ids per trait.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from traitlets import TraitError


def check_ids(value: Sequence[Any]) -> list[str]:
    """``value`` as a list, when every item is an image id (str); else a clear TraitError."""
    bad = next((v for v in value if not isinstance(v, str)), None)
    if bad is not None:
        raise TraitError(f"selection holds image ids (str), got {bad!r}")
    return list(value)


class RowsOfSelection:
    """Mixin for views with a ``selection`` trait and a ``_rows_of(ids)`` look-up."""

    _known_rows: np.ndarray | None = None  # rows given with the selection being set

    def show_selection(self, ids: list[str], rows: np.ndarray) -> None:
        """Set ``selection`` to ``ids`` whose row numbers the caller knows (no id look-up)."""
        self._known_rows = np.asarray(rows, np.int64)
        try:
            self.selection = ids
        finally:
            self._known_rows = None

    def _rows_of_selection(self, ids: Sequence[str]) -> np.ndarray:
        """Row numbers of a new selection: the ones given with it, else looked up."""
        known = self._known_rows
        return known if known is not None else self._rows_of(ids)

    def _rows_of(self, ids: Sequence[str]) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError
