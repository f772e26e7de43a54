"""The batched IVF neighbour search against exact search, its recall check, the size switch."""

from __future__ import annotations

import numpy as np
import pytest

from clipviz.compute import neighbour_overlap
from clipviz.compute import neighbours as nb
from clipviz.compute.ivf_knn import ivf_knn, spherical_kmeans
from clipviz.compute.neighbours import (
    EXACT_BELOW,
    checked_ivf_knn,
    exact_rows_knn,
    knn,
    recall,
    top_k_columns,
)


def _clustered(n: int, d: int, seed: int, clusters: int = 40) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d))
    x = centres[rng.integers(0, clusters, n)] + 0.5 * rng.standard_normal((n, d))
    return x.astype(np.float32)


def _sets(rows: np.ndarray) -> list[set[int]]:
    return [set(r.tolist()) for r in rows]


def test_ivf_scanning_every_cell_is_exact():
    x = _clustered(1500, 24, seed=0)
    cells = 30
    got = ivf_knn(x, 8, nprobe=cells, cells=cells)
    assert _sets(got) == _sets(knn(x, 8))


def test_ivf_agrees_with_exact_on_clustered_data():
    x = _clustered(6000, 32, seed=1)
    found = ivf_knn(x, 10, nprobe=10)
    truth = knn(x, 10)
    assert recall(found, truth) >= 0.99
    assert not (found == np.arange(len(x))[:, None]).any()  # never its own neighbour
    assert all(len(set(r)) == 10 for r in found.tolist())  # k distinct neighbours


def test_ivf_is_deterministic_and_independent_of_threads():
    x = _clustered(5000, 16, seed=2)
    one = ivf_knn(x, 5, workers=1)
    np.testing.assert_array_equal(np.sort(one, axis=1), np.sort(ivf_knn(x, 5, workers=3), axis=1))


def test_tiny_cells_are_widened_to_hold_k_neighbours():
    x = _clustered(400, 8, seed=3, clusters=4)
    got = ivf_knn(x, 30, nprobe=1, cells=100)  # asks for more cells than k allows
    assert got.shape == (400, 30)
    assert all(len(set(r)) == 30 and i not in r for i, r in enumerate(got.tolist()))


def test_kmeans_centroids_are_unit_and_distinct():
    c = spherical_kmeans(_clustered(2000, 12, seed=4), 20)
    np.testing.assert_allclose(np.linalg.norm(c, axis=1), 1.0, rtol=1e-5)
    assert len(np.unique(c.round(5), axis=0)) == 20


def test_recall_check_raises_nprobe_or_goes_exact_on_unstructured_data():
    # isotropic noise in 64-d has no cells worth the name: one cell's neighbours lie anywhere
    x = np.random.default_rng(5).standard_normal((12_000, 64)).astype(np.float32)
    first = recall(ivf_knn(x, 10, nprobe=1)[:256], exact_rows_knn(x, np.arange(256), 10))
    assert first < nb.MIN_RECALL  # the first try alone would not pass
    found, used = checked_ivf_knn(x, 10, nprobe=1)
    assert used != 1
    rows = np.arange(0, 12_000, 37)
    assert recall(found[rows], exact_rows_knn(x, rows, 10)) >= 0.97  # another sample


def test_checked_ivf_keeps_the_first_try_on_clustered_data():
    x = _clustered(8000, 32, seed=6)
    found, used = checked_ivf_knn(x, 10, nprobe=10)
    assert used == 10
    rows = np.arange(0, 8000, 7)
    assert recall(found[rows], exact_rows_knn(x, rows, 10)) >= 0.99


def test_exact_rows_knn_matches_full_knn():
    x = _clustered(900, 10, seed=7) * np.linspace(0.5, 3, 900)[:, None].astype(np.float32)
    rows = np.array([0, 5, 899])
    assert _sets(exact_rows_knn(x, rows, 6)) == _sets(knn(x, 6)[rows])


@pytest.mark.parametrize(("n", "expect_ivf"), [(EXACT_BELOW - 1, False), (EXACT_BELOW, True)])
def test_auto_switches_to_ivf_at_exact_below(monkeypatch, n, expect_ivf):
    calls = []
    real = nb.ivf_knn
    monkeypatch.setattr(nb, "ivf_knn", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    a = _clustered(n, 16, seed=8)
    b = a + 0.2 * np.random.default_rng(9).standard_normal(a.shape).astype(np.float32)
    got = neighbour_overlap(a, b, k=5)
    assert bool(calls) is expect_ivf
    exact = neighbour_overlap(a, b, k=5, method="exact")
    if expect_ivf:
        assert np.abs(got - exact).mean() < 0.01
    else:
        np.testing.assert_array_equal(got, exact)


def test_top_k_with_ties_returns_k_of_the_best():
    scores = np.zeros((3, 40), dtype=np.float32)
    scores[:, 5] = 1.0
    got = top_k_columns(scores, 4)
    assert got.shape == (3, 4) and all(5 in r and len(set(r)) == 4 for r in got.tolist())


def test_bad_nprobe_is_explained():
    x = np.eye(10, dtype=np.float32)
    with pytest.raises(ValueError, match="nprobe must be a positive integer"):
        neighbour_overlap(x, x, k=3, nprobe=0)


def test_crowded_cell_of_duplicates_is_searched_in_blocks(monkeypatch):
    import clipviz.compute.ivf_knn as ivf

    monkeypatch.setattr(ivf, "_SIMS_BYTES", 64 * 1024)  # blocks of a few rows
    rng = np.random.default_rng(10)
    x = _clustered(3000, 16, seed=11)
    x[:1500] = x[0]  # half the images are one duplicated image: one cell holds them all
    found = ivf_knn(x, 6, nprobe=5)
    assert not (found == np.arange(3000)[:, None]).any()
    rows = np.sort(rng.choice(np.arange(1500, 3000), 200, replace=False))
    assert recall(found[rows], exact_rows_knn(x, rows, 6)) >= 0.95
    assert np.isin(found[:1500], np.arange(1500)).all()  # a duplicate's neighbours: its twins
