"""The heatmap, confusion matrix and reliability diagram drawn in JupyterLab, light and dark.

tests/notebooks/plotly_views.ipynb shows the three plotly views on ``PlotlyFigure`` (kept over
plotly's FigureWidget: see docs/architecture.md, "Why our own plotly widget"). The test reads
what each graph div drew and saves one screenshot per view and theme under
artifacts/screenshots/ (plotly_views_<theme>_<view>.png) for a person to look at.
"""

from __future__ import annotations

import pytest
from conftest import SCREENSHOTS, PageRecorder
from jupyter_host import DARK, LIGHT, accept_kernel, jupyter_server, run_all
from test_hosts_browser import _luma

NOTEBOOK = "plotly_views.ipynb"


@pytest.fixture(params=[LIGHT, DARK])
def lab(request, tmp_path):
    """(url, theme) of a JupyterLab server on the notebook in the given theme."""
    with jupyter_server("jupyterlab", tmp_path, NOTEBOOK, request.param) as url:
        yield url, request.param


def _gd(name: str) -> str:
    return f"document.querySelector('.pv-{name} .clipviz-plotly, .pv-{name}.clipviz-plotly')"


def test_views_draw_in_both_themes(lab, browser):
    url, theme = lab
    tag = "dark" if theme == DARK else "light"
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    context.set_default_timeout(30_000)
    rec = PageRecorder(context.new_page(), f"plotly_views_{tag}")
    page = rec.page
    try:
        page.goto(url, wait_until="domcontentloaded", timeout=120_000)
        accept_kernel(page, 120_000)
        run_all(page)
        views = ("heatmap", "confusion", "reliability")
        ready = " && ".join(f"{_gd(v)} && {_gd(v)}.querySelector('.main-svg')" for v in views)
        page.wait_for_function(f"() => {ready}", timeout=150_000)
        drawn = page.evaluate(
            f"""() => [{_gd("heatmap")}.data[0].z.length, {_gd("heatmap")}.querySelector('.hm image')
                !== null, {_gd("confusion")}.data[0].z.length,
                {_gd("confusion")}.querySelectorAll('.xtick').length,
                {_gd("reliability")}.querySelectorAll('.bars .point').length]"""
        )
        rows, heat_image, classes, ticks, bars = drawn
        assert rows == 120 and heat_image, drawn  # one row per image below max_rows
        assert classes == 6 and ticks == 6, drawn
        assert bars >= 3, drawn  # the reliability bars of the non-empty bins
        # hostile class names are drawn as text, never as markup
        assert page.locator(".pv-confusion .xtick text", has_text="<b>bold</b> & co").count()
        assert page.locator(".clipviz-plotly b").count() == 0
        text = page.evaluate(
            f"getComputedStyle({_gd('confusion')}.querySelector('.xtick text')).fill"
        )
        page_luma = _luma(
            page.evaluate(
                "getComputedStyle(document.querySelector('.jp-Notebook')).backgroundColor"
            )
        )
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for view in views:
            page.locator(f".pv-{view}").first.screenshot(
                path=str(SCREENSHOTS / f"plotly_views_{tag}_{view}.png")
            )
        if theme == DARK:  # the axis text follows the theme: light on the dark page
            assert page_luma < 0.3 and _luma(text) > 0.6, (page_luma, text)
        else:
            assert page_luma > 0.7 and _luma(text) < 0.5, (page_luma, text)
        assert rec.dialogs == []
    finally:
        context.close()
