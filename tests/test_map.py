"""EmbeddingMap: widget state, binary point messages under 10 MB, selection both ways, hover.

Page messages are delivered exactly as the comm does (``_handle_custom_msg`` with buffers);
what the widget sends is recorded with ``record_messages``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from clipviz.views import _map_widget as wire
from clipviz.views._plotting import record_messages
from clipviz.views.embedding_map import EmbeddingMap

EVIL = "<img src=x onerror=alert(1)>"
MB = 1024 * 1024


def _data(n: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = [f"img{i}.png" for i in range(n)]
    ids[1] = EVIL + ".png"
    labels = [("circle", "square", EVIL)[i % 3] for i in range(n)]
    return rng.normal(size=(n, 2)), ids, labels


def _built_map(n: int = 6) -> tuple[EmbeddingMap, list[str], list[str]]:
    xy, ids, labels = _data(n)
    view = EmbeddingMap()
    view.set_points(
        xy, ids, labels, np.zeros((2, 2)), ["circle", "square"], true_labels=labels[::-1]
    )
    view.widget  # noqa: B018 - builds the anywidget
    return view, ids, labels


def _page(view: EmbeddingMap, content: dict, buffers: list | None = None) -> None:
    """A message from the page, as the comm delivers it."""
    view.map_widget._handle_custom_msg(content, [memoryview(b) for b in buffers or []])


def _capture(widget):
    """Record (content, buffers) of every custom message the widget sends."""
    seen: list[tuple[dict, list]] = []
    original = widget._send

    def keep(msg, buffers=None):
        if msg.get("method") == "custom":
            seen.append((msg["content"], [bytes(b) for b in buffers or []]))
        return original(msg, buffers)

    widget._send = keep
    return seen


def test_state_holds_names_and_prompts_but_no_per_point_data():
    n = 100_000
    rng = np.random.default_rng(1)
    view = EmbeddingMap()
    labels = [f"class{k % 10}" for k in range(n)]
    view.set_points(rng.normal(size=(n, 2)), [f"i{k}" for k in range(n)], labels,
                    np.ones((3, 2)), ["class0", EVIL, "x"])  # fmt: skip
    state = {
        k: v for k, v in view.map_widget.get_state().items() if k not in ("_lib", "_esm", "_css")
    }
    assert state["n_points"] == n and state["categories"] == [f"class{k}" for k in range(10)]
    assert state["present"] == list(range(10)) and len(state["colors"]) == 10
    assert state["prompts"] == ["class0", EVIL, "x"]  # raw: the page sets textContent
    assert state["prompt_colors"][0] == state["colors"][0]  # a prompt that is a label: its colour
    xy = np.frombuffer(state["prompt_xy"], np.float32).reshape(-1, 2)
    assert xy.shape == (3, 2) and np.abs(xy).max() <= 1.0  # normalised like the points
    size = sum(
        len(v) if isinstance(v, bytes | memoryview) else len(json.dumps(v)) for v in state.values()
    )
    assert size < 4000, "points travel as messages, never in the widget state"


def test_one_million_points_travel_in_binary_messages_under_10_mb():
    n = 1_000_000
    rng = np.random.default_rng(2)
    xy = rng.normal(size=(n, 2))
    view = EmbeddingMap()
    view.set_points(xy, [f"i{k}" for k in range(n)], [f"c{k % 300}" for k in range(n)])
    widget = view.map_widget
    seen = _capture(widget)
    with record_messages(widget) as sizes:
        _page(view, {"type": "request_points"})
    assert len(seen) == 2 == len(sizes)  # 500k points per message
    assert max(j + b for j, b in sizes) < 10 * MB
    assert sum(b for _, b in sizes) == n * (4 + 4 + 2)  # float32 x, y; uint16 codes (300 classes)
    assert max(j for j, _ in sizes) < 400  # the JSON part is a small header
    first, buffers = seen[0]
    assert first["fields"] == ["x", "y", "z"] and first["dtypes"] == [
        "float32",
        "float32",
        "uint16",
    ]
    assert first["fit"] is True and first["chunks"] == 2 and seen[1][0]["start"] == 500_000
    x = np.frombuffer(buffers[0], np.float32)
    assert len(x) == 500_000 and np.abs(x).max() <= 1.0
    # order kept: normalised x is an increasing function of the input x
    assert np.array_equal(np.argsort(x[:1000]), np.argsort(xy[:1000, 0]))


def test_new_projection_fits_but_prompt_and_label_edits_send_little_and_keep_the_view():
    view, ids, labels = _built_map(50)
    widget = view.map_widget
    seen = _capture(widget)
    view.set_points(np.random.default_rng(3).normal(size=(50, 2)) * 20, ids, labels)  # PCA -> UMAP
    assert [c["fields"] for c, _ in seen] == [["x", "y", "z"]] and seen[0][0]["fit"] is True
    seen.clear()
    view.set_labels(labels[::-1])  # a prompt edit: colour codes only, the camera stays
    assert [(c["fields"], c["fit"]) for c, _ in seen] == [(["z"], False)]
    assert sum(len(b) for b in seen[0][1]) == 50
    seen.clear()
    view.update_prompts(np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]), ["circle", "square", "new"])
    assert seen == [] and widget.prompts == ["circle", "square", "new"]
    assert widget.points_revision == 2


def test_selection_from_python_highlights_rows_without_echo():
    view, ids, _ = _built_map()
    reported = []
    view.observe(lambda c: reported.append(c["new"]), names="selection")
    view.selection = [ids[4], ids[2], "not-in-this-map"]
    assert np.frombuffer(view.map_widget.selected, np.uint32).tolist() == [4, 2]
    assert reported == [[ids[4], ids[2], "not-in-this-map"]]  # one change, no loop
    view.selection = []
    assert view.map_widget.selected == b""


def test_lasso_in_the_page_sets_ids_and_python_selection_replaces_it():
    view, ids, _ = _built_map()
    reported = []
    view.observe(lambda c: reported.append(c["new"]), names="selection")
    seen = _capture(view.map_widget)
    _page(view, {"type": "select", "n": 2}, [np.array([1, 3], np.uint32).tobytes()])
    assert view.selection == [ids[1], ids[3]] and reported == [[ids[1], ids[3]]]
    assert seen == []  # no points re-sent
    assert np.frombuffer(view.map_widget.selected, np.uint32).tolist() == [1, 3]  # later views
    view.selection = [ids[5]]  # e.g. a grid click: replaces the lasso's highlight
    assert np.frombuffer(view.map_widget.selected, np.uint32).tolist() == [5]
    _page(view, {"type": "select", "n": 0}, [b""])  # a double click in empty space
    assert view.selection == [] and view.map_widget.selected == b""
    _page(view, {"type": "select", "n": 1}, [np.array([99], np.uint32).tobytes()])
    assert view.selection == []  # a row that is not a point is ignored


def test_hover_fetches_one_thumbnail_on_demand():
    view, ids, _ = _built_map()
    asked: list[int] = []
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 10

    def provider(i: int) -> bytes:
        asked.append(i)
        return png

    view.thumbnail_provider = provider
    seen = _capture(view.map_widget)
    _page(view, {"type": "hover", "index": 1})
    assert asked == [1] and view.hover == ids[1]
    content, buffers = seen[-1]
    assert (
        content["type"] == "thumbnail" and content["index"] == 1 and content["mime"] == "image/png"
    )
    assert buffers == [png]
    assert content["lines"] == [
        ids[1],
        "predicted: square",
        "true: square",
    ]  # raw; page: textContent
    _page(view, {"type": "hover", "index": 77})  # out of range: ignored
    assert asked == [1]
    webp = b"RIFF\x00\x00\x00\x00WEBPVP8 "
    view.set_thumbnails([png] * 5 + [webp])  # the list form still works
    _page(view, {"type": "hover", "index": 5})
    assert seen[-1][0]["mime"] == "image/webp" and seen[-1][1] == [webp]
    view.thumbnail_provider = None
    _page(view, {"type": "hover", "index": 2})
    assert seen[-1][0]["mime"] == "" and seen[-1][1] == []
    with pytest.raises(ValueError, match="got 2 thumbnails for 6 images"):
        view.set_thumbnails([png, png])


def test_color_by_switches_codes_and_the_page_control_reaches_python():
    view, _, labels = _built_map()
    seen = _capture(view.map_widget)
    view.color_by = "true"
    codes_true = np.frombuffer(seen[-1][1][0], np.uint8)
    view.map_widget.set_state({"color_by": "predicted"})  # the page's dropdown
    assert view.color_by == "predicted"
    codes_pred = np.frombuffer(seen[-1][1][0], np.uint8)
    np.testing.assert_array_equal(codes_true, codes_pred[::-1])  # true = predicted reversed
    view.set_labels(["circle"] * len(labels))  # a class that disappears leaves the legend
    assert view.map_widget.present == [view._colours.codes(["circle"])[0][0]]
    assert view.map_widget.has_true is True


def test_map_alone_has_no_gap_checkbox_but_offers_one():
    view, _, _ = _built_map()
    assert view.widget is view.map_widget  # nothing that would do nothing
    with_toggle = EmbeddingMap(show_gap_toggle=True)
    box = with_toggle.widget.children[0]
    box.value = True
    assert with_toggle.center is True
    view.gap_control().value = True
    assert view.center is True
    view.method, view.pending = "pca", "umap"
    assert (view.map_widget.method, view.map_widget.pending) == ("pca", "umap")
    bundle = view._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle  # anywidget: (data, metadata)
    assert "application/vnd.jupyter.widget-view+json" in data


def test_static_figure_for_snapshots_escapes_user_strings():
    view, _, _ = _built_map()
    view.update_prompts(np.zeros((2, 2)), [EVIL, "a <b>bold</b> prompt"])
    fig = view.figure
    assert len(fig.data[0].x) == 6 and len(fig.data[1].x) == 2
    payload = json.dumps(fig.to_plotly_json(), default=str)
    assert "<img" not in payload and "<b>" not in payload
    assert "&lt;img src=x onerror=alert(1)&gt;" in payload


def test_chunks_cover_every_point_once(monkeypatch):
    monkeypatch.setattr(wire, "CHUNK_POINTS", 1000)
    sent = []
    x = np.arange(2500, dtype=np.float32)
    count = wire.send_points(lambda c, b: sent.append((c, b)), 7, {"x": x}, fit=False)
    assert count == 3 and [c["start"] for c, _ in sent] == [0, 1000, 2000]
    joined = np.concatenate([np.frombuffer(b[0], np.float32) for _, b in sent])
    np.testing.assert_array_equal(joined, x)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image_xy": np.zeros((3, 3))}, r"image_xy must have shape \(N, 2\), got \(3, 3\)"),
        ({"image_xy": np.zeros((2, 2))}, "image_xy has 2 rows but 3 were expected"),
        ({"image_xy": np.array([[0, 0], [np.nan, 1], [0, 0]])}, "image_xy row 1 is not finite"),
        ({"image_ids": ["a", "b", "a"]}, "'a' appears more than once"),
        ({"image_labels": ["x"]}, "image_labels has 1 entries but 3 were expected"),
        ({"prompt_xy": np.zeros((2, 2)), "prompts": ["p"]}, "prompt_xy has 2 rows but 1"),
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
