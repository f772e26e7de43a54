"""The workbench on one screen in JupyterLab (dark theme) and Notebook 7 (light), real chromium.

Each test starts its own server on a copy of tests/notebooks/workbench.ipynb with its own user
settings (JupyterLab: windowing off, so every output is in the DOM; the theme), runs all cells
from the Run menu, and checks the panes' boxes at 1500x1000 and, in the dark theme, that the
grid's text is light on a dark background. Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import NOTEBOOKS, SCREENSHOTS, PageRecorder, _free_port
from test_layout_browser import _assert_all_in_view, _assert_no_text_cut, _wait_rendered

DARK = "JupyterLab Dark"


def _settings(folder: Path, theme: str) -> Path:
    tracker = folder / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))
    themes = folder / "@jupyterlab" / "apputils-extension" / "themes.jupyterlab-settings"
    themes.parent.mkdir(parents=True)
    themes.write_text(json.dumps({"theme": theme}))
    return folder


@pytest.fixture
def server(tmp_path, request):
    app, theme = request.param
    shutil.copy(NOTEBOOKS / "workbench.ipynb", tmp_path)
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, HF_HUB_OFFLINE="1", CLIPVIZ_CACHE_DIR=str(tmp_path / "cache"))
    env["JUPYTERLAB_SETTINGS_DIR"] = str(_settings(tmp_path / "settings", theme))
    env["JUPYTER_CONFIG_DIR"] = str(tmp_path / "config")  # no user extensions or settings
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 - closed below
    cmd = [sys.executable, "-m", app, "--allow-root", "--no-browser", f"--port={port}"]
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
    path = "lab/tree" if app == "jupyterlab" else "notebooks"
    yield f"{base}/{path}/workbench.ipynb?token={token}", app, theme
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


def _run_all(page) -> None:
    page.locator(".jp-Notebook").first.wait_for(state="visible", timeout=90_000)
    page.wait_for_timeout(2000)  # the kernel connects
    select = page.locator(".jp-Dialog button", has_text="Select")
    if select.count():  # "Select Kernel" on first open
        select.first.click()
        page.wait_for_timeout(1000)
    if page.locator("#jp-left-stack").count() and page.locator("#jp-left-stack").is_visible():
        page.locator(".jp-Notebook").first.click()
        page.keyboard.press("Escape")
        page.keyboard.press("Control+b")  # hide the file browser, as at 1500 px people do
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_text("Run All Cells", exact=True).click()


@pytest.mark.parametrize(
    "server", [("jupyterlab", DARK), ("notebook", "JupyterLab Light")], indirect=True
)
def test_views_visible_together_at_1500x1000(server, browser):
    url, app, theme = server
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    rec = PageRecorder(context.new_page(), f"hosts_{app}")
    rec.page.on("dialog", lambda d: d.accept() if d.type == "beforeunload" else None)
    try:
        rec.page.goto(url, wait_until="domcontentloaded", timeout=90_000)
        _run_all(rec.page)
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
