"""PredictionGrid and thumbnails: headless checks on traits and widget state."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
from ipywidgets.widgets.widget import _remove_buffers

from clipviz.engine import ImageSet
from clipviz.engine.thumbnails import make_thumbnails, pack_thumbnails, placeholder
from clipviz.views.grid import PredictionGrid

CLASSES = ["circle", "square", "triangle", "star"]
XSS = "<img src=x onerror=alert(1)>.png"


def _predictions(n: int, seed: int = 0, k: int = 3):
    rng = np.random.default_rng(seed)
    sim = rng.uniform(0.1, 0.4, size=(n, len(CLASSES))).astype(np.float32)
    probs = np.exp(100 * sim)
    probs = (probs / probs.sum(1, keepdims=True)).astype(np.float32)
    top = np.argsort(-probs, axis=1)[:, :k]
    labels = [CLASSES[i % len(CLASSES)] for i in range(n)]
    return sim, probs, top, np.take_along_axis(probs, top, 1), labels


@pytest.fixture(scope="module")
def shapes_set():
    from clipviz.datasets import shapes

    return shapes(60, seed=3).to_imageset("shape")


@pytest.fixture
def grid(shapes_set):
    sim, _, top, top_p, labels = _predictions(len(shapes_set))
    g = PredictionGrid(page_size=16)
    g.set_images(shapes_set.ids, make_thumbnails(shapes_set, 32))
    g.set_predictions(CLASSES, top, top_p, labels=labels, similarity=sim)
    return g


def test_widget_state_holds_one_page_with_topk_and_correctness(grid):
    state = grid.widget.get_state()
    assert len(state["items"]) == 16
    assert state["n_pages"] == 4 and state["n_total"] == 60 and state["n_shown"] == 60
    first = state["items"][0]
    assert first["id"] == grid.ids[0]
    assert [name for name, _ in first["topk"]] == [CLASSES[j] for j in grid._topk_idx[0]]
    assert first["topk"][0][1] == pytest.approx(float(grid._topk_probs[0, 0]), abs=1e-4)
    assert first["correct"] == (first["topk"][0][0] == first["true"])
    assert state["has_labels"] is True


def _replies(grid, indices):
    """Send a thumbnail request as the page does; return what the widget sends back."""
    sent = []
    w = grid.widget
    w.send = lambda message, buffers=None: sent.append((message, buffers))
    w._handle_custom_msg({"type": "thumbs", "indices": list(indices)}, [])
    return sent


def test_widget_state_carries_no_thumbnail_bytes(grid):
    state = grid.widget.get_state()
    _, paths, buffers = _remove_buffers(state)
    assert buffers == []  # thumbnails travel only when the page asks for them
    assert "items" not in [p[0] for p in paths]  # labels/probs are small JSON, not buffers


def test_the_page_gets_exactly_the_thumbnails_it_asks_for(grid, shapes_set):
    thumbs = make_thumbnails(shapes_set, 32)
    asked = [it["i"] for it in grid.page_items()]
    ((message, buffers),) = _replies(grid, asked)
    assert message["type"] == "thumbs" and message["indices"] == asked
    data = bytes(buffers[0])
    off = message["offsets"]
    assert [data[off[k] : off[k + 1]] for k in range(len(asked))] == [thumbs[i] for i in asked]
    assert _replies(grid, [10_000, -1]) == []  # out of range: nothing, no error


def test_replies_stay_under_the_message_limit_without_uint32_offsets():
    from clipviz.views import grid as grid_module

    big = b"x" * 3_000_000  # 3 MB each: 2,000 of them would pass 4 GiB
    g = PredictionGrid(page_size=4)
    g.set_images([f"im{i}" for i in range(2000)], lambda idx: [big] * len(idx))
    sent = _replies(g, range(4))
    assert len(sent) == 4  # one 3 MB thumbnail per message: two would pass MAX_MESSAGE_BYTES
    for message, buffers in sent:
        assert len(bytes(buffers[0])) <= grid_module.MAX_MESSAGE_BYTES < 10_000_000
        assert message["offsets"] == [0, 3_000_000]


def test_thumbnail_store_makes_only_what_is_asked_and_reopens_from_disk(tmp_path):
    from clipviz.datasets import shapes
    from clipviz.engine.thumbnails import ThumbnailStore

    images = shapes(40, seed=5).to_imageset("shape")
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(len(images)):
        images.load(i).save(folder / f"{i:03d}.png")
    files = ImageSet.from_folder(folder)
    store = ThumbnailStore(files, size=32, cache=tmp_path / "cache")
    assert store.made == 0  # nothing decoded at start
    page = store.page(range(8))
    assert store.made == 8 and page == make_thumbnails(files, 32)[:8]
    cached = sorted((tmp_path / "cache" / "thumbnails").rglob("*.webp"))
    assert len(cached) == 8 and all(p.read_bytes()[8:12] == b"WEBP" for p in cached)
    assert not list((tmp_path / "cache").rglob(".tmp-*"))  # atomic: no temp files left
    reopened = ThumbnailStore(ImageSet.from_folder(folder), size=32, cache=tmp_path / "cache")
    assert reopened.page(range(8)) == page and reopened.made == 0  # read, not decoded
    assert reopened.thumbnail(9) == make_thumbnails(files, 32)[9] and reopened.made == 1
    with pytest.raises(IndexError, match="out of range for 40 images"):
        store.thumbnail(40)


def test_workbench_thumbnails_are_lazy(shapes_model):
    import clipviz

    data = clipviz.datasets.shapes(30, seed=4)
    images = clipviz.ImageSet.from_pil(data.images, labels=list(data.labels["shape"]))
    wb = clipviz.Workbench(images, model=shapes_model, projection="pca", cache=False)
    store = wb.thumbnails
    made_at_start = store.made
    assert made_at_start == 0  # nothing decoded for the grid until a page asks
    assert wb.thumbnail(3) == make_thumbnails(images, 96)[3]
    assert store.made == 1


def test_paging_follows_order_and_clamps(grid):
    grid.page = 2
    assert [it["i"] for it in grid.widget.items] == list(range(32, 48))
    grid.widget.page = 3  # as the browser would
    assert grid.page == 3 and len(grid.widget.items) == 60 - 48
    grid.page = 99
    assert grid.page == 3


def test_mistakes_only_shows_only_wrong_predictions(grid):
    wrong = int((~grid._correct).sum())
    assert 0 < wrong < 60
    grid.widget.mistakes_only = True
    assert grid.widget.n_shown == wrong
    assert all(it["correct"] is False for it in grid.widget.items)
    assert grid.page == 0


def test_sort_by_confidence_and_by_similarity(grid):
    grid.sort_by = "confidence"
    conf = [it["topk"][0][1] for it in grid.widget.items]
    assert conf == sorted(conf, reverse=True)
    assert conf[0] == pytest.approx(float(grid._topk_probs[:, 0].max()), abs=1e-4)
    grid.sort_by = "confidence_asc"
    assert grid.widget.items[0]["topk"][0][1] == pytest.approx(
        float(grid._topk_probs[:, 0].min()), abs=1e-4
    )
    grid.widget.sort_prompt = "star"
    grid.widget.sort_by = "similarity"
    scores = [it["score"] for it in grid.widget.items]
    assert scores == sorted(scores, reverse=True)
    assert grid.widget.items[0]["i"] == int(np.argmax(grid._similarity[:, 3]))


def test_selection_both_ways_and_selected_only(grid):
    ids = grid.ids
    grid.widget.selection = [ids[3], ids[40]]  # a click in the browser
    assert grid.selection == [ids[3], ids[40]]
    grid.selection = [ids[7]]  # from Python: highlighted in the widget
    assert grid.widget.selection == [ids[7]]
    grid.selection = [ids[50], ids[2]]
    grid.selected_only = True
    assert [it["id"] for it in grid.widget.items] == [ids[2], ids[50]]


def test_results_show_subset_in_order_until_cleared(grid):
    ids = grid.ids
    grid.show_results([ids[9], ids[1]], [0.9, 0.5], title=XSS)
    state = grid.widget.get_state()
    assert [it["id"] for it in state["items"]] == [ids[9], ids[1]]
    assert [it["score"] for it in state["items"]] == [0.9, 0.5]
    assert state["results_title"] == XSS  # plain text; grid.js sets it with textContent
    grid.widget._handle_custom_msg({"type": "clear_results"}, [])  # the "show all" button
    assert grid.widget.n_shown == 60 and grid.widget.results_title == ""
    with pytest.raises(ValueError, match="unknown image ids"):
        grid.show_results(["nope"], [1.0], "x")


def test_html_file_name_stays_text(tmp_path):
    from PIL import Image

    path = tmp_path / XSS
    Image.new("RGB", (20, 20), (255, 0, 0)).save(path, format="PNG")
    images = ImageSet.from_paths([path])
    g = PredictionGrid()
    g.set_images(images.ids, make_thumbnails(images, 16))
    g.set_predictions(["a"], np.zeros((1, 1), int), np.ones((1, 1)), labels=[XSS])
    item = g.widget.get_state()["items"][0]
    assert XSS in item["id"] and item["true"] == XSS  # the raw string, never markup
    js = (pathlib.Path(__file__).parents[1] / "clipviz/views/grid.js").read_text()
    assert "innerHTML" not in js and "insertAdjacentHTML" not in js and "outerHTML" not in js


def test_page_size_bounds_what_is_sent_for_10k_images():
    n = 10_000
    sim, _, top, top_p, labels = _predictions(n, seed=1)
    g = PredictionGrid(page_size=48)
    g.set_images([f"im{i}" for i in range(n)])
    g.set_predictions(CLASSES, top, top_p, labels=labels, similarity=sim)
    g.sort_by = "confidence"
    assert len(g.widget.items) == 48 and g.widget.n_pages == -(-n // 48)


def test_bad_input_is_refused_with_clear_errors():
    g = PredictionGrid()
    with pytest.raises(ValueError, match="unique"):
        g.set_images(["a", "a"])
    g.set_images(["a", "b"])
    with pytest.raises(ValueError, match=r"\(N=2, k\)"):
        g.set_predictions(["x"], np.zeros((3, 1), int), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="2 images"):
        g.set_predictions(["x"], np.zeros((2, 1), int), np.zeros((2, 1)), labels=["x"])


def test_thumbnails_cached_and_placeholder_for_unreadable(tmp_path, shapes_set):
    first = make_thumbnails(shapes_set, 32)
    assert make_thumbnails(shapes_set, 32) is first  # cached on the ImageSet
    assert first[0][:4] == b"RIFF" and first[0][8:12] == b"WEBP"
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image at all")
    good = tmp_path / "good.png"
    shapes_set.load(0).save(good)
    images = ImageSet.from_paths([good, broken])
    thumbs = make_thumbnails(images, 32, fmt="jpeg")
    assert len(thumbs) == 2 and thumbs[1] == placeholder(32, "jpeg") != thumbs[0]
    buffer, offsets = pack_thumbnails(thumbs)
    assert buffer[offsets[1] : offsets[2]] == thumbs[1]
    with pytest.raises(ValueError, match="unknown thumbnail format"):
        make_thumbnails(images, 32, fmt="gif")


def test_labels_no_prompt_names_are_neither_right_nor_wrong():
    g = PredictionGrid()
    g.set_images(["a", "b", "c"])
    top = np.array([[0], [1], [0]])
    g.set_predictions(["cat", "dog"], top, np.ones((3, 1)), labels=["cat", "cat", "zebra"])
    assert [it["correct"] for it in g.widget.items] == [True, False, None]
    g.mistakes_only = True
    assert [it["id"] for it in g.widget.items] == ["b"]
