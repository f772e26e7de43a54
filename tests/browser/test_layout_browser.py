"""One screen: the workbench's panes visible together at 1500x1000, light and dark, in Voila,
JupyterLab and Notebook 7 (real headless chromium), and restacked without cut text when narrow.

Screenshots go to artifacts/screenshots/ (gitignored) for a person to look at.
"""

from __future__ import annotations

import pytest

RENDER_TIMEOUT_MS = 180_000
PANES = ("prompts", "map", "heatmap", "grid")
VIEWPORT = {"width": 1500, "height": 1000}


def _wait_rendered(page) -> None:
    page.locator(".clipviz-workbench .clipviz-cell").first.wait_for(
        state="visible", timeout=RENDER_TIMEOUT_MS
    )
    page.locator(".clipviz-pane-heatmap .main-svg").first.wait_for(
        state="attached", timeout=RENDER_TIMEOUT_MS
    )
    page.wait_for_timeout(1500)  # plotly's first resize


def _boxes(page) -> dict[str, dict[str, float]]:
    js = """panes => Object.fromEntries(panes.map(p => {
        const el = document.querySelector('.clipviz-workbench .clipviz-pane-' + p);
        if (!el) return [p, null];
        const r = el.getBoundingClientRect();
        return [p, {left: r.left, top: r.top, right: r.right, bottom: r.bottom,
                    width: r.width, height: r.height}];
    }))"""
    return page.evaluate(js, list(PANES))


def _viewport_shot(page, name: str) -> None:
    from conftest import SCREENSHOTS

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}_viewport.png"))


def _assert_all_in_view(page, width: int, height: int) -> None:
    boxes = _boxes(page)
    for name, box in boxes.items():
        assert box is not None, f"pane {name} is missing"
        assert box["width"] > 150 and box["height"] > 150, (name, box)
        # Its top-left quarter at least is on screen without scrolling.
        assert 0 <= box["left"] and box["left"] + box["width"] / 2 <= width, (name, box)
        assert 0 <= box["top"] and box["top"] + min(box["height"], 300) / 2 <= height, (name, box)
    status = page.locator(".clipviz-workbench .clipviz-statusbar").bounding_box()
    assert status is not None and 0 <= status["y"] < height


def _assert_no_text_cut(page) -> None:
    cut = page.evaluate(
        "sel => [...document.querySelectorAll(sel)]"
        ".filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)",
        ".clipviz-cell-id, .clipviz-topk-name, .clipviz-cell-label, .clipviz-status,"
        " .clipviz-selection, .clipviz-pane-prompts .widget-dropdown select",
    )
    assert cut == [], f"text cut off: {cut[:5]}"


def test_voila_all_views_visible_at_1500x1000(voila, browser):
    from conftest import PageRecorder

    server = voila("workbench.ipynb")
    context = browser.new_context(viewport=VIEWPORT)
    rec = PageRecorder(context.new_page(), "layout_voila")
    try:
        rec.page.goto(server.url, timeout=RENDER_TIMEOUT_MS, wait_until="domcontentloaded")
        _wait_rendered(rec.page)
        _viewport_shot(rec.page, "layout_voila")
        _assert_all_in_view(rec.page, **VIEWPORT)
        _assert_no_text_cut(rec.page)
        # the query box gets the row, the hit count what three digits need
        query, k = rec.page.evaluate(
            "() => ['.clipviz-search-text', '.clipviz-search-k'].map("
            "s => document.querySelector(s).getBoundingClientRect().width)"
        )
        assert query >= 2 * k and k <= 90, (query, k)
        # the metrics, made when first opened: one click on the accordion's title shows them
        page = rec.page
        assert page.locator(".clipviz-workbench .clipviz-metrics").count() == 0
        page.get_by_text("metrics (accuracy, per class, confusion)").first.click()
        metrics = page.locator(".clipviz-workbench .clipviz-metrics")
        metrics.locator("table").first.wait_for(state="visible", timeout=RENDER_TIMEOUT_MS)
        metrics.locator(".main-svg").first.wait_for(state="attached", timeout=RENDER_TIMEOUT_MS)
        assert "top-1 accuracy" in metrics.first.inner_text()
        page.wait_for_timeout(1000)
        metrics.first.scroll_into_view_if_needed()
        _viewport_shot(page, "layout_voila_metrics")
        assert rec.dialogs == []
    finally:
        context.close()


@pytest.mark.parametrize("width", [900, 560])
def test_voila_narrow_output_restacks_without_cutting_text(voila, browser, width):
    from conftest import PageRecorder

    server = voila("workbench.ipynb")
    context = browser.new_context(viewport={"width": width, "height": 1000})
    rec = PageRecorder(context.new_page(), f"layout_voila_{width}")
    try:
        rec.page.goto(server.url, timeout=RENDER_TIMEOUT_MS, wait_until="domcontentloaded")
        _wait_rendered(rec.page)
        rec.shot("full")
        boxes = _boxes(rec.page)
        for name, box in boxes.items():
            assert box["right"] <= width + 1, f"pane {name} runs past the {width}px page: {box}"
        _assert_no_text_cut(rec.page)
    finally:
        context.close()
