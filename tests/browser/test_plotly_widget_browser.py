"""PlotlyFigure in a real browser (Voila + headless chromium): updates travel both ways.

plotly's own FigureWidget drew once and then ignored edits made from Python, so the map and
heatmap went stale. These steps run in order on one page (tests/notebooks/plotly_widget.ipynb):
buttons in the page run Python callbacks that edit the views, and the test reads the plotted
data back from the graph divs (``gd.data`` / ``gd.layout``); then selections made in the page
(a synthetic plotly event, then a real mouse lasso) must arrive in Python. Each step saves a
screenshot under artifacts/screenshots/.
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
    assert page.locator(f"{GRAPHS} canvas").count() >= 1  # the WebGL points
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
