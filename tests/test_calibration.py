"""Calibration (ECE, bins) against torchmetrics, fit_temperature against a brute-force grid.

Predictions come from the bundled model's real forward passes on generated shapes.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from clipviz.compute import calibration, fit_temperature, rescale, zero_shot
from clipviz.compute.calibration import nll


@pytest.fixture(scope="module")
def pred(shapes_model):
    import clipviz
    from clipviz.engine import embed_images, embed_prompts

    images = clipviz.datasets.shapes(120, seed=11).to_imageset("shape")
    emb = embed_images(shapes_model, images, cache=False, progress=False)
    prompts = embed_prompts(shapes_model, clipviz.datasets.SHAPES, "single")
    return zero_shot(emb, prompts, k=3)


def _torchmetrics_ece(p, n_bins):
    import torch
    from torchmetrics.classification import MulticlassCalibrationError

    metric = MulticlassCalibrationError(num_classes=len(p.classnames), n_bins=n_bins, norm="l1")
    return float(metric(torch.tensor(np.array(p.probs)), torch.tensor(np.array(p.true_indices))))


@pytest.mark.parametrize("scale", [5.0, 12.0, 30.0])
@pytest.mark.parametrize("n_bins", [10, 15])
def test_ece_matches_torchmetrics(pred, scale, n_bins):
    p = rescale(pred, scale)
    conf = p.confidence.astype(np.float64) * n_bins
    # the conventions differ only for a confidence exactly on a bin edge; there is none here
    assert not np.any(np.isclose(conf, np.round(conf), rtol=0, atol=1e-6))
    ours = calibration(p, n_bins=n_bins)
    assert ours.ece == pytest.approx(_torchmetrics_ece(p, n_bins), abs=1e-5)
    assert ours.bins["count"].sum() == ours.n == len(p)


def test_bins_hold_counts_confidence_and_accuracy(pred):
    p = rescale(pred, 12.0)
    cal = calibration(p, n_bins=5)
    bins = cal.bins
    assert list(bins.columns) == ["lower", "upper", "count", "confidence", "accuracy", "gap"]
    conf, hit = p.confidence, p.correct
    for _, row in bins[bins["count"] > 0].iterrows():
        inside = (conf > row["lower"]) & (conf <= row["upper"])
        assert row["count"] == inside.sum()
        assert row["accuracy"] == pytest.approx(hit[inside].mean())
        assert row["confidence"] == pytest.approx(conf[inside].mean(), rel=1e-6)
    assert bins.loc[bins["count"] == 0, "accuracy"].isna().all()


def test_confidence_of_exactly_one_is_in_the_last_bin(pred):
    p = rescale(pred, 1000.0)  # saturated: float32 top-1 probabilities round to 1.0
    assert (p.confidence == 1.0).any()
    cal = calibration(p, n_bins=15)
    assert cal.bins["count"].iloc[-1] >= (p.confidence == 1.0).sum()
    assert cal.bins["count"].sum() == len(p)


def test_fit_temperature_is_the_grid_minimum(pred):
    fitted = fit_temperature(pred)
    grid = np.geomspace(0.5, 500, 2001)
    losses = np.array([nll(pred, s) for s in grid])
    best = grid[np.argmin(losses)]
    assert fitted == pytest.approx(best, rel=0.01)  # grid spacing is 0.35%
    assert nll(pred, fitted) <= losses.min() + 1e-9
    assert fitted != pytest.approx(pred.logit_scale, rel=0.05)  # it did move from the start


def test_fit_temperature_warm_start_path_agrees(pred):
    # > 80k rows takes the subsample warm start; repeating the rows keeps the optimum
    big = dataclasses.replace(
        pred,
        ids=[str(i) for i in range(len(pred) * 700)],
        similarity=np.tile(pred.similarity, (700, 1)),
        labels=list(pred.labels) * 700,
    )
    assert fit_temperature(big) == pytest.approx(fit_temperature(pred), rel=1e-4)


def test_temperature_improves_nll_not_accuracy(pred):
    fitted = rescale(pred, fit_temperature(pred))
    assert nll(pred, fitted.logit_scale) < nll(pred, pred.logit_scale)
    np.testing.assert_array_equal(fitted.topk_indices, pred.topk_indices)
    np.testing.assert_allclose(fitted.probs.sum(axis=1), 1.0, atol=1e-5)


def test_unlabelled_and_bad_input_are_explained(pred):
    bare = dataclasses.replace(pred, labels=None)
    with pytest.raises(ValueError, match="needs true labels"):
        calibration(bare)
    with pytest.raises(ValueError, match="needs true labels"):
        fit_temperature(bare)
    with pytest.raises(ValueError, match="n_bins must be a positive integer"):
        calibration(pred, n_bins=0)
    with pytest.raises(ValueError, match="logit_scale must be a positive"):
        rescale(pred, -1.0)
    strangers = dataclasses.replace(pred, labels=["dog"] * len(pred))
    with pytest.raises(ValueError, match="none of the true labels"):
        calibration(strangers)


def test_labels_outside_the_classnames_are_left_out(pred):
    labels = list(pred.labels)
    labels[:10] = ["dog"] * 10
    partial = dataclasses.replace(pred, labels=labels)
    assert calibration(partial).n == len(pred) - 10
