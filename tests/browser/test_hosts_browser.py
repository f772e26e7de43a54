"""The workbench on one screen in JupyterLab (dark theme) and Notebook 7 (light), real chromium.

Each test starts its own server on a copy of tests/notebooks/workbench.ipynb with its own user
settings (JupyterLab: windowing off, so every output is in the DOM; the theme), runs all cells
from the Run menu, and checks the panes' boxes at 1500x1000 and, in the dark theme, that the
grid's text is light on a dark background. Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

import pytest
from conftest import SCREENSHOTS, PageRecorder
from jupyter_host import DARK, LIGHT, jupyter_server, run_all
from test_layout_browser import _assert_all_in_view, _assert_no_text_cut, _wait_rendered


@pytest.fixture
def server(tmp_path, request):
    app, theme = request.param
    env = {"CLIPVIZ_CACHE_DIR": str(tmp_path / "cache")}
    with jupyter_server(app, tmp_path, "workbench.ipynb", theme, env) as url:
        yield url, app, theme


@pytest.mark.parametrize("server", [("jupyterlab", DARK), ("notebook", LIGHT)], indirect=True)
def test_views_visible_together_at_1500x1000(server, browser):
    url, app, theme = server
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    rec = PageRecorder(context.new_page(), f"hosts_{app}")
    rec.page.on("dialog", lambda d: d.accept() if d.type == "beforeunload" else None)
    try:
        rec.page.goto(url, wait_until="domcontentloaded", timeout=90_000)
        run_all(rec.page)
        try:
            _wait_rendered(rec.page)
        except Exception:
            rec.page.screenshot(path=str(SCREENSHOTS / f"hosts_{app}_failed.png"))
            raise
        rec.page.locator(".clipviz-workbench").first.scroll_into_view_if_needed()
        rec.page.evaluate(
            "document.querySelector('.clipviz-workbench').scrollIntoView({block: 'start'})"
        )
        rec.page.wait_for_timeout(800)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        rec.page.screenshot(path=str(SCREENSHOTS / f"hosts_{app}_viewport.png"))
        _assert_all_in_view(rec.page, 1500, 1000)
        _assert_no_text_cut(rec.page)
        if theme == DARK:
            colours = rec.page.evaluate(
                """() => { const c = document.querySelector('.clipviz-cell');
                   const name = c.querySelector('.clipviz-topk-name');
                   return [getComputedStyle(name).color, getComputedStyle(c).backgroundColor]; }"""
            )
            text, back = (_luma(c) for c in colours)
            assert text > 0.6 and back < 0.3, colours  # light text on a dark cell
        assert [d for d in rec.dialogs if d.startswith("alert")] == []
    finally:
        context.close()


def _luma(css: str) -> float:
    r, g, b = (float(x) for x in css[css.index("(") + 1 : css.index(")")].split(",")[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255
