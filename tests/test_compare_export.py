"""Export: CLIP_benchmark's own ``build`` reads our JSON; predictions round-trip through Parquet;
the Workbench exports and shows ECE next to acc1."""

from __future__ import annotations

import argparse
import csv
import json
import math

import numpy as np
import pandas as pd
import pytest

import clipviz
from clipviz.compute import export_metrics, export_predictions, predictions_frame, zero_shot


@pytest.fixture(scope="module")
def emb(shapes_model):
    from clipviz.engine import embed_images

    images = clipviz.datasets.shapes(30, seed=9).to_imageset("shape")
    return embed_images(shapes_model, images, cache=False, progress=False)


@pytest.fixture(scope="module")
def pred(shapes_model, emb):
    from clipviz.engine import embed_prompts

    return zero_shot(emb, embed_prompts(shapes_model, clipviz.datasets.SHAPES, "single"), k=3)


def test_clip_benchmark_build_reads_our_json(pred, tmp_path):
    from clip_benchmark.cli import main_build

    path = tmp_path / "runs" / "shapes_clipviz.json"
    doc = export_metrics(pred, path, dataset="shapes", pretrained="bundled")
    assert list(doc) == [
        "dataset",
        "model",
        "pretrained",
        "task",
        "metrics",
        "language",
        "classnames",
    ]
    assert list(doc["metrics"]) == ["acc1", "acc5", "mean_per_class_recall"]
    out = tmp_path / "table.csv"
    main_build(argparse.Namespace(files=[str(path.parent)], output=str(out)))
    (row,) = list(csv.DictReader(out.open()))
    assert row["model_fullname"] == "clipviz-shapes bundled"
    assert float(row["acc1"]) == pytest.approx(clipviz.evaluate(pred).acc1)


def test_acc5_is_nan_with_fewer_than_five_classes_as_in_clip_benchmark(shapes_model, emb, tmp_path):
    from clipviz.engine import embed_prompts

    few = zero_shot(emb, embed_prompts(shapes_model, ["circle", "square", "star"], "single"))
    with pytest.warns(UserWarning, match="left out"):
        export_metrics(few, tmp_path / "m.json")
    assert math.isnan(json.loads((tmp_path / "m.json").read_text())["metrics"]["acc5"])


def test_predictions_round_trip_through_parquet(pred, tmp_path):
    path = export_predictions(pred, tmp_path / "p.parquet", probs=True)
    frame = pd.read_parquet(path)
    assert list(frame["id"]) == pred.ids and list(frame["predicted"]) == pred.predicted
    np.testing.assert_allclose(frame[[f"prob:{c}" for c in pred.classnames]].to_numpy(), pred.probs)
    assert (frame["logit_scale"] == np.float32(pred.logit_scale)).all()
    assert "prob:circle" not in predictions_frame(pred).columns
    with pytest.raises(ValueError, match="give a .parquet path"):
        export_predictions(pred, tmp_path / "p.csv")
    with pytest.raises(TypeError, match="Metrics or Predictions"):
        export_metrics({"acc1": 1.0})


def test_workbench_exports_and_shows_ece(shapes_model, emb, tmp_path):
    wb = clipviz.Workbench(emb, model=shapes_model, projection="pca", cache=False, k=3)
    ece = clipviz.calibration(wb.predictions).ece
    assert f"ECE {ece:.3f}" in wb.status and "acc1" in wb.status
    paths = wb.export(tmp_path)
    assert [p.name for p in paths] == ["A_metrics.json", "A_predictions.parquet"]
    assert json.loads(paths[0].read_text())["metrics"]["acc1"] == pytest.approx(wb.metrics.acc1)
