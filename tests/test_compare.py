"""Comparison on real forward passes: the bundled model (A) against its untrained init (B).

Asserts on the views' state (headless): per-class table, disagreement filter in both grids,
selection linked by id across maps, grids and the overlap histogram, temperature rescoring,
export. Any two ClipModels work; B is the step-0 checkpoint because there is no second bundled model.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")

import clipviz  # noqa: E402
from clipviz.compute import calibration, neighbour_overlap  # noqa: E402


@pytest.fixture(scope="module")
def early_model(tmp_path_factory):
    """The bundled architecture at step 0 of training (seeded init), exported and loaded."""
    from clipviz.train.export import export
    from clipviz.train.loop import build_model

    folder = export(build_model(seed=1), tmp_path_factory.mktemp("early") / "model")
    return clipviz.load_model(f"local-dir:{folder}", device="cpu")


@pytest.fixture(scope="module")
def images():
    return clipviz.datasets.shapes(40, seed=5).to_imageset("shape")


@pytest.fixture(scope="module")
def embedded(images, shapes_model, early_model):
    from clipviz.engine import embed_images

    return [
        embed_images(m, images, cache=False, progress=False) for m in (shapes_model, early_model)
    ]


@pytest.fixture
def cmp(images, shapes_model, early_model, embedded):
    return clipviz.Comparison(
        images,
        shapes_model,
        early_model,
        embeddings_a=embedded[0],
        embeddings_b=embedded[1],
        names=("bundled", "early"),
        cache=False,
        k=3,
        neighbours=5,
    )


def test_both_sides_are_scored_by_their_own_model(cmp):
    a, b = cmp.a, cmp.b
    assert a.model.info.key != b.model.info.key
    assert a.metrics.acc1 > 0.8 > b.metrics.acc1  # the early checkpoint has barely learned
    table = cmp.per_class()
    assert list(table.columns) == [
        "n_bundled",
        "accuracy_bundled",
        "n_early",
        "accuracy_early",
        "difference",
    ]
    assert table.loc["(all) acc1", "difference"] == pytest.approx(b.metrics.acc1 - a.metrics.acc1)
    assert cmp.views["metrics"].summary_table() is not None
    expected = neighbour_overlap(a.embeddings, b.embeddings, k=5)
    np.testing.assert_allclose(cmp.overlap, expected)
    assert 0.0 <= cmp.overlap.mean() < 0.9  # different spaces, different neighbourhoods


def test_disagreement_filter_shows_the_same_images_in_both_grids(cmp):
    disagree = np.asarray(cmp.a.predictions.predicted) != np.asarray(cmp.b.predictions.predicted)
    assert disagree.sum() > 0
    cmp.disagreements_only = True
    for name in ("grid_a", "grid_b"):
        shown = [cmp.ids[i] for i in cmp.views[name].order]
        assert sorted(shown) == sorted(np.asarray(cmp.ids)[disagree].tolist())
    overlaps = cmp.overlap[cmp.views["grid_a"].order]
    assert (np.diff(overlaps) >= 0).all()  # most changed neighbourhood first
    cmp.disagreements_only = False
    assert len(cmp.views["grid_a"].order) == len(cmp.ids)


def test_selection_in_one_map_reaches_the_other_map_and_grids(cmp):
    chosen = cmp.ids[3:9]
    cmp.views["map_a"].selection = chosen  # as a lasso in map A reports it
    assert cmp.selection == chosen
    for name in ("map_b", "grid_a", "grid_b", "overlap"):
        assert cmp.views[name].selection == chosen


def test_brushing_the_histogram_selects_by_overlap(cmp):
    low, high = 0.0, float(np.quantile(cmp.overlap, 0.3))
    ids = cmp.select_overlap(low, high)
    want = [i for i, v in zip(cmp.ids, cmp.overlap, strict=True) if low <= v <= high]
    assert ids == want and len(ids) > 0
    assert cmp.views["map_b"].selection == want
    hist = cmp.views["overlap"]
    brushed = hist.figure.data[1].y
    assert int(np.sum(brushed)) == len(want)


def test_prompt_edit_updates_both_sides_once(cmp):
    before = cmp.updates
    cmp.prompts = ["circle", "square", "star"]
    assert cmp.updates == before + 1
    for run in cmp.runs:
        assert run.predictions.classnames == ["circle", "square", "star"]
    assert cmp.views["grid_b"].classnames == ["circle", "square", "star"]
    assert "acc1" in cmp.summary and "ECE" in cmp.summary


def test_edits_score_only_new_prompts_and_match_a_fresh_zero_shot(cmp):
    from clipviz.compute import zero_shot

    for lines in (["circle", "square", "star"], ["circle", "square", "star", "a blue shape"],
                  ["circle", "star", "a blue shape"]):  # fmt: skip
        cmp.prompts = lines
        for run in cmp.runs:
            fresh = zero_shot(run.embeddings, run.prompts, k=cmp.k, label_codes=cmp.label_codes)
            np.testing.assert_array_equal(run.raw.topk_indices, fresh.topk_indices)
            # a new column is one matrix-vector product: its last float32 bit may differ
            # from the full product's, a few 1e-6 of relative probability at scale 100
            np.testing.assert_allclose(run.raw.probs, fresh.probs, rtol=1e-5, atol=1e-6)


def test_temperature_rescores_live_and_fit_lowers_ece_or_nll(cmp):
    from clipviz.compute.calibration import nll

    ece_before = cmp.a.calibration.ece
    cmp.scale_a = 5.0
    assert cmp.a.predictions.logit_scale == 5.0
    assert cmp.a.calibration.ece == pytest.approx(calibration(cmp.a.predictions).ece)
    assert cmp.a.calibration.ece != pytest.approx(ece_before)
    grid_probs = cmp.views["grid_a"].page_items()[0]["topk"][0][1]
    assert grid_probs == pytest.approx(float(cmp.a.predictions.topk_probs[0, 0]), abs=1e-4)
    fitted = cmp.fit_temperature()
    assert cmp.scale_a == pytest.approx(fitted["bundled"])
    assert nll(cmp.a.raw, cmp.scale_a) <= nll(cmp.a.raw, 5.0)
    assert "ECE" in cmp.views["reliability"].legend[0]


def test_bad_scale_is_refused_and_state_kept(cmp):
    scale = cmp.scale_b
    with pytest.raises(Exception, match="positive number"):
        cmp.scale_b = -1.0
    assert cmp.scale_b == scale


def test_prompt_sets_a_b_with_one_model(images, shapes_model):
    one = clipviz.Comparison(
        images,
        shapes_model,
        cache=False,
        k=3,
        prompts_b=['"a photo of a circle"', "square", "star"],
        classnames=["circle", "square", "star"],
    )
    assert one.b.embeddings is one.a.embeddings or np.shares_memory(
        one.b.embeddings.vectors, one.a.embeddings.vectors
    )
    assert np.allclose(one.overlap, 1.0)
    assert one.b.predictions.classnames == ["a photo of a circle", "square", "star"]
    # other names on side B: top-1 columns alone would miss that "circle" != "a photo of ..."
    by_name = np.asarray(one.a.predictions.predicted) != np.asarray(one.b.predictions.predicted)
    np.testing.assert_array_equal(one.disagreements, by_name)
    assert by_name.any()


def test_one_model_on_both_sides_encodes_each_new_prompt_once(images, shapes_model, cmp):
    one = clipviz.Comparison(images, shapes_model, shapes_model, cache=False, k=3,
                             classnames=["circle", "square", "star"])
    def encodes(c):  # texts through a model, summed over the distinct caches
        return sum({id(run.texts): run.texts.encoded for run in c.runs}.values())

    before = encodes(one)
    one.prompts = ["circle", "square", "star", "a brand new shape"]
    assert encodes(one) == before + 1  # one new text, one encode, for both sides
    np.testing.assert_array_equal(one.a.prompts.vectors, one.b.prompts.vectors)
    before = [run.texts.encoded for run in cmp.runs]  # two different models: one encode each
    cmp.prompts = ["circle", "square", "star", "another new shape"]
    assert [run.texts.encoded for run in cmp.runs] == [n + 1 for n in before]


def test_export_writes_clip_benchmark_json_and_parquet(cmp, tmp_path):
    import pandas as pd

    paths = cmp.export(tmp_path)
    doc = json.loads((tmp_path / "bundled_metrics.json").read_text())
    assert set(doc) >= {"dataset", "model", "pretrained", "task", "metrics", "language"}
    assert doc["task"] == "zeroshot_classification"
    assert doc["metrics"]["acc1"] == pytest.approx(cmp.a.metrics.acc1)
    frame = pd.read_parquet(tmp_path / "early_predictions.parquet")
    assert list(frame["id"]) == cmp.ids and len(paths) == 4
    assert (frame["predicted"] == cmp.b.predictions.predicted).all()


def test_widget_builds_and_escapes_the_summary(cmp):
    box = cmp.widget
    assert "clipviz-comparison" in box._dom_classes
    assert "<" not in cmp._summary_html.value.split(">", 1)[1].rsplit("<", 1)[0]


def _with_class(widget, cls):
    found = [widget] if cls in getattr(widget, "_dom_classes", ()) else []
    for child in getattr(widget, "children", ()):
        found += _with_class(child, cls)
    return found


def test_metrics_are_one_click_away_and_show_the_latest_edit_when_opened(cmp):
    # closed, as in the Workbench: a prompt edit does not draw the panel's widgets
    (accordion,) = _with_class(cmp.widget, "clipviz-metrics-accordion")
    panel = cmp.views["metrics"]
    assert accordion.selected_index is None and panel._widget is None
    cmp.prompts = ["circle", "square", "triangle"]
    assert panel._widget is None
    accordion.selected_index = 0  # a click on its title
    (box,) = _with_class(accordion, "clipviz-metrics")
    assert accordion.children == (box,)
    shown = panel._summary_html.value
    assert f"{100 * cmp.a.metrics.acc1:.1f}%" in shown and f"{100 * cmp.b.metrics.acc1:.1f}%" in shown
    assert set(panel.confusion_matrix().columns) <= {"circle", "square", "triangle"}
