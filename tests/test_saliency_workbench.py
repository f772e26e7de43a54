"""Saliency in the workbench: the grid's "where" overlays, the detail view, snapshots.

Real forward passes on the bundled model and shapes images; the grid's widget is built and its
outgoing messages are recorded from ``send`` (what the page would receive).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from clipviz import Workbench


@pytest.fixture(scope="module")
def shapes_set():
    from clipviz.datasets import shapes

    return shapes(30, seed=11).to_imageset("shape")


@pytest.fixture(scope="module")
def bench(shapes_set, shapes_model):
    made = Workbench(shapes_set, model=shapes_model, projection="pca", cache=False, k=3)
    made.views["grid"].page_size = 12
    yield made
    made.close()


@pytest.fixture
def wb(bench):
    """The shared workbench, back on page 0 with the overlays off and nothing selected."""
    yield bench
    assert bench.saliency.wait(120)
    grid = bench.views["grid"]
    grid.where, grid.page, bench.selection = "", 0, []
    bench.saliency.method = "auto"
    assert bench.saliency.wait(120)


def _record(widget: Any) -> list[tuple[dict, list]]:
    sent: list[tuple[dict, list]] = []
    widget.send = lambda content, buffers=None: sent.append((content, buffers or []))
    return sent


def _images(sent: list[tuple[dict, list]]) -> dict[int, bytes]:
    """Image index -> the last bytes the page received for it."""
    out: dict[int, bytes] = {}
    for message, buffers in sent:
        for k, i in enumerate(message["indices"]):
            out[i] = bytes(buffers[0][message["offsets"][k] : message["offsets"][k + 1]])
    return out


def _ask(grid: Any, widget: Any, indices: list[int]) -> None:
    from clipviz.views._grid_widget import _on_message

    _on_message(grid, widget, {"type": "thumbs", "indices": indices})


def test_where_overlays_the_visible_page_for_the_top1_prompt(wb):
    grid = wb.views["grid"]
    widget = grid.widget
    assert widget.has_where
    sent = _record(widget)
    page = [item["i"] for item in grid.page_items()]
    _ask(grid, widget, page)
    plain = _images(sent)
    assert sorted(plain) == sorted(page)

    grid.where = "top-1"
    assert widget.where == "top-1"
    version = widget.images_version
    sent.clear()
    _ask(grid, widget, page)
    assert wb.saliency.wait(120)
    got = _images(sent)
    assert sorted(got) == sorted(page) and all(m["version"] == version for m, _ in sent)
    assert all(got[i] != plain[i] for i in page)  # overlays replaced the plain thumbnails
    # each overlay is the image's top-1 map, blended as page.overlay_png does
    from clipviz.models.saliency import saliency
    from clipviz.models.saliency.page import overlay_png

    i = page[0]
    a = wb.controller.a
    top = int(a.predictions.topk_indices[i, 0])
    heat = saliency(wb.model, wb.images.load(i), a.prompts.vectors[top : top + 1])[0]
    want = np.asarray(Image.open(io.BytesIO(overlay_png(wb.images.load(i), heat, fmt="WEBP"))))
    shown = np.asarray(Image.open(io.BytesIO(got[i])))
    assert np.abs(shown.astype(int) - want.astype(int)).max() <= 2
    assert set(wb.saliency.shown) == set(page)

    # a chosen prompt, and the cache: asking again computes nothing new
    grid.where = a.predictions.classnames[0]
    cached = len(wb.saliency.cache)
    sent.clear()
    _ask(grid, widget, page)
    assert wb.saliency.wait(120)
    assert len(wb.saliency.cache) > cached
    cached = len(wb.saliency.cache)
    _ask(grid, widget, page)
    assert wb.saliency.wait(120) and len(wb.saliency.cache) == cached


def test_a_newer_page_supersedes_the_running_overlays(wb):
    grid = wb.views["grid"]
    widget = grid.widget
    sent = _record(widget)
    grid.where = "top-1"
    first = [item["i"] for item in grid.page_items()]
    gate = wb.saliency.grid_worker._run_lock
    with gate:  # hold the model: both requests queue, the first becomes stale before it runs
        _ask(grid, widget, first)
        grid.page = 1
        second = [item["i"] for item in grid.page_items()]
        _ask(grid, widget, second)
        grid.where = ""  # and turning the overlay off cancels the second one too
    assert wb.saliency.wait(60)
    overlays = [m for m, b in sent if m["version"] == widget.images_version]
    assert not overlays  # nothing drawn for a page or a mode no longer shown
    assert not wb.saliency.shown


def test_stale_version_is_never_drawn(wb):
    grid = wb.views["grid"]
    widget = grid.widget
    sent = _record(widget)
    version = widget.images_version
    grid.reload_thumbnails()
    assert not grid.send_thumbnails([0], [b"x"], version)
    assert not sent


def test_detail_view_shows_one_map_per_prompt_for_a_single_selection(wb):
    wb.selection = [wb.ids[3]]
    assert wb.saliency.wait(120)
    html = wb.saliency.detail.html()
    names = wb.controller.a.predictions.classnames
    assert html.count("<figure>") == len(names) + 1  # the image, then one map per prompt
    assert wb.ids[3] in html and "(auto)" in html
    wb.saliency.method = "grad-x-input"
    assert wb.saliency.wait(120)
    assert "(grad-x-input)" in wb.saliency.detail.html()
    with pytest.raises(ValueError, match="unknown saliency method 'nope'"):
        wb.saliency.method = "nope"


def test_save_html_includes_the_overlays_and_detail_shown(wb, tmp_path):
    grid = wb.views["grid"]
    widget = grid.widget
    _record(widget)
    plain = wb.save_html(tmp_path / "plain.html").read_text()
    grid.where = "top-1"
    _ask(grid, widget, [item["i"] for item in grid.page_items()])
    wb.selection = [wb.ids[0]]
    assert wb.saliency.wait(120)
    text = wb.save_html(tmp_path / "where.html").read_text()
    title = f"{wb.ids[0]}: where each prompt matches"
    assert title in text and title not in plain
    overlay = wb.saliency.shown[0]
    import base64

    assert base64.b64encode(overlay).decode() in text
    assert base64.b64encode(overlay).decode() not in plain
