"""The heatmap, confusion matrix and reliability diagram drawn in JupyterLab, light and dark.

tests/notebooks/plotly_views.ipynb shows the three plotly views on ``PlotlyFigure`` (kept over
plotly's FigureWidget: see docs/architecture.md, "Why our own plotly widget"). The test reads
what each graph div drew and saves one screenshot per view and theme under
artifacts/screenshots/ (plotly_views_<theme>_<view>.png) for a person to look at.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import NOTEBOOKS, SCREENSHOTS, PageRecorder, _free_port
from test_figurewidget_browser import _accept_kernel
from test_hosts_browser import DARK, _luma, _run_all, _settings

NOTEBOOK = "plotly_views.ipynb"


@pytest.fixture(params=["JupyterLab Light", DARK])
def lab(request, tmp_path):
    """(url, theme) of a JupyterLab server on the notebook in the given theme."""
    shutil.copy(NOTEBOOKS / NOTEBOOK, tmp_path)
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    env["JUPYTERLAB_SETTINGS_DIR"] = str(_settings(tmp_path / "settings", request.param))
    env["JUPYTER_CONFIG_DIR"] = str(tmp_path / "config")
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 - closed below
    cmd = [sys.executable, "-m", "jupyterlab", "--allow-root", "--no-browser", f"--port={port}"]
    cmd += [f"--ServerApp.token={token}", "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    try:
        yield f"{base}/lab/tree/{NOTEBOOK}?token={token}", request.param
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


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
        _accept_kernel(page)
        _run_all(page)
        views = ("heatmap", "confusion", "reliability")
        ready = " && ".join(f"{_gd(v)} && {_gd(v)}.querySelector('.main-svg')" for v in views)
        page.wait_for_function(f"() => {ready}", timeout=150_000)
        drawn = page.evaluate(
            f"""() => [{_gd('heatmap')}.data[0].z.length, {_gd('heatmap')}.querySelector('.hm image')
                !== null, {_gd('confusion')}.data[0].z.length,
                {_gd('confusion')}.querySelectorAll('.xtick').length,
                {_gd('reliability')}.querySelectorAll('.bars .point').length]"""
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
        page_luma = _luma(page.evaluate("getComputedStyle(document.body).backgroundColor"))
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
