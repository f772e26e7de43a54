"""Metrics against a hand-computed case and sklearn; nearest-neighbour search."""

from __future__ import annotations

import numpy as np
import pytest

from clipviz.compute import ImageEmbeddings, ModelInfo, PromptEmbeddings, evaluate, zero_shot
from clipviz.compute.search import nearest
from clipviz.compute.zeroshot import Predictions

INFO = ModelInfo(key="m", name="tiny", logit_scale=100.0, dim=4)


def _pred(labels, predicted, classes, probs=None):
    idx = {c: i for i, c in enumerate(classes)}
    top = np.array([[idx[p]] for p in predicted])
    n, c = len(predicted), len(classes)
    if probs is None:
        probs = np.full((n, c), 0.1 / max(c - 1, 1), np.float32)
        probs[np.arange(n), top[:, 0]] = 0.9
    return Predictions(
        [str(i) for i in range(n)], classes, probs, probs.copy(), top, probs[:, :1], labels
    )


def test_hand_computed_case():
    classes = ["cat", "dog", "fox"]
    labels = ["cat", "cat", "cat", "cat", "dog", "dog", "fox"]
    predicted = ["cat", "cat", "cat", "dog", "dog", "cat", "cat"]
    m = evaluate(_pred(labels, predicted, classes))
    assert m.acc1 == pytest.approx(4 / 7)
    assert np.isnan(m.acc5)  # fewer than 5 classes, as in CLIP_benchmark
    assert m.mean_per_class_recall == pytest.approx((3 / 4 + 1 / 2 + 0) / 3)
    assert m.n == 7 and m.excluded_labels == {}
    assert m.confusion.loc["cat"].tolist() == [3, 1, 0]
    assert m.confusion.loc["dog"].tolist() == [1, 1, 0]
    assert m.confusion.loc["fox"].tolist() == [1, 0, 0]
    assert m.confusion.index.name == "true" and m.confusion.columns.name == "predicted"
    assert m.per_class.loc["cat", "precision"] == pytest.approx(3 / 5)
    assert m.per_class["n"].tolist() == [4, 2, 1]
    assert set(m.as_dict()) == {"acc1", "acc5", "mean_per_class_recall", "n"}


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_against_sklearn_with_absent_class_and_unknown_labels():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    classes = [f"c{i}" for i in range(7)]
    true = rng.integers(0, 6, 300)  # class c6 never occurs as a true label
    vectors = rng.standard_normal((300, 4)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    protos = rng.standard_normal((7, 4)).astype(np.float32)
    protos /= np.linalg.norm(protos, axis=1, keepdims=True)
    labels = [classes[t] for t in true] + ["unknown", "unknown"]
    vectors = np.vstack([vectors, vectors[:2]])
    emb = ImageEmbeddings([str(i) for i in range(302)], vectors, INFO, labels=labels)
    prm = PromptEmbeddings(classes, ["{}"], protos, INFO)
    pred = zero_shot(emb, prm, k=2)  # fewer than 5 kept: acc5 must rank again from probs
    with pytest.warns(UserWarning, match=r"2 images .*'unknown': 2"):
        m = evaluate(pred)
    top1 = pred.topk_indices[:300, 0]
    assert m.n == 300 and m.excluded_labels == {"unknown": 2}
    assert m.acc1 == pytest.approx(metrics.accuracy_score(true, top1))
    assert m.mean_per_class_recall == pytest.approx(metrics.balanced_accuracy_score(true, top1))
    np.testing.assert_array_equal(
        m.confusion.to_numpy(), metrics.confusion_matrix(true, top1, labels=range(7))
    )
    acc5 = metrics.top_k_accuracy_score(true, pred.similarity[:300], k=5, labels=range(7))
    assert m.acc5 == pytest.approx(acc5)
    assert np.isnan(m.per_class.loc["c6", "accuracy"])


def test_errors_without_usable_labels():
    with pytest.raises(ValueError, match="no true labels"):
        evaluate(_pred(None, ["a"], ["a", "b"]))
    with pytest.raises(ValueError, match=r"None of the true labels \('x', 'y'\)"):
        evaluate(_pred(["x", "y"], ["a", "b"], ["a", "b"]))


def test_compare_per_class_difference():
    classes = ["cat", "dog"]
    labels = ["cat", "cat", "dog", "dog"]
    a = evaluate(_pred(labels, ["cat", "dog", "dog", "dog"], classes))
    b = evaluate(_pred(labels, ["cat", "cat", "cat", "dog"], classes))
    table = a.compare(b)
    assert table.loc["cat", "accuracy_a"] == 0.5 and table.loc["cat", "accuracy_b"] == 1.0
    assert table.loc["cat", "difference"] == pytest.approx(0.5)
    assert table.loc["dog", "difference"] == pytest.approx(-0.5)
    assert table.loc["(all) acc1", "difference"] == pytest.approx(0.0)


def test_nearest_single_many_and_exclude():
    rng = np.random.default_rng(0)
    v = rng.standard_normal((50, 8)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    full = v @ v.T
    idx, sc = nearest(v, v[7] * 5.0, k=4)  # query normalised
    assert idx.shape == (4,) and idx[0] == 7 and sc[0] == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_array_equal(idx, np.argsort(-full[7])[:4])
    idx, sc = nearest(v, v[7], k=4, exclude=7)
    assert 7 not in idx
    np.testing.assert_array_equal(idx, np.argsort(-full[7])[1:5])
    idx, sc = nearest(v, v[[1, 2, 3]], k=3, exclude=[1, 2, 3])
    assert idx.shape == (3, 3) and all(i not in row for i, row in zip([1, 2, 3], idx, strict=True))
    assert np.all(np.diff(sc, axis=1) <= 0)
    assert nearest(v, v[0], k=500)[0].shape == (50,)
    with pytest.raises(ValueError, match="dimension 3"):
        nearest(v, np.ones(3))
    with pytest.raises(ValueError, match="one integer row index per query"):
        nearest(v, v[:2], exclude=1)
    with pytest.raises(ValueError, match="out of range"):
        nearest(v, v[0], exclude=50)
