"""The Workbench in a real browser (Voila + headless chromium), as a person would use it.

One notebook (tests/notebooks/workbench.ipynb) builds a Workbench on the bundled model and 24
shape images, one of them named ``<img src=x onerror=alert(1)>.png``. The steps run in order on
one page, as a person would: look, type new prompts, click the heatmap, lasso in the map. Each
step saves a screenshot under artifacts/screenshots/. The static snapshot output that follows
the widget (hidden where the widget renders) has cells too, so every selector is scoped to the
live ``.clipviz-workbench``.
"""
from __future__ import annotations

import pytest

HOSTILE_NAME = "<img src=x onerror=alert(1)>.png"
N_IMAGES = 24
RENDER_TIMEOUT_MS = 150_000  # kernel start, model load, 24 images embedded, on 2 busy cores
STEP_TIMEOUT_MS = 45_000  # one browser -> kernel -> browser round trip with a recomputation

GRID = ".clipviz-workbench .clipviz-cell"
MAP = ".clipviz-workbench .clipviz-map-view"  # the WebGL map (anywidget)
HEATMAP = ".clipviz-workbench .clipviz-pane-heatmap .js-plotly-plot"


@pytest.fixture(scope="module")
def workbench_page(voila, browser):
    """One page on the workbench notebook, shared by the ordered steps below."""
    from conftest import PageRecorder
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    server = voila("workbench.ipynb")
    context = browser.new_context(viewport={"width": 1500, "height": 2000})
    context.set_default_timeout(STEP_TIMEOUT_MS)
    rec = PageRecorder(context.new_page(), "workbench")
    rec.page.goto(server.url, timeout=RENDER_TIMEOUT_MS, wait_until="domcontentloaded")
    try:
        rec.page.locator(GRID).first.wait_for(state="visible", timeout=RENDER_TIMEOUT_MS)
    except PlaywrightTimeout as err:
        rec.shot("failed_render")
        log = server.log_tail()
        raise AssertionError(f"the workbench did not render; voila log:\n{log}") from err
    yield rec
    context.close()


def _topk_names(page) -> list[str]:
    return page.eval_on_selector_all(".clipviz-workbench .clipviz-topk-name", "els => els.map(e => e.textContent)")


def test_1_grid_map_and_heatmap_render(workbench_page):
    page = workbench_page.page
    page.locator(f"{MAP} .clipviz-map-prompt").first.wait_for(state="attached")
    page.locator(f"{HEATMAP} .main-svg").first.wait_for(state="attached")
    assert page.locator(GRID).count() == N_IMAGES
    assert page.locator(f"{MAP} canvas").count() >= 1  # the WebGL image points
    assert page.locator(f"{HEATMAP} .hm, {HEATMAP} image").count() >= 1  # the heatmap raster
    widths = page.eval_on_selector_all(".clipviz-workbench .clipviz-thumb", "els => els.map(e => e.naturalWidth)")
    assert len(widths) == N_IMAGES and min(widths) > 0, "a thumbnail did not decode"
    assert set(_topk_names(page)) <= {"circle", "square", "triangle", "star", "hexagon", "cross"}
    workbench_page.shot("1_rendered")


def test_2_hostile_file_name_is_text_and_runs_nothing(workbench_page):
    page = workbench_page.page
    cell_id = page.locator(".clipviz-workbench .clipviz-cell-id", has_text="onerror")
    assert cell_id.count() == 1
    assert cell_id.text_content().endswith(HOSTILE_NAME)
    assert page.locator('img[src="x"]').count() == 0
    # Hovering the heatmap and the map shows hover labels built from the ids: still no script.
    page.locator(f"{HEATMAP} .nsewdrag").first.hover()
    page.locator(f"{MAP} .clipviz-map-canvas").first.hover()
    page.wait_for_timeout(500)
    assert workbench_page.dialogs == []
    workbench_page.shot("2_hostile_name")


def test_3_typing_new_prompts_relabels_the_grid(workbench_page):
    page = workbench_page.page
    new = ["red", "green", "blue"]
    area = page.locator(".clipviz-prompt-prompts textarea")
    assert area.is_visible(), "the prompt set A textarea is not visible: nobody can type prompts"
    area.fill("\n".join(new))
    page.locator(".clipviz-prompt-apply").click()
    page.wait_for_function(
        """(names) => {
            const shown = [...document.querySelectorAll('.clipviz-workbench .clipviz-topk-name')].map(e => e.textContent);
            return shown.length > 0 && shown.every(t => names.includes(t));
        }""",
        arg=new,
        timeout=STEP_TIMEOUT_MS,
    )
    assert set(_topk_names(page)) <= set(new)
    workbench_page.shot("3_new_prompts")


def test_4_heatmap_click_selects_in_the_grid(workbench_page):
    page = workbench_page.page
    assert page.locator(".clipviz-workbench .clipviz-cell.clipviz-selected").count() == 0
    # Click inside the first column; playwright checks that the plot, not something laid over
    # it, receives the click (and names the covering element if not).
    drag = page.locator(f"{HEATMAP} .nsewdrag").first
    box = drag.bounding_box()
    drag.click(position={"x": 12, "y": box["height"] / 2})
    selected = page.locator(".clipviz-workbench .clipviz-cell.clipviz-selected")
    selected.first.wait_for(state="visible", timeout=STEP_TIMEOUT_MS)
    assert selected.count() == 1  # one heatmap row = one image here (24 rows, no averaging)
    workbench_page.shot("4_heatmap_click")


def test_5_map_lasso_selects_in_the_grid(workbench_page):
    page = workbench_page.page
    page.locator(f"{MAP} .clipviz-map-mode[data-mode='lasso']").click()
    box = page.locator(f"{MAP} .clipviz-map-stage").first.bounding_box()
    # A lasso around the whole plot area: every image point falls inside it.
    x0, y0, x1, y1 = (
        box["x"] + 3,
        box["y"] + 3,
        box["x"] + box["width"] - 3,
        box["y"] + box["height"] - 3,
    )
    page.mouse.move(x0, y0)
    page.mouse.down()
    for x, y in [(x1, y0), (x1, y1), (x0, y1), (x0, y0 + 5)]:
        page.mouse.move(x, y, steps=12)
    page.mouse.up()
    page.wait_for_function(
        "n => document.querySelectorAll('.clipviz-workbench .clipviz-cell.clipviz-selected').length === n",
        arg=N_IMAGES,
        timeout=STEP_TIMEOUT_MS,
    )
    workbench_page.shot("5_map_lasso")
    assert workbench_page.dialogs == []
