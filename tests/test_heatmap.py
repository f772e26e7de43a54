"""SimilarityHeatmap: row order, click -> selection, aggregation of large N, escaping."""

from __future__ import annotations

import json

import numpy as np
import pytest

from clipviz.views._plotting import record_messages
from clipviz.views.heatmap import SimilarityHeatmap

EVIL = "<img src=x onerror=alert(1)>"
PROMPTS = ["a circle", "a square", EVIL]


def _small():
    ids = ["img0", "img1", "img2", "img3", "img4"]
    labels = ["square", "circle", "square", "circle", "circle"]
    predicted = ["circle", "circle", "square", "square", "circle"]
    sim = np.arange(15, dtype=np.float32).reshape(5, 3) / 15
    view = SimilarityHeatmap()
    view.set_data(sim, ids, PROMPTS, labels=labels, predicted=predicted)
    return view, sim, ids


def _point_event(view, name: str, row: int, col: int) -> None:
    """A heatmap click/hover as the page reports it: index = [row, column], x/y = names."""
    trace = view.figure.data[0]
    point = {"trace": 0, "index": [row, col], "x": trace.x[col], "y": trace.y[row]}
    content = {"type": "event", "event": name, "points": [point], "groups": []}
    view.figure._handle_custom_msg(content, [])


def _click(view, row: int, col: int) -> None:
    _point_event(view, "plotly_click", row, col)


def test_order_by_label_predicted_and_input():
    view, sim, ids = _small()
    trace = view.figure.data[0]
    # label order: circles (1, 3, 4) then squares (0, 2), stable within a group
    assert list(trace.y) == ["img1", "img3", "img4", "img0", "img2"]
    np.testing.assert_allclose(np.asarray(trace.z), sim[[1, 3, 4, 0, 2]], atol=1e-4)
    view.order = "predicted"
    assert list(view.figure.data[0].y) == ["img0", "img1", "img4", "img2", "img3"]
    view.order = "input"
    assert list(view.figure.data[0].y) == ids
    np.testing.assert_allclose(np.asarray(view.figure.data[0].z), sim, atol=1e-4)


def test_late_views_get_the_current_heatmap():
    view, _, ids = _small()
    view.order = "input"
    view.selection = ["img2"]
    state = view.figure.get_state()
    assert list(state["_data"][0]["y"]) == ids
    assert state["_layout"]["shapes"][0]["y0"] == 1.5
    assert state["_data"][0]["z"]["dtype"] == "float32"  # binary rows, not JSON numbers


def test_missing_labels_fall_back_and_say_so():
    view = SimilarityHeatmap()
    view.set_data(np.eye(3), ["a", "b", "c"], ["x", "y", "z"], predicted=["z", "x", "y"])
    assert list(view.figure.data[0].y) == ["b", "c", "a"]  # predicted order
    assert "no true labels: rows in predicted order" in view.figure.layout.title.text


def test_click_selects_the_image_of_that_row_in_the_current_order():
    view, _, ids = _small()
    reported = []
    view.observe(lambda c: reported.append(c["new"]), names="selection")
    _click(view, 3, 1)  # label order row 3 = img0
    assert view.selection == ["img0"]
    assert view.click == ("img0", "a square")
    assert reported == [["img0"]]
    shapes = view.figure.layout.shapes
    assert len(shapes) == 1 and (shapes[0]["y0"], shapes[0]["y1"]) == (2.5, 3.5)


def test_selection_from_python_outlines_rows_merging_runs():
    view, _, _ = _small()
    view.selection = ["img1", "img3", "img2", "unknown"]  # label order rows 0, 1 and 4
    spans = sorted((s["y0"], s["y1"]) for s in view.figure.layout.shapes)
    assert spans == [(-0.5, 1.5), (3.5, 4.5)]
    view.selection = []
    assert view.figure.layout.shapes == []


def test_hover_reports_image_prompt_and_value():
    view, sim, _ = _small()
    view.widget  # noqa: B018 - builds the hover panel
    view.set_thumbnails([b"\xff\xd8\xff\xe0jpeg"] * 5)
    _point_event(view, "plotly_hover", 0, 2)  # label order row 0 = img1
    assert view.hover == "img1"
    caption = view._panel.caption.value
    assert f"cosine: {sim[1, 2]:.3f}" in caption
    assert "&lt;img src=x onerror=alert(1)&gt;" in caption and "<img" not in caption
    assert view._panel.image.format == "jpeg"


def test_large_n_is_one_row_per_class_with_a_drill_down_into_the_selection():
    n, c = 12_000, 4
    rng = np.random.default_rng(0)
    sim = rng.uniform(-1, 1, size=(n, c)).astype(np.float32)
    classes = ["circle", "square", "star"]
    labels = [classes[i % 3] for i in range(n)]
    ids = [f"i{i}" for i in range(n)]
    view = SimilarityHeatmap(max_rows=1000)
    fig = view.figure
    with record_messages(fig) as sent:
        view.set_data(sim, ids, PROMPTS + ["x"], labels=labels)
    rows = view.row_ids
    assert list(fig.data[0].y) == [
        "circle · 4,000 images",
        "square · 4,000 images",
        "star · 4,000 images",
    ]
    assert {labels[int(i[1:])] for i in rows[0]} == {"circle"} and len(rows[0]) == 4000
    np.testing.assert_allclose(np.asarray(fig.data[0].z)[0], sim[0::3].mean(axis=0), atol=1e-4)
    assert "12,000 images: one row per class" in fig.layout.title.text
    # plotly does not wrap a title: one line that fits a pane ~500 px wide at 12 px
    assert len(fig.layout.title.text) <= 60, fig.layout.title.text
    assert fig.data[0].colorbar.title.text == "cosine<br>similarity"  # the values' name
    # no true labels as well (an unlabelled collection): one note a line, the margin grown
    unlabelled = SimilarityHeatmap()
    unlabelled.set_data(sim, ids, PROMPTS + ["x"], predicted=labels)
    lines = unlabelled.figure.layout.title.text.split("<br>")
    assert len(lines) == 2 and max(len(line) for line in lines) <= 60, lines
    assert unlabelled.figure.layout.margin.b > fig.layout.margin.b
    assert sum(j + b for j, b in sent) < 20_000  # three rows, not 12,000
    _click(view, 1, 0)
    assert view.selection == rows[1] and view.click == (rows[1][0], "a circle")
    # a selection of many images: its mean per class, below the class rows
    assert list(fig.data[0].y)[3:] == ["selected · square · 4,000"]
    view.selection = ["i0", "i1", "i4"]  # a few: one row each
    assert list(fig.data[0].y)[3:] == ["▸ i0", "▸ i1", "▸ i4"]
    np.testing.assert_allclose(np.asarray(fig.data[0].z)[3:], sim[[0, 1, 4]], atol=1e-4)
    outlined = [(s["y0"], s["y1"]) for s in fig.layout.shapes]
    assert outlined == [(-0.5, 1.5), (2.5, 5.5)]  # circle and square rows, then the drill-down
    view.selection = []
    assert len(fig.data[0].y) == 3


def test_integer_codes_give_the_same_rows_as_strings():
    n = 3000
    sim = np.random.default_rng(1).uniform(size=(n, 2)).astype(np.float32)
    names = ["b", "a", "c"]
    codes = np.arange(n) % 3
    ids = [str(i) for i in range(n)]
    by_codes, by_strings = SimilarityHeatmap(max_rows=100), SimilarityHeatmap(max_rows=100)
    by_codes.set_data(sim, ids, ["p", "q"], labels=(codes, names))
    by_strings.set_data(sim, ids, ["p", "q"], labels=[names[c] for c in codes])
    assert sorted(map(tuple, by_codes.row_ids)) == sorted(map(tuple, by_strings.row_ids))
    with pytest.raises(ValueError, match=r"codes have shape \(2,\)"):
        by_codes.set_data(sim, ids, ["p", "q"], labels=(np.zeros(2, int), names))


def test_input_order_at_large_n_averages_runs_of_images():
    n = 2500
    sim = np.arange(2 * n, dtype=np.float32).reshape(n, 2)
    view = SimilarityHeatmap(max_rows=1000)
    view.order = "input"
    view.set_data(sim, [str(i) for i in range(n)], ["p", "q"])
    rows = view.row_ids
    assert len(rows) == 834 and rows[0] == ["0", "1", "2"] and rows[-1] == ["2499"]
    np.testing.assert_allclose(np.asarray(view.figure.data[0].z)[0], sim[:3].mean(axis=0))


def test_quotes_are_escaped_once_and_the_title_clears_rotated_labels():
    prompts = [f'"a {c} thing" with a long tail' for c in "abcdefgh"]  # 8 long prompts
    view = SimilarityHeatmap()
    view.set_data(np.zeros((2, 8), np.float32), ['say "hi"', "b"], prompts, labels=['"q"', "x"])
    fig = view.figure
    assert list(fig.data[0].x)[0] == '"a a thing" with a long tail'  # not &quot;
    assert "&quot;" not in json.dumps(fig.to_plotly_json(), default=str)
    assert 'say "hi"' in list(fig.data[0].y)
    assert fig.layout.title.yanchor == "top" and fig.layout.title.y < 0.1  # below the plot
    assert fig.layout.margin.t >= 7 * len(prompts[0])  # room for labels turned 90 degrees


def test_escaping_of_ids_prompts_and_group_names():
    sim = np.zeros((2, 3), np.float32)
    view = SimilarityHeatmap()
    view.set_data(sim, [EVIL + ".png", "ok"], PROMPTS, labels=[EVIL, "x"])
    payload = json.dumps(view.figure.to_plotly_json(), default=str)
    assert "<img" not in payload
    assert "&lt;img src=x onerror=alert(1)&gt;.png" in view.figure.data[0].y
    small = SimilarityHeatmap(max_rows=1)
    small.set_data(sim, ["a", "b"], PROMPTS, labels=[EVIL, EVIL])
    assert "<img" not in json.dumps(small.figure.to_plotly_json(), default=str)


def test_duplicate_prompts_stay_separate_columns():
    view = SimilarityHeatmap()
    view.set_data(np.zeros((1, 2)), ["a"], ["dog", "dog"])
    assert list(view.figure.data[0].x) == ["dog", "dog (2)"]


@pytest.mark.parametrize(
    ("sim", "message"),
    [
        (np.zeros((2, 2)), r"shape \(images, prompts\) = \(3, 3\), got \(2, 2\)"),
        (np.full((3, 3), np.nan), "NaN or infinite"),
        (np.array([[0, 1, np.inf], [0, -np.inf, 0], [0, 0, 0]]), "NaN or infinite"),
        (np.full((3, 3), 3e38), None),  # finite, though its sum overflows to inf
    ],
)
def test_bad_input_is_explained(sim, message):
    if message is None:
        SimilarityHeatmap().set_data(sim, ["a", "b", "c"], ["x", "y", "z"])
        return
    with pytest.raises(ValueError, match=message):
        SimilarityHeatmap().set_data(sim, ["a", "b", "c"], ["x", "y", "z"])
    with pytest.raises(ValueError, match="max_rows must be at least 1"):
        SimilarityHeatmap(max_rows=0)


def test_column_major_similarities_give_the_same_class_means():
    """zero_shot's similarities are column-major: grouped one column at a time, equal."""
    from clipviz.views import _heatmap_rows as hr

    rng = np.random.default_rng(0)
    sim = rng.standard_normal((5000, 7)).astype(np.float32)
    codes = rng.integers(0, 4, 5000)
    rows = np.flatnonzero(codes != 2)[::3]
    for subset in (None, rows):
        means, counts = hr.group_means(sim, codes, 5, subset)
        f_means, f_counts = hr.group_means(np.asfortranarray(sim), codes, 5, subset)
        np.testing.assert_array_equal(counts, f_counts)
        np.testing.assert_allclose(f_means, means, rtol=1e-5, atol=1e-6)
        picked = np.arange(5000) if subset is None else subset
        present = np.flatnonzero(counts)
        expected = [sim[picked][codes[picked] == g].mean(axis=0) for g in present]
        np.testing.assert_allclose(f_means[present], expected, rtol=1e-4, atol=1e-6)
        assert counts[4] == 0 and (f_means[4] == 0).all()


def test_class_means_of_kept_columns_are_reused_and_equal_a_fresh_view(monkeypatch):
    """column_keys: a prompt edit computes the class means of its new columns only; every
    step equals a heatmap drawn from scratch (a stale or misplaced column would show)."""
    from clipviz.views import _heatmap_rows as hr

    rng = np.random.default_rng(1)
    n = 300
    ids = [f"i{i}" for i in range(n)]
    cols = {k: rng.standard_normal(n).astype(np.float32) for k in "abcd"}
    labels = (rng.integers(0, 3, n), ["x", "y", "z"])
    computed = []
    real = hr.group_means

    def spy(sim, *args, **kwargs):
        computed.append(sim.shape[1])
        return real(sim, *args, **kwargs)

    monkeypatch.setattr(hr, "group_means", spy)
    view = SimilarityHeatmap(max_rows=10)
    steps = [
        ("abc", labels),
        ("abd", labels),
        ("da", labels),
        ("da", (labels[0][::-1].copy(), labels[1])),
    ]
    for names, lab in steps:
        sim = np.asfortranarray(np.stack([cols[k] for k in names], axis=1))
        computed.clear()
        view.set_data(sim, ids, list(names), labels=lab, column_keys=list(names))
        reused = list(computed)
        fresh = SimilarityHeatmap(max_rows=10)
        fresh.set_data(sim, ids, list(names), labels=lab)
        np.testing.assert_allclose(view._z, fresh._z, rtol=1e-6, atol=1e-7)
        assert view.row_keys == fresh.row_keys
        if (names, lab) == ("abd", labels):
            assert reused == [1]  # only "d" was new
        if names == "da" and lab is labels:
            assert reused == []
    with pytest.raises(ValueError, match="got 1 column_keys for 2 prompts"):
        view.set_data(sim, ids, ["d", "a"], labels=labels, column_keys=["d"])
