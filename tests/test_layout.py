"""The one-screen layout without a browser: panes, the status bar's selection and clear button.

The browser half (boxes at 1500x1000, narrow widths, dark theme) is tests/browser/test_layout_browser.py
and tests/browser/test_hosts_browser.py.
"""

from __future__ import annotations

import pytest

from clipviz.app.layout import selection_text, stylesheet


def _find(widget, cls):
    found = []
    if cls in getattr(widget, "_dom_classes", ()):
        found.append(widget)
    for child in getattr(widget, "children", ()):
        found += _find(child, cls)
    return found


def test_panes_status_bar_and_metrics_one_click_away(hostile_workbench):
    root = hostile_workbench.widget
    for pane in ("prompts", "map", "heatmap", "grid"):
        assert len(_find(root, f"clipviz-pane-{pane}")) == 1, pane
    (accordion,) = _find(root, "clipviz-metrics-accordion")
    assert accordion.selected_index is None  # collapsed: one click opens it
    assert _find(accordion, "clipviz-metrics-placeholder")  # its widgets come on first open
    assert "container-type: inline-size" in stylesheet()
    assert "--jp-layout-color1" in stylesheet() and "@container" in stylesheet()


def test_selection_shows_in_the_status_bar_and_clear_empties_it(hostile_workbench):
    wb = hostile_workbench
    root = wb.widget
    (label,) = _find(root, "clipviz-selection")
    (clear,) = _find(root, "clipviz-selection-clear")
    wb.selection = [wb.ids[0], wb.ids[2]]
    assert "2 selected" in label.value and "&lt;img" in label.value  # the hostile id, escaped
    assert clear.disabled is False
    assert list(wb.views["grid"].selection) == [wb.ids[0], wb.ids[2]]
    clear.click()
    assert wb.selection == [] and list(wb.views["grid"].selection) == []
    assert "nothing selected" in label.value and clear.disabled


def test_selection_text_names_a_few_and_counts_the_rest():
    ids = [f"shapes-1-all-{i:03d}" for i in range(10)]
    assert selection_text(ids) == (
        "10 selected: shapes-1-all-000, shapes-1-all-001, shapes-1-all-002 and 7 more"
    )
    assert selection_text([]).startswith("nothing selected")


@pytest.fixture(scope="module")
def labelled_workbench(shapes_model):
    """A fresh 40-image workbench (this module changes its prompts)."""
    import clipviz
    from clipviz.engine import embed_images

    images = clipviz.datasets.shapes(40, seed=11).to_imageset("shape")
    emb = embed_images(shapes_model, images, cache=False, progress=False)
    return clipviz.Workbench(emb, model=shapes_model, projection="pca", cache=False)


def _reachable(widget, seen=None):
    """Every widget the page gets for ``widget``: children and widget-valued traits."""
    from ipywidgets import Widget

    seen = {} if seen is None else seen
    if widget.model_id in seen:
        return seen
    seen[widget.model_id] = widget
    for name in widget.keys:
        value = getattr(widget, name, None)
        for item in value if isinstance(value, list | tuple) else [value]:
            if isinstance(item, Widget):
                _reachable(item, seen)
    return seen


def test_metrics_widgets_are_made_on_first_open_and_show_the_latest_update(labelled_workbench):
    from clipviz.views._plotly_widget import PlotlyFigure

    wb = labelled_workbench
    root = wb.widget
    panel = wb.views["metrics"]
    (accordion,) = _find(root, "clipviz-metrics-accordion")
    # closed: the page is sent no metrics widget and one plotly figure only (the heatmap)
    figures = [w for w in _reachable(root).values() if isinstance(w, PlotlyFigure)]
    assert figures == [wb.views["heatmap"].figure]
    assert panel._widget is None and panel._fig is None
    # an update while it is closed (prompt set A: two classes swapped out)...
    wb.prompts = ["circle", "square", "triangle"]
    acc1 = wb.metrics.acc1
    assert not _find(accordion, "clipviz-metrics")

    accordion.selected_index = 0  # what a click on its title sends from the page
    (box,) = _find(accordion, "clipviz-metrics")
    assert accordion.children == (box,) and box in _reachable(root).values()
    assert not _find(accordion, "clipviz-metrics-placeholder")
    # ...is what it shows: the summary's top-1 of the three prompts, their confusion matrix
    summary = panel._summary_html.value
    assert f"{100 * acc1:.1f}%" in summary, summary
    expected = panel.confusion_matrix()  # the latest metrics' confusion, as counts
    assert list(panel.figure.data[0].x) == list(expected.columns)
    counts = [[int(c) for c in row] for row in panel.figure.data[0].text]
    assert counts == expected.to_numpy().astype(int).tolist()
    assert set(expected.columns) <= {"circle", "square", "triangle"}
    # and later updates reach the opened panel
    wb.prompts = ["circle", "square"]
    assert f"{100 * wb.metrics.acc1:.1f}%" in panel._summary_html.value
    accordion.selected_index = None
    accordion.selected_index = 0  # reopening keeps the one panel
    assert _find(accordion, "clipviz-metrics") == [box]
