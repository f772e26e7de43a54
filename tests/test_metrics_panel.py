"""MetricsPanel: summary numbers and differences, per-class gain table, confusion heatmap, escaping."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from clipviz.views.metrics_panel import MetricsPanel

EVIL = "<img src=x onerror=alert(1)>"
CLASSES = ["circle", "square", EVIL]


def _metrics(acc: list[float], confusion: list[list[int]], acc1: float) -> dict:
    per_class = pd.DataFrame(
        {"n": [4, 4, 2], "accuracy": acc}, index=pd.Index(CLASSES, name="class")
    )
    conf = pd.DataFrame(confusion, index=CLASSES, columns=CLASSES)
    return {
        "acc1": acc1,
        "acc5": float("nan"),
        "mean_per_class_recall": float(np.mean(acc)),
        "n": 10,
        "per_class": per_class,
        "confusion": conf,
    }


A = _metrics([0.5, 1.0, 0.5], [[2, 2, 0], [0, 4, 0], [1, 0, 1]], acc1=0.7)
B = _metrics([1.0, 0.75, 0.5], [[4, 0, 0], [1, 3, 0], [0, 1, 1]], acc1=0.8)


def test_summary_numbers_and_difference():
    panel = MetricsPanel()
    panel.set_metrics(A, B, names=("single", "ensemble"))
    table = panel.summary_table()
    assert table.loc["acc1", "a"] == pytest.approx(0.7)
    assert table.loc["acc1", "difference"] == pytest.approx(0.1)
    assert table.loc["mean_per_class_recall", "difference"] == pytest.approx(0.25 / 3)
    html = panel.widget.children[0].value
    assert "70.0%" in html and "80.0%" in html and "+10.0 pp" in html
    assert "ensemble − single" in html and "10 labelled images" in html
    assert "–" in html  # acc5 is NaN with 3 classes: shown as a dash, not "nan%"


def test_per_class_table_sorted_by_gain_and_escaped():
    panel = MetricsPanel()
    panel.set_metrics(A, B)
    table = panel.per_class_table()
    assert list(table.index) == ["circle", EVIL, "square"]  # +50, 0, -25 points
    np.testing.assert_allclose(table["difference"], [0.5, 0.0, -0.25])
    html = panel.widget.children[1].value
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert html.index("circle") < html.index("square")
    assert "+50.0 pp" in html and "-25.0 pp" in html


def test_single_set_shows_worst_classes_first_and_hides_the_toggle():
    panel = MetricsPanel()
    panel.set_metrics(A)
    assert list(panel.per_class_table().index) == ["circle", EVIL, "square"]
    assert "b" not in panel.summary_table()
    assert panel.widget.children[2].layout.display == "none"


def test_confusion_heatmap_rows_normalised_with_counts_and_switchable():
    panel = MetricsPanel()
    panel.set_metrics(A, B)
    trace = panel.figure.data[0]
    np.testing.assert_allclose(np.asarray(trace.z)[0], [0.5, 0.5, 0.0])
    assert np.asarray(trace.text)[0].tolist() == ["2", "2", "0"]
    assert "<img" not in json.dumps(panel.figure.to_plotly_json(), default=str)
    panel.widget.children[2].value = "b"  # the A/B toggle is linked to confusion_of
    assert panel.confusion_of == "b"
    np.testing.assert_allclose(np.asarray(panel.figure.data[0].z)[1], [0.25, 0.75, 0.0])
    assert "confusion, B" in panel.figure.layout.title.text


def test_confusion_is_cut_to_the_classes_with_most_errors():
    names = [f"c{i}" for i in range(6)]
    conf = np.diag([5] * 6)
    conf[4, 5] = 3  # c4 and c5 confused: the two classes with errors
    metrics = {"acc1": 0.9, "acc5": 1.0, "mean_per_class_recall": 0.9}
    metrics["confusion"] = pd.DataFrame(conf, index=names, columns=names)
    panel = MetricsPanel(max_classes=2)
    panel.set_metrics(metrics)
    assert sorted(panel.confusion_matrix().index) == ["c4", "c5"]
    assert "classes with most errors" in panel.figure.layout.title.text


def test_real_metrics_object_from_compute_is_accepted():
    compute = pytest.importorskip("clipviz.compute")
    from clipviz.compute.zeroshot import Predictions

    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], np.float32)
    pred = Predictions(
        ids=["a", "b", "c"],
        classnames=["cat", "dog"],
        probs=probs,
        similarity=probs,
        topk_indices=np.argsort(-probs, axis=1),
        topk_probs=-np.sort(-probs, axis=1),
        labels=["cat", "dog", "dog"],
    )
    metrics = compute.evaluate(pred)
    panel = MetricsPanel()
    panel.set_metrics(metrics)
    assert panel.summary_table().loc["acc1", "a"] == pytest.approx(2 / 3)
    assert panel.per_class_table().loc["dog", "a"] == pytest.approx(0.5)
    np.testing.assert_allclose(np.asarray(panel.figure.data[0].z)[1], [0.5, 0.5])


def test_clear_and_bad_input():
    panel = MetricsPanel()
    panel.widget  # noqa: B018
    panel.clear()
    assert "no true labels" in panel.widget.children[0].value
    with pytest.raises(ValueError, match=r"lacks \['acc5', 'mean_per_class_recall'\]"):
        panel.set_metrics({"acc1": 0.5})
    with pytest.raises(TypeError, match="must be a clipviz.compute.Metrics or a dict"):
        panel.set_metrics([0.5])
    bad = dict(A, per_class=pd.DataFrame({"recall": [1.0]}, index=["x"]))
    with pytest.raises(ValueError, match="needs an 'accuracy' column"):
        panel.set_metrics(bad)


def test_a_class_only_set_b_names_gets_b_support_and_renders():
    # Set B names "blob", which A lacks: A's support is missing for it (a crash once: int(NaN)).
    b = _metrics([1.0, 0.75, 0.5], [[4, 0, 0], [1, 3, 0], [0, 1, 1]], acc1=0.8)
    b["per_class"] = pd.DataFrame(
        {"n": [4, 4, 0], "accuracy": [1.0, 0.75, float("nan")]},
        index=pd.Index(["circle", "square", "blob"], name="class"),
    )
    panel = MetricsPanel()
    panel.set_metrics(A, b)
    table = panel.per_class_table()
    assert table.loc["blob", "n"] == 0  # B's count, not NaN
    assert table.loc[EVIL, "n"] == 2  # only in A: A's count
    html = panel.widget.children[1].value
    assert "<td>blob</td><td>0</td>" in html


def test_no_confusion_hides_the_figure_instead_of_an_empty_plot():
    panel = MetricsPanel()
    widget = panel.widget
    box = widget.children[-1]
    assert box.layout.display == "none"  # nothing to draw yet
    panel.set_metrics(A)
    assert box.layout.display == ""
    panel.clear()
    assert box.layout.display == "none"
