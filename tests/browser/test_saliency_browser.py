"""Saliency in the Workbench in a real browser (Voila + headless chromium).

The grid's "where" menu turns each visible thumbnail into an overlay of where its top-1 prompt
matches: the test compares what the first cell shows before and after, pixel by pixel, as a
person would see it change. Clicking a cell then shows the detail view: the image and one map
per prompt. Screenshots land in artifacts/screenshots/.
"""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

RENDER_TIMEOUT_MS = 150_000  # kernel start, model load, 12 images embedded, on 2 busy cores
STEP_TIMEOUT_MS = 60_000
GRID = ".clipviz-workbench .clipviz-grid"
CELL = f"{GRID} .clipviz-cell"
N_PROMPTS = 6  # clipviz.datasets.SHAPES


@pytest.fixture(scope="module")
def saliency_page(voila, browser):
    from conftest import PageRecorder
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    server = voila("saliency.ipynb")
    context = browser.new_context(viewport={"width": 1500, "height": 1800})
    context.set_default_timeout(STEP_TIMEOUT_MS)
    rec = PageRecorder(context.new_page(), "saliency")
    rec.page.goto(server.url, timeout=RENDER_TIMEOUT_MS, wait_until="domcontentloaded")
    try:
        rec.page.locator(CELL).first.wait_for(state="visible", timeout=RENDER_TIMEOUT_MS)
        rec.page.wait_for_function(
            "() => [...document.querySelectorAll('.clipviz-workbench .clipviz-thumb')]"
            ".every(i => i.naturalWidth > 0)",
            timeout=STEP_TIMEOUT_MS,
        )
    except PlaywrightTimeout as err:
        rec.shot("failed_render")
        raise AssertionError(
            f"the workbench did not render; voila log:\n{server.log_tail()}"
        ) from err
    yield rec
    context.close()


def _pixels(page, selector: str) -> np.ndarray:
    shot = page.locator(selector).first.screenshot()
    return np.asarray(Image.open(io.BytesIO(shot)).convert("RGB")).astype(np.int16)


def test_where_toggle_overlays_the_grid_page(saliency_page):
    page = saliency_page.page
    where = page.locator(".clipviz-workbench .clipviz-grid-where")
    assert where.is_visible(), "the grid has no visible 'where' menu"
    options = where.locator("option").all_text_contents()
    assert options[:2] == ["where: off", "where: top-1 prompt"] and len(options) == 2 + N_PROMPTS
    thumb = f"{CELL} .clipviz-thumb"
    before = _pixels(page, thumb)
    saliency_page.shot("1_plain")
    where.select_option("top-1")
    deadline = time.monotonic() + STEP_TIMEOUT_MS / 1000
    changed = 0.0
    while time.monotonic() < deadline:
        page.wait_for_timeout(500)
        now = _pixels(page, thumb)
        if now.shape == before.shape:
            changed = float((np.abs(now - before).max(-1) > 20).mean())  # share of pixels
            if changed > 0.05:
                break
    assert changed > 0.05, "the first thumbnail did not change to an overlay"
    saliency_page.shot("2_where_top1")
    assert page.locator(f"{GRID}.clipviz-grid-where-on").count() == 1
    # every cell of the page got its overlay image (decoded)
    widths = page.eval_on_selector_all(thumb, "els => els.map(e => e.naturalWidth)")
    assert widths and min(widths) > 0


def test_clicking_a_cell_shows_one_map_per_prompt(saliency_page):
    page = saliency_page.page
    page.locator(CELL).nth(2).click()
    figures = page.locator(".clipviz-workbench .clipviz-saliency-detail figure")
    page.wait_for_function(
        "(n) => document.querySelectorAll("
        "'.clipviz-workbench .clipviz-saliency-detail figure').length === n",
        arg=N_PROMPTS + 1,
        timeout=STEP_TIMEOUT_MS,
    )
    captions = figures.locator("figcaption").all_text_contents()
    assert captions[0] == "image" and len(captions) == N_PROMPTS + 1
    assert page.locator(".clipviz-workbench .clipviz-saliency-method select").is_visible()
    page.locator(".clipviz-workbench .clipviz-saliency-detail").scroll_into_view_if_needed()
    saliency_page.shot("3_detail")
