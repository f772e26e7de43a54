"""The one-screen layout without a browser: panes, the status bar's selection and clear button.

The browser half (boxes at 1500x1000, narrow widths, dark theme) is tests/browser/test_layout_browser.py
and tests/browser/test_hosts_browser.py.
"""

from __future__ import annotations

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
    assert _find(accordion, "clipviz-metrics")
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
