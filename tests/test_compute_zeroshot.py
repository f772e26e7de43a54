"""Ensembling and zero-shot against direct numpy computations."""

from __future__ import annotations

import numpy as np
import pytest

from clipviz.compute import ImageEmbeddings, ModelInfo, PromptEmbeddings, ensemble, zero_shot
from clipviz.compute import similarity as cos_sim

INFO = ModelInfo(key="m1", name="tiny", logit_scale=50.0, dim=8)


def _unit(rng, *shape):
    x = rng.standard_normal(shape).astype(np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _data(n=40, c=6, seed=0, labels=True):
    rng = np.random.default_rng(seed)
    classes = [f"class{i}" for i in range(c)]
    lab = [classes[i % c] for i in range(n)] if labels else None
    emb = ImageEmbeddings([f"img{i}" for i in range(n)], _unit(rng, n, 8), INFO, labels=lab)
    prm = PromptEmbeddings(classes, ["a {}"], _unit(rng, c, 8), INFO)
    return emb, prm


def test_ensemble_matches_open_clip_formula():
    rng = np.random.default_rng(1)
    raw = rng.standard_normal((4, 7, 16)) * rng.uniform(0.5, 3, (4, 7, 1))
    normed = raw / np.linalg.norm(raw, axis=-1, keepdims=True)
    mean = normed.mean(axis=1)
    expected = mean / np.linalg.norm(mean, axis=1, keepdims=True)
    got = ensemble(raw)
    assert got.dtype == np.float32 and got.shape == (4, 16)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    # one template: the ensemble is that template's normalised vector
    np.testing.assert_allclose(ensemble(raw[:, :1]), normed[:, 0], atol=1e-6)


def test_ensemble_errors():
    with pytest.raises(ValueError, match=r"shape \(3, 4\)"):
        ensemble(np.ones((3, 4)))
    with pytest.raises(ValueError, match="zero templates"):
        ensemble(np.ones((3, 0, 4)))
    bad = np.ones((2, 2, 3))
    bad[1, 0] = 0
    with pytest.raises(ValueError, match=r"index \[1, 0\]"):
        ensemble(bad)


def test_probs_equal_direct_softmax_and_topk():
    emb, prm = _data()
    pred = zero_shot(emb, prm, k=3)
    sim = emb.vectors.astype(np.float64) @ prm.vectors.T.astype(np.float64)
    logits = 50.0 * sim
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    assert pred.probs.dtype == np.float32 and pred.probs.shape == (40, 6)
    np.testing.assert_allclose(pred.similarity, sim, atol=1e-5)
    np.testing.assert_allclose(pred.probs, expected, atol=1e-5)
    np.testing.assert_allclose(cos_sim(emb, prm), sim, atol=1e-5)
    order = np.argsort(-expected, axis=1)[:, :3]
    np.testing.assert_array_equal(pred.topk_indices, order)
    np.testing.assert_allclose(pred.topk_probs, np.take_along_axis(expected, order, 1), atol=1e-5)
    assert pred.predicted == [prm.classnames[i] for i in order[:, 0]]
    np.testing.assert_allclose(pred.confidence, expected.max(1), atol=1e-5)
    assert pred.logit_scale == 50.0 and pred.ids == emb.ids


def test_k_clipped_and_validated():
    emb, prm = _data(c=4)
    pred = zero_shot(emb, prm, k=10)
    assert pred.k == 4 and pred.topk_indices.shape == (40, 4)
    assert np.all(np.diff(pred.topk_probs, axis=1) <= 0)
    np.testing.assert_allclose(pred.topk_probs.sum(1), 1, atol=1e-5)
    for bad in [0, -1, 2.5, True]:
        with pytest.raises(ValueError, match="k must be a positive integer"):
            zero_shot(emb, prm, k=bad)


def test_correct_treats_unknown_labels_as_wrong():
    emb, prm = _data(n=6, c=3)
    pred = zero_shot(emb, prm, k=1)
    emb.labels = list(pred.predicted)
    emb.labels[0] = "not a class"
    emb.labels[1] = None
    pred = zero_shot(emb, prm)
    assert pred.correct.tolist() == [False, False, True, True, True, True]
    df = pred.to_pandas()
    assert list(df.columns[:5]) == ["id", "label", "predicted", "confidence", "correct"]
    assert {"top1", "top1_prob", "top3", "top3_prob"} <= set(df.columns)
    assert "top4" not in df.columns
    assert df["top1"].tolist() == pred.predicted
    assert df.loc[0, "label"] == "not a class"


def test_no_labels():
    emb, prm = _data(labels=False)
    pred = zero_shot(emb, prm)
    assert pred.labels is None and pred.correct is None
    assert pred.to_pandas()["correct"].isna().all()


def test_mismatched_model_and_dims():
    emb, prm = _data()
    other = PromptEmbeddings(
        prm.classnames, ["a {}"], prm.vectors, ModelInfo("m2", "big", 100.0, 8)
    )
    with pytest.raises(ValueError, match="'tiny'.*'big'.*same model"):
        zero_shot(emb, other)
    with pytest.raises(ValueError, match="dimension 8 but prompt vectors 4"):
        zero_shot(emb, np.ones((3, 4), np.float32))


def test_raw_arrays():
    emb, prm = _data()
    pred = zero_shot(emb.vectors * 3.0, prm.vectors, classnames=prm.classnames, logit_scale=50.0)
    ref = zero_shot(emb, prm)
    np.testing.assert_allclose(pred.probs, ref.probs, atol=1e-5)
    assert pred.ids[:2] == ["0", "1"] and pred.classnames == prm.classnames
    assert zero_shot(emb.vectors, prm.vectors).logit_scale == 100.0
    with pytest.raises(ValueError, match="Got 2 classnames for 6"):
        zero_shot(emb.vectors, prm.vectors, classnames=["a", "b"])
    with pytest.raises(TypeError, match="got str"):
        zero_shot("images", prm)


def test_topk_ranked_by_similarity_when_probs_underflow():
    emb, prm = _data(c=6)
    pred = zero_shot(emb, prm, k=6, logit_scale=1e4)  # distant classes' probs underflow
    assert (pred.topk_probs[:, 2:] < 1e-30).mean() > 0.9
    np.testing.assert_array_equal(pred.topk_indices, np.argsort(-pred.similarity, axis=1))


def test_duplicate_classnames_and_arrays_laid_out_as_documented():
    emb, prm = _data(n=10, c=3)
    dup = PromptEmbeddings(["a", "b", "a"], ["{}"], prm.vectors, INFO)
    emb.labels = ["a"] * 5 + ["b"] * 5
    pred = zero_shot(emb, dup)
    assert pred.true_indices.tolist() == [0] * 5 + [1] * 5  # first occurrence wins
    assert pred.correct.shape == (10,)
    assert pred.probs.flags.c_contiguous
    # column-major, so a prompt edit copies or computes whole contiguous columns
    for arr in (pred.similarity, pred.topk_indices, pred.topk_probs, pred.topk_similarity):
        assert arr.flags.f_contiguous
