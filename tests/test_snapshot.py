"""save_html without a browser: the file's content, escaping, and errors for people.

The browser half (the page renders, no script runs) is tests/browser/test_snapshot_browser.py.
"""

from __future__ import annotations

import re

import pytest

from clipviz.app.snapshot import render_html, save_html

# The strings the ``hostile_workbench`` fixture (tests/conftest.py) puts in a file name and a prompt.
HOSTILE_NAME = "<img src=x onerror=alert(1)>.png"
HOSTILE_PROMPT = "<svg onload=alert(2)>"


@pytest.fixture(scope="module")
def snapshot(hostile_workbench, tmp_path_factory):
    path = tmp_path_factory.mktemp("snap") / "workbench.html"
    out = hostile_workbench.save_html(path)  # the Workbench method calls snapshot.save_html
    return out, out.read_text(encoding="utf-8")


def test_writes_one_self_contained_file(snapshot, hostile_workbench):
    path, text = snapshot
    assert path.name == "workbench.html" and text.startswith("<!DOCTYPE html>")
    # plotly.js is inlined, and no element loads anything from the network.
    assert "Plotly.newPlot" in text and len(text) > 1_000_000
    assert not re.search(
        r"""<(?:script|link|img|iframe)[^>]*(?:src|href)\s*=\s*["']?https?:""", text
    )
    # One grid cell and one data-URI thumbnail per image.
    n = len(hostile_workbench.ids)
    assert text.count('class="clipviz-cell ') == n
    assert text.count('src="data:image/webp;base64,') == n
    for name in ("map", "heatmap", "metrics"):
        assert f'data-view="{name}"' in text


def test_the_page_is_readable_by_others_as_a_plain_open_makes_it(snapshot):
    """It is meant to be shared (a web server, a colleague); it was written owner-only (0600)
    through mkstemp."""
    import os

    path, _ = snapshot
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_every_user_string_is_escaped(snapshot):
    _, text = snapshot
    # Neither the file name nor the prompt appears as markup anywhere in the page ...
    assert "<img src=x" not in text
    assert HOSTILE_PROMPT not in text
    # ... but both are there as text, in the grid and in the frozen plot data.
    assert 'data-id="&lt;img src=x onerror=alert(1)&gt;.png"' in text
    assert '<span class="clipviz-topk-name">&lt;svg onload=alert(2)&gt;</span>' in text
    plots = text[text.index('"cv-map"') : text.index("<div class='clipviz-grid-wrap'>")]
    assert "&lt;img src=x onerror=alert(1)&gt;.png" in plots
    assert "&lt;svg onload=alert(2)&gt;" in plots


def test_grid_marks_predictions_against_true_labels(snapshot, hostile_workbench):
    _, text = snapshot
    pred = hostile_workbench.predictions
    n_right = int(pred.correct.sum())
    assert text.count('class="clipviz-cell clipviz-correct"') == n_right
    assert text.count('class="clipviz-cell clipviz-wrong"') == len(pred.ids) - n_right
    assert f"mistakes only ({len(pred.ids) - n_right} of {len(pred.ids)})" in text
    # top-k rows: k per image (k is clipped to the number of classes)
    assert text.count('class="clipviz-topk-row"') == pred.topk_indices.size
    acc = hostile_workbench.metrics.acc1
    assert f"<td>top-1 accuracy</td><td>{acc:.1%}</td>" in text


def test_max_images_caps_the_grid(hostile_workbench):
    pred = hostile_workbench.predictions
    text = render_html(pred, max_images=5)
    assert len(re.findall(r'class="clipviz-cell[ "]', text)) == 5
    assert f"(first 5 of {len(pred.ids)})" in text
    with pytest.raises(ValueError, match="max_images must be a positive int, got 0"):
        render_html(pred, max_images=0)


def test_clear_errors(hostile_workbench, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist; create it"):
        save_html(hostile_workbench, tmp_path / "no" / "such" / "dir" / "x.html")

    class Empty:
        predictions = None

    with pytest.raises(ValueError, match="no predictions yet"):
        save_html(Empty(), tmp_path / "x.html")
    assert not list(tmp_path.iterdir()), "a failed save must leave no file behind"


def test_hostile_name_used(hostile_workbench):
    assert HOSTILE_NAME in hostile_workbench.ids


def test_labels_no_prompt_names_are_unjudged_as_in_the_live_grid(hostile_workbench):
    from clipviz.compute import zero_shot
    from clipviz.views.grid import PredictionGrid

    wb = hostile_workbench
    named = ["circle", "square"]  # the other shapes' labels are named by no prompt
    pred = zero_shot(wb.embeddings, wb.controller.texts.prompts(named, "single"), k=2)
    grid = PredictionGrid(page_size=len(wb.ids))
    grid.set_images(wb.ids)
    grid.set_predictions(pred.classnames, pred.topk_indices, pred.topk_probs, labels=wb.labels)
    live = {item["id"]: item["correct"] for item in grid.page_items()}
    text = render_html(pred, max_images=len(wb.ids))
    cells = re.findall(r'<div class="clipviz-cell( clipviz-\w+)?" data-id="([^"]+)"', text)
    import html

    static = {
        html.unescape(i): {"": None, " clipviz-correct": True, " clipviz-wrong": False}[c]
        for c, i in cells
    }
    assert None in live.values()  # the case exists in this data
    assert static == live
