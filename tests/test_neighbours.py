"""neighbour_overlap against a brute-force k-NN and Jaccard, id matching, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from clipviz.compute import ImageEmbeddings, ModelInfo, neighbour_overlap
from clipviz.compute.neighbours import knn, top_k_columns


def _brute(vectors: np.ndarray, k: int) -> list[set[int]]:
    x = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = (x @ x.T).astype(np.float64)
    np.fill_diagonal(sims, -np.inf)
    return [set(np.argsort(-row)[:k].tolist()) for row in sims]


def _emb(ids: list[str], vectors: np.ndarray, name: str) -> ImageEmbeddings:
    info = ModelInfo(key=name, name=name, logit_scale=100.0, dim=vectors.shape[1])
    x = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    return ImageEmbeddings(ids, x, info)


def test_overlap_matches_brute_force_jaccard():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((300, 16))
    b = a[:, :12] + 0.6 * rng.standard_normal((300, 12))  # another space, other dimension
    k = 7
    na, nb = _brute(a, k), _brute(b, k)
    expected = [len(x & y) / len(x | y) for x, y in zip(na, nb, strict=True)]
    got = neighbour_overlap(a.astype(np.float32), b.astype(np.float32), k=k)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert 0.05 < got.mean() < 0.95  # neither identical nor unrelated spaces


def test_identical_spaces_overlap_one_and_rotation_keeps_it():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((200, 8)).astype(np.float32)
    rotation, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    assert np.allclose(neighbour_overlap(a, a, k=5), 1.0)
    assert np.allclose(neighbour_overlap(a, (a @ rotation).astype(np.float32), k=5), 1.0)


@pytest.mark.parametrize("width", [5003, 20_003])  # threshold path; chunked path, odd width
def test_top_k_is_exact_on_long_rows(width):
    rng = np.random.default_rng(2)
    scores = rng.standard_normal((16, width)).astype(np.float32)
    scores[0, 7] = -np.inf
    got = np.sort(top_k_columns(scores, 10), axis=1)
    want = np.sort(np.argsort(-scores, axis=1)[:, :10], axis=1)
    np.testing.assert_array_equal(got, want)


def test_blocked_knn_equals_one_block():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((257, 10)).astype(np.float32)
    small = np.sort(knn(x, 4, block=16), axis=1)
    np.testing.assert_array_equal(small, np.sort(knn(x, 4), axis=1))
    assert not (small == np.arange(257)[:, None]).any()  # never its own neighbour


def test_matched_by_id_in_a_order_missing_is_nan():
    rng = np.random.default_rng(4)
    vec = rng.standard_normal((60, 6))
    ids = [f"img{i}" for i in range(60)]
    a = _emb(ids, vec, "A")
    # B: shuffled, one image of A missing, one extra image A lacks
    order = rng.permutation(60)[:59]
    b_ids = [ids[i] for i in order] + ["only-in-b"]
    b_vec = np.vstack([vec[order] + 0.3 * rng.standard_normal((59, 6)), rng.standard_normal(6)])
    b = _emb(b_ids, b_vec, "B")
    got = neighbour_overlap(a, b, k=5)
    missing = ids.index(ids[sorted(set(range(60)) - set(order.tolist()))[0]])
    assert got.shape == (60,) and np.isnan(got[missing])
    shared = [i for i in range(60) if i != missing]
    b_rows = {i: n for n, i in enumerate(b_ids)}
    want = neighbour_overlap(
        vec[shared].astype(np.float32),
        b_vec[[b_rows[ids[i]] for i in shared]].astype(np.float32),
        k=5,
    )
    np.testing.assert_allclose(got[shared], want)


def test_ivf_is_close_to_exact_on_clustered_data():
    rng = np.random.default_rng(5)
    centres = rng.standard_normal((20, 32))
    a = centres[rng.integers(0, 20, 4000)] + 0.5 * rng.standard_normal((4000, 32))
    b = a + 0.3 * rng.standard_normal(a.shape)
    a, b = a.astype(np.float32), b.astype(np.float32)
    exact = neighbour_overlap(a, b, k=10)
    approx = neighbour_overlap(a, b, k=10, method="ivf", nprobe=32)
    assert np.abs(exact - approx).mean() < 0.05


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "positive integer"),
        ({"k": 50}, "at least k \\+ 1"),
        ({"method": "hnsw"}, "method must be one of"),
    ],
)
def test_bad_input_is_explained(kwargs, message):
    x = np.eye(10, dtype=np.float32)
    with pytest.raises(ValueError, match=message):
        neighbour_overlap(x, x, **kwargs)


def test_raw_arrays_of_different_length_are_refused():
    with pytest.raises(ValueError, match="same images in the same order"):
        neighbour_overlap(np.eye(10, dtype=np.float32), np.eye(9, 10, dtype=np.float32), k=3)
