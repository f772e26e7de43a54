"""IdRows: the id -> row look-up behind selections set from Python (no pandas)."""

from __future__ import annotations

import numpy as np

from clipviz.compute.id_rows import IdRows


def test_rows_of_known_unknown_and_repeated_ids():
    rows = IdRows(["a", "b", "c", "b"])  # a repeated id maps to its first row
    np.testing.assert_array_equal(rows(["c", "x", "b", "a"]), [2, -1, 1, 0])
    assert rows([]).dtype == np.int64 and len(rows([])) == 0


def test_it_matches_a_linear_search_on_many_ids():
    ids = [f"img{i:06d}" for i in range(5000)]
    rng = np.random.default_rng(0)
    asked = [ids[i] for i in rng.integers(0, len(ids), 300)] + ["missing"]
    expected = [ids.index(i) if i in ids else -1 for i in asked]
    np.testing.assert_array_equal(IdRows(ids)(asked), expected)
