"""PlotlyFigure in a real browser (Voila + headless chromium): updates travel both ways.

plotly's own FigureWidget can draw and then drop edits made from Python (anywidget's 2 s init
timeout, missed while each figure imports its own 5 MB bundle: test_figurewidget_browser.py). These steps run in order on one page (tests/notebooks/plotly_widget.ipynb: a scatter
built directly on PlotlyFigure, bound to ``map`` below since EmbeddingMap draws with WebGL now,
and the SimilarityHeatmap): buttons in the page run Python callbacks that edit them, and the
test reads the plotted data back from the graph divs (``gd.data`` / ``gd.layout``); then
selections made in the page (a synthetic plotly event, then a real mouse lasso) must arrive in
Python. Each step saves a screenshot under artifacts/screenshots/.
"""

from __future__ import annotations

import pytest

RENDER_TIMEOUT_MS = 120_000  # kernel start and plotly.js (4.8 MB) on 2 busy cores
STEP_TIMEOUT_MS = 30_000  # one browser -> kernel -> browser round trip

GRAPHS = ".clipviz-plotly"
NEW_PROMPT = "a hexagon &amp; &lt;b&gt;friends&lt;/b&gt;"  # as escaped by the view


@pytest.fixture(scope="module")
def page_rec(voila, browser):
    """One page on the notebook, shared by the ordered steps below."""
    from conftest import PageRecorder
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    server = voila("plotly_widget.ipynb")
    context = browser.new_context(viewport={"width": 1300, "height": 1100})
    context.set_default_timeout(STEP_TIMEOUT_MS)
    rec = PageRecorder(context.new_page(), "plotly_widget")
    rec.page.goto(server.url, timeout=RENDER_TIMEOUT_MS, wait_until="domcontentloaded")
    try:
        rec.page.wait_for_function(
            f"document.querySelectorAll('{GRAPHS} .main-svg').length >= 2",
            timeout=RENDER_TIMEOUT_MS,
        )
    except PlaywrightTimeout as err:
        rec.shot("failed_render")
        raise AssertionError(
            f"the figures did not render; voila log:\n{server.log_tail()}"
        ) from err
    yield rec
    context.close()


def _eval(page, expr: str, arg=None):
    """Evaluate ``expr`` with ``map`` and ``heat`` bound to the two graph divs."""
    body = f"const [map, heat] = document.querySelectorAll('{GRAPHS}'); return {expr};"
    return page.evaluate(f"(arg) => {{ {body} }}", arg)


def _wait(page, expr: str, arg=None) -> None:
    body = f"const [map, heat] = document.querySelectorAll('{GRAPHS}'); return {expr};"
    page.wait_for_function(f"(arg) => {{ {body} }}", arg=arg, timeout=STEP_TIMEOUT_MS)


def test_1_both_figures_draw_from_one_plotly_js(page_rec):
    page = page_rec.page
    assert _eval(page, "map.data[0].x.length") == 40
    assert _eval(page, "map.data[0].x instanceof Float32Array")  # binary, not JSON numbers
    assert _eval(page, "map.data[1].text") == ["circle", "square"]
    assert _eval(page, "heat.data[0].y.length") == 40
    assert page.locator(f"{GRAPHS} .scatterlayer .point").count() >= 40  # the points, drawn
    # plotly.js came from the library widget, evaluated once for both figures
    assert page.evaluate("globalThis.__clipvizPlotlyLoads") == 1
    page_rec.shot("1_rendered")


def test_2_python_updates_reach_the_page(page_rec):
    page = page_rec.page
    page.locator(".pw-add").click()
    _wait(page, "map.data[1].text.length === 3 && map.data[1].text[2] === arg", NEW_PROMPT)
    # the new prompt is drawn as text (entities decoded by plotly, no <b> element made)
    label = page.locator(f"{GRAPHS} .textpoint text", has_text="a hexagon")
    label.first.wait_for(state="attached")
    assert label.first.text_content() == "a hexagon & <b>friends</b>"
    assert page.locator(f"{GRAPHS} .textpoint b").count() == 0
    # selection set in Python: highlighted in the map, rows outlined in the heatmap
    _wait(page, "Array.from(map.data[0].selectedpoints || []).join() === '0,1,2'")
    _wait(page, "(heat.layout.shapes || []).length >= 1")
    assert page.locator(".pw-selection").text_content() == "img0,img1,img2"
    page_rec.shot("2_prompt_added")

    page.locator(".pw-move").click()  # e.g. PCA -> UMAP: new positions, same ids
    _wait(page, "map.data[0].x[0] === 7 && map.data[0].x[39] === 46")
    assert _eval(page, "map.data[1].text.length") == 3  # prompts untouched by a position update
    page_rec.shot("3_points_moved")


def test_3_selection_in_the_page_reaches_python(page_rec):
    page = page_rec.page
    # plotly's own event, emitted on the graph div as a lasso would
    _eval(
        page,
        "map.emit('plotly_selected', {points: arg.map(i => ({curveNumber: 0, pointIndex: i,"
        " pointNumber: i}))})",
        [4, 5, 6],
    )
    page.locator(".pw-selection", has_text="img4,img5,img6").wait_for(timeout=STEP_TIMEOUT_MS)

    # a real mouse lasso around the whole plot area selects every image
    box = page.locator(f"{GRAPHS} .nsewdrag").first.bounding_box()
    x0, y0 = box["x"] + 3, box["y"] + 3
    x1, y1 = box["x"] + box["width"] - 3, box["y"] + box["height"] - 3
    page.mouse.move(x0, y0)
    page.mouse.down()
    for x, y in [(x1, y0), (x1, y1), (x0, y1), (x0, y0 + 5)]:
        page.mouse.move(x, y, steps=10)
    page.mouse.up()
    _wait(page, "document.querySelector('.pw-selection').textContent.split(',').length === 40")
    page_rec.shot("4_lasso")
    assert page_rec.dialogs == []
    assert not [e for e in page_rec.console_errors if "clipviz" in e], page_rec.console_errors


# ---------------------------------------------------------------------------- JupyterLab
@pytest.fixture(scope="module")
def lab_url(tmp_path_factory):
    """A JupyterLab server (isolated settings) on a copy of the notebook; yields its URL."""
    pytest.importorskip("jupyterlab")
    import os
    import secrets
    import shutil
    import subprocess
    import sys

    from conftest import NOTEBOOKS, VoilaServer, _free_port

    work = tmp_path_factory.mktemp("lab")
    shutil.copy(NOTEBOOKS / "plotly_widget.ipynb", work)
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR"):
        env[name] = str(work / name.lower())
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root"]
    cmd += [f"--port={port}", "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0"]
    cmd += [f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}"]
    log = open(work / "lab.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    probe = VoilaServer.__new__(VoilaServer)  # reuse its bounded readiness poll
    probe.port, probe.token, probe.proc, probe.log_path = port, token, proc, work / "lab.log"
    try:
        probe.wait_ready()
        yield f"http://127.0.0.1:{port}/lab/tree/plotly_widget.ipynb?token={token}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def test_jupyterlab_updates_reach_the_page_and_a_reload_shows_the_current_figure(lab_url, browser):
    from conftest import PageRecorder

    context = browser.new_context(viewport={"width": 1400, "height": 1400})
    context.set_default_timeout(STEP_TIMEOUT_MS)
    rec = PageRecorder(context.new_page(), "plotly_widget_lab")
    page = rec.page
    try:
        page.goto(lab_url, timeout=RENDER_TIMEOUT_MS)
        page.locator(".jp-Notebook").first.wait_for(timeout=RENDER_TIMEOUT_MS)
        # the status bar says "Idle" once the kernel has started
        page.locator(".jp-StatusBar-Widget", has_text="Idle").first.wait_for(
            timeout=RENDER_TIMEOUT_MS
        )
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        try:
            page.wait_for_function(
                f"document.querySelectorAll('{GRAPHS} .main-svg').length >= 2",
                timeout=RENDER_TIMEOUT_MS,
            )
        except Exception:
            rec.shot("failed_render")
            raise
        assert page.evaluate("globalThis.__clipvizPlotlyLoads") == 1
        page.locator(".pw-add").click()
        _wait(page, "map.data[1].text.length === 3 && map.data[1].text[2] === arg", NEW_PROMPT)
        page.locator(".pw-move").click()
        _wait(page, "map.data[0].x[0] === 7")
        _eval(page, "map.emit('plotly_selected', {points: [{curveNumber: 0, pointIndex: 9}]})")
        page.locator(".pw-selection", has_text="img9").wait_for()
        rec.shot("1_updated")
        # Save (outputs keep the widget views) and reload: the widget manager rebuilds the
        # models from the kernel, which must hand over the figure as it is now.
        page.keyboard.press("Control+s")
        page.wait_for_timeout(2000)
        page.reload()
        page.wait_for_function(
            f"document.querySelectorAll('{GRAPHS} .main-svg').length >= 2",
            timeout=RENDER_TIMEOUT_MS,
        )
        _wait(page, "map.data[1].text[2] === arg && map.data[0].x[0] === 7", NEW_PROMPT)
        assert _eval(page, "Array.from(map.data[0].selectedpoints || [])") == [9]
        rec.shot("2_reloaded")
        assert rec.dialogs == []
    finally:
        context.close()
