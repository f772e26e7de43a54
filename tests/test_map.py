"""EmbeddingMap: figure state, binary arrays, prompt-only updates, selection both ways, escaping."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from clipviz.views._plotting import record_messages
from clipviz.views.embedding_map import EmbeddingMap

EVIL = "<img src=x onerror=alert(1)>"


def _data(n: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = [f"img{i}.png" for i in range(n)]
    ids[1] = EVIL + ".png"
    labels = [("circle", "square", EVIL)[i % 3] for i in range(n)]
    return rng.normal(size=(n, 2)), ids, labels


def _sent(fig):
    """Collect the decoded messages the figure sends to the page while a block runs."""
    seen: list[dict] = []
    original = fig.send

    def keep(content, buffers=None):
        seen.append(content)
        return original(content, buffers)

    fig.send = keep
    return seen


def _event(fig, name: str, selected: dict[int, list[int]] | None = None, points=None) -> None:
    """Deliver a page event exactly as the comm does (custom message content + int32 buffers)."""
    groups, buffers = [], []
    for trace, rows in (selected or {}).items():
        groups.append({"trace": trace, "buffer": len(buffers)})
        buffers.append(memoryview(np.asarray(rows, np.int32).tobytes()))
    content = {"type": "event", "event": name, "groups": groups, "points": points or []}
    fig._handle_custom_msg(content, buffers)


def _built_map(n: int = 6) -> tuple[EmbeddingMap, list[str], list[str]]:
    xy, ids, labels = _data(n)
    view = EmbeddingMap()
    view.set_points(
        xy, ids, labels, np.zeros((2, 2)), ["circle", "square"], true_labels=labels[::-1]
    )
    view.widget  # noqa: B018 - builds figure, controls and hover panel
    return view, ids, labels


def test_set_points_builds_float32_traces_with_label_codes():
    xy, ids, labels = _data(9)
    view = EmbeddingMap()
    view.set_points(xy, ids, labels, np.ones((3, 2)), ["circle", "square", "triangle"])
    fig = view.figure
    images, prompts = fig.data
    assert images.type == "scattergl" and len(images.x) == 9
    assert images.x.dtype == np.float32 and images.y.dtype == np.float32
    np.testing.assert_allclose(images.x, xy[:, 0].astype(np.float32))
    codes = np.asarray(images.marker.color)
    assert codes.dtype == np.uint8
    # same label -> same code, different labels -> different codes
    assert codes[0] == codes[3] and len(set(codes.tolist())) == 3
    assert len(prompts.x) == 3 and prompts.mode == "markers+text"
    assert prompts.marker.symbol == "star"
    # a prompt that is also a label gets that label's colour
    assert prompts.marker.color[0] == view._colours.colour("circle")


def test_late_views_get_the_current_figure_state():
    # A front end that connects after edits (Voila, page reload, figure inside a VBox) builds
    # its view from get_state(); it must hold the edits, not the figure as first constructed.
    view, _, _ = _built_map()
    view.update_prompts(np.array([[7.0, 8.0]]), ["late prompt"])
    view.selection = [view._ids[2]]
    state = view.figure.get_state()
    images, prompts = state["_data"]
    assert list(prompts["text"]) == ["late prompt"]
    selected = images["selectedpoints"]  # serialized as a binary buffer
    assert np.frombuffer(selected["buffer"], dtype=selected["dtype"]).tolist() == [2]
    assert state["_layout"]["dragmode"] == "lasso"


def test_position_update_sends_only_binary_xy_under_12_bytes_per_point():
    n = 100_000
    rng = np.random.default_rng(1)
    ids = [f"i{k}" for k in range(n)]
    labels = [f"class{k % 10}" for k in range(n)]
    view = EmbeddingMap()
    view.set_points(rng.normal(size=(n, 2)), ids, labels)
    fig = view.figure
    with record_messages(fig) as sent:
        view.set_points(rng.normal(size=(n, 2)), ids, labels)  # e.g. PCA -> UMAP
    json_bytes = sum(j for j, _ in sent)
    binary = sum(b for _, b in sent)
    assert binary == 8 * n  # x and y, float32
    assert (json_bytes + binary) / n < 12
    with record_messages(fig) as sent:
        view.set_labels([f"class{(k + 1) % 10}" for k in range(n)])  # a prompt edit
    assert sum(b for _, b in sent) == n  # one uint8 code per point, no hover text above the limit
    assert sum(j + b for j, b in sent) / n < 1.1


def test_update_prompts_touches_only_the_prompt_trace():
    view, _, _ = _built_map()
    fig = view.figure
    before_x = fig.data[0].x.copy()
    msgs = _sent(fig)
    view.update_prompts(np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]), ["circle", "square", "new"])
    assert len(msgs) == 1, "one prompt edit, one message"
    assert msgs[0]["type"] == "update" and list(msgs[0]["traces"]) == ["1"]
    assert "layout" not in msgs[0]
    assert msgs[0]["traces"]["1"]["text"] == ["circle", "square", "new"]
    assert list(fig.data[1].text) == ["circle", "square", "new"]
    np.testing.assert_array_equal(fig.data[0].x, before_x)


def test_selection_from_python_highlights_without_echo():
    view, ids, _ = _built_map()
    reported = []
    view.observe(lambda c: reported.append(c["new"]), names="selection")
    msgs = _sent(view.figure)
    view.selection = [ids[4], ids[2], "not-in-this-map"]
    assert sorted(view.figure.data[0].selectedpoints) == [2, 4]
    assert reported == [[ids[4], ids[2], "not-in-this-map"]]  # one change, no loop
    assert len(msgs) == 1 and list(msgs[0]["traces"]) == ["0"]
    assert msgs[0]["traces"]["0"]["selectedpoints"]["dtype"] == "int32"  # binary, not JSON
    view.selection = []
    assert view.figure.data[0].selectedpoints is None  # cleared, not "nothing selected"
    assert msgs[-1]["traces"]["0"]["selectedpoints"] is None


def test_lasso_in_the_figure_sets_selection_ids_and_is_not_sent_back():
    view, ids, _ = _built_map()
    fig = view.figure
    msgs = _sent(fig)
    rev = fig._rev
    # plotly marks every selectable trace: images 1 and 3, no prompt
    _event(fig, "plotly_selected", {0: [1, 3], 1: []})
    assert view.selection == [ids[1], ids[3]]
    assert msgs == [] and fig._rev == rev  # the page already shows it: nothing sent back
    # ... but the figure state records it, so a view that connects later shows it too
    assert fig.data[0].selectedpoints.tolist() == [1, 3]
    _event(fig, "plotly_deselect")
    assert view.selection == []
    assert fig.data[0].selectedpoints is None and fig.data[1].selectedpoints is None
    assert msgs == []


def test_box_selection_ignores_prompt_points():
    view, ids, _ = _built_map()
    _event(view.figure, "plotly_selected", {0: [5, 0], 1: [0]})
    assert sorted(view.selection) == sorted([ids[0], ids[5]])
    # a later Python-side selection clears the prompts' selection state (never dimmed)
    view.selection = [ids[2]]
    assert view.figure.data[1].selectedpoints is None


def test_hover_shows_thumbnail_and_escaped_caption():
    view, ids, labels = _built_map()
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 10
    webp = b"RIFF\x00\x00\x00\x00WEBPVP8 "
    view.set_thumbnails([png] * 5 + [webp])
    _event(view.figure, "plotly_hover", points=[{"trace": 0, "index": 1, "x": 0.1, "y": 0.2}])
    assert view.hover == ids[1]
    assert view._panel.image.value == png and view._panel.image.format == "png"
    caption = view._panel.caption.value
    assert "<img" not in caption and "&lt;img src=x onerror=alert(1)&gt;.png" in caption
    _event(view.figure, "plotly_hover", points=[{"trace": 0, "index": 5, "x": 0, "y": 0}])
    assert view._panel.image.format == "webp"
    _event(view.figure, "plotly_hover", points=[{"trace": 1, "index": 0, "x": 0, "y": 0}])
    assert view.hover == ids[5]  # hovering a prompt star is not an image hover
    with pytest.raises(ValueError, match="got 2 thumbnails for 6 images"):
        view.set_thumbnails([png, png])


def test_every_user_string_is_escaped_in_the_figure():
    view, _, _ = _built_map()
    view.update_prompts(np.zeros((2, 2)), [EVIL, "a <b>bold</b> prompt"])
    payload = json.dumps(view.figure.to_plotly_json(), default=str)
    assert "<img" not in payload and "<b>" not in payload
    assert "&lt;img src=x onerror=alert(1)&gt;" in payload
    assert "&lt;img src=x onerror=alert(1)&gt;" in view.figure.data[0].marker.colorbar.ticktext


def test_color_by_switches_to_true_labels_and_back():
    view, _, labels = _built_map()
    fig = view.figure
    codes_pred = np.asarray(fig.data[0].marker.color).copy()
    view.color_by = "true"
    codes_true = np.asarray(fig.data[0].marker.color)
    assert not np.array_equal(codes_pred, codes_true)
    # true labels are the predicted ones reversed: codes reverse too (colours are stable per label)
    np.testing.assert_array_equal(codes_true, codes_pred[::-1])
    assert "square" in fig.data[0].hovertext[4] or "circle" in fig.data[0].hovertext[4]
    view.color_by = "predicted"
    np.testing.assert_array_equal(np.asarray(fig.data[0].marker.color), codes_pred)
    # a class that disappears keeps its colour code but leaves the colour bar
    view.set_labels(["circle"] * len(labels))
    assert list(fig.data[0].marker.colorbar.ticktext) == ["circle"]
    assert fig.data[0].marker.colorbar.tickvals == [view._colours.codes(["circle"])[0][0]]


def test_controls_are_linked_to_traits_and_method_label():
    view, _, _ = _built_map()
    controls = view.widget.children[0]
    dropdown, checkbox, label = controls.children
    checkbox.value = True
    assert view.center is True
    dropdown.value = "true"
    assert view.color_by == "true"
    view.method, view.pending = "pca", "umap"
    assert "PCA" in label.value and "UMAP computing" in label.value
    view.method, view.pending = "umap", ""
    assert label.value == "<b>UMAP</b>"
    assert "application/vnd.jupyter.widget-view+json" in view._repr_mimebundle_()


def test_data_set_before_and_after_the_figure_exists_match():
    xy, ids, labels = _data()
    early = EmbeddingMap()
    early.set_points(xy, ids, labels, np.ones((1, 2)), ["p"])
    late = EmbeddingMap()
    late.figure  # noqa: B018 - figure first, data after
    late.set_points(xy, ids, labels, np.ones((1, 2)), ["p"])
    for a, b in zip(early.figure.data, late.figure.data, strict=True):
        np.testing.assert_array_equal(a.x, b.x)
        assert list(a.hovertext) == list(b.hovertext)
    np.testing.assert_array_equal(
        early.figure.data[0].marker.color, late.figure.data[0].marker.color
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image_xy": np.zeros((3, 3))}, r"image_xy must have shape \(N, 2\), got \(3, 3\)"),
        ({"image_xy": np.zeros((2, 2))}, "image_xy has 2 rows but 3 were expected"),
        ({"image_xy": np.array([[0, 0], [np.nan, 1], [0, 0]])}, "image_xy row 1 is not finite"),
        ({"image_ids": ["a", "b", "a"]}, "'a' appears more than once"),
        ({"image_labels": ["x"]}, "image_labels has 1 entries but 3 were expected"),
    ],
)
def test_bad_input_is_explained(kwargs, message):
    args = {"image_xy": np.zeros((3, 2)), "image_ids": ["a", "b", "c"]} | kwargs
    with pytest.raises(ValueError, match=message):
        EmbeddingMap().set_points(**args)


def test_view_modules_do_not_import_torch():
    code = (
        "import sys, clipviz.views.embedding_map, clipviz.views.heatmap, "
        "clipviz.views.metrics_panel; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
