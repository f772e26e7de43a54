"""grid.js in a real headless chromium, driven by a minimal in-page widget model (no kernel).

The model object implements the few anywidget calls grid.js uses (get/set/on/off/save_changes/
send), fed with the real state that PredictionGrid produces. Checks: cells render from the
thumbnails the page asks for (answered with PredictionGrid's real reply), clicks set ``selection`` (shift adds), Python-side selection highlights,
and an HTML file name renders as text with no script run.
"""

from __future__ import annotations

import base64
import json
import pathlib
import shutil

import numpy as np
import pytest

from clipviz.engine.thumbnails import make_thumbnails
from clipviz.views.grid import PredictionGrid

XSS = "<img src=x onerror=alert(1)>.png"
FOLDER_ID = "circle/000009.png"  # from_folder's ids: class folder / file name
pytestmark = pytest.mark.browser

PAGE = """<!doctype html><html><body><div id="root"></div><script type="module">
const state = __STATE__;
const handlers = {};
// Python's reply to a thumbnail request, delivered as anywidget delivers custom messages.
window.deliver = (msg, b64) => {
  const bin = atob(b64); const u8 = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) u8[i] = bin.charCodeAt(i);
  (handlers["msg:custom"] || []).forEach((f) => f(msg, [new DataView(u8.buffer)]));
};
window.sent = []; window.saves = 0;
window.model = {
  get: (k) => state[k],
  set: (k, v) => { state[k] = v; (handlers["change:" + k] || []).forEach((f) => f()); },
  on: (e, f) => { (handlers[e] = handlers[e] || []).push(f); },
  off: (e, f) => { handlers[e] = (handlers[e] || []).filter((g) => g !== f); },
  save_changes: () => { window.saves += 1; },
  send: (m) => window.sent.push(m),
};
const mod = await import("./grid.js");
mod.default.render({ model: window.model, el: document.getElementById("root") });
window.ready = true;
</script></body></html>"""


@pytest.fixture(scope="module")
def page(tmp_path_factory, browser):
    # One playwright per process: the shared session ``browser`` (tests/browser/conftest.py).
    from clipviz.datasets import shapes

    images = shapes(12, seed=1).to_imageset("shape")
    ids = [XSS, FOLDER_ID, *images.ids[2:]]
    g = PredictionGrid(page_size=8)
    g.set_images(ids, make_thumbnails(images, 32))
    top = np.tile(np.array([[0, 1]]), (12, 1))
    g.set_predictions(["circle", XSS], top, np.full((12, 2), 0.5), labels=["circle"] * 11 + [XSS])
    state = {k: v for k, v in g.widget.get_state().items() if not k.startswith("_")}
    folder = tmp_path_factory.mktemp("gridjs")
    shutil.copy(pathlib.Path(__file__).parents[2] / "clipviz/views/grid.js", folder / "grid.js")
    (folder / "index.html").write_text(PAGE.replace("__STATE__", json.dumps(state)))
    pg = browser.new_page()
    dialogs: list[str] = []
    pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    # file:// blocks module imports; serve the folder through playwright's router instead.
    pg.route(
        "http://clipviz.test/**",
        lambda route: route.fulfill(
            path=str(folder / route.request.url.rsplit("/", 1)[-1]),
            content_type="text/javascript" if route.request.url.endswith(".js") else "text/html",
        ),
    )
    pg.goto("http://clipviz.test/index.html")
    pg.wait_for_function("window.ready === true", timeout=10_000)
    pg.dialogs, pg.errors, pg.ids, pg.grid = dialogs, errors, ids, g
    yield pg
    pg.close()


def _answer_thumbnail_requests(page) -> list[list[int]]:
    """Do what the kernel does: answer each thumbnail request with PredictionGrid's reply."""
    asked = [m["indices"] for m in page.evaluate("window.sent") if m.get("type") == "thumbs"]
    page.evaluate("window.sent = window.sent.filter((m) => m.type !== 'thumbs')")
    for indices in asked:
        for message, buffer in page.grid.thumbnail_messages(indices):
            page.evaluate(
                "([m, b]) => window.deliver(m, b)", [message, base64.b64encode(buffer).decode()]
            )
    return asked


def test_cells_render_with_images_and_labels(page):
    assert page.errors == []
    assert page.locator(".clipviz-cell").count() == 8
    assert page.locator(".clipviz-grid-page").inner_text().startswith("page 1 / 2")
    # The page asked for its own 8 thumbnails only (not all 12), then shows them.
    assert _answer_thumbnail_requests(page) == [list(range(8))]
    loaded = page.evaluate(
        "Promise.all([...document.querySelectorAll('img.clipviz-thumb')].map("
        "(i) => i.decode().then(() => i.naturalWidth)))"
    )
    assert all(w > 0 for w in loaded)  # the webp bytes from the binary buffer decode


def test_html_file_name_renders_as_text_and_runs_nothing(page):
    first = page.locator(".clipviz-cell").first
    assert first.locator(".clipviz-cell-id").inner_text() == XSS
    assert page.locator(".clipviz-topk-name", has_text="<img").count() >= 1
    assert page.locator("img[src='x']").count() == 0
    assert page.dialogs == []  # an onerror=alert(1) that ran would open a dialog


def test_a_folder_id_breaks_after_its_slash_not_inside_the_file_name(page):
    css = pathlib.Path(__file__).parents[2] / "clipviz" / "views" / "grid.css"
    page.add_style_tag(content=css.read_text())  # the grid's own wrapping rules
    lines = page.evaluate(
        """() => {
          const id = document.querySelectorAll('.clipviz-cell-id')[1];
          const name = [...id.childNodes].pop();  // the text node "000009.png"
          id.style.width = '80px';  // too narrow for the whole id on one line
          const range = document.createRange();
          range.selectNodeContents(name);
          const rows = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
          const all = document.createRange();
          all.selectNodeContents(id);
          const total = new Set([...all.getClientRects()].map((r) => Math.round(r.top)));
          id.style.width = '';
          return [id.textContent, id.title, rows.size, total.size];
        }"""
    )
    assert lines == [FOLDER_ID, FOLDER_ID, 1, 2], lines  # "circle/" over "000009.png"


def test_click_selects_and_shift_click_adds(page):
    cells = page.locator(".clipviz-cell")
    cells.nth(1).click()
    assert page.evaluate("model.get('selection')") == [page.ids[1]]
    cells.nth(3).click(modifiers=["Shift"])
    assert page.evaluate("model.get('selection')") == [page.ids[1], page.ids[3]]
    assert page.locator(".clipviz-cell.clipviz-selected").count() == 2
    assert page.evaluate("window.saves") >= 2


def test_selection_from_python_highlights_and_paging_asks_python(page):
    page.evaluate(f"model.set('selection', [{json.dumps(page.ids[5])}])")
    selected = page.locator(".clipviz-cell.clipviz-selected")
    assert selected.count() == 1 and selected.get_attribute("data-id") == page.ids[5]
    page.locator(".clipviz-grid-next").click()
    assert page.evaluate("model.get('page')") == 1  # Python then sends the next page's items


def test_a_new_page_asks_only_for_thumbnails_it_lacks(page):
    page.grid.page = 1  # as Python does after the click
    items = page.grid.widget.get_state()["items"]
    page.evaluate("items => model.set('items', items)", items)
    assert _answer_thumbnail_requests(page) == [[it["i"] for it in items]]
    page.evaluate("items => model.set('items', items)", page.grid.page_items())
    assert _answer_thumbnail_requests(page) == []  # already there: nothing asked again
    widths = page.evaluate(
        "Promise.all([...document.querySelectorAll('img.clipviz-thumb')].map("
        "(i) => i.decode().then(() => i.naturalWidth)))"
    )
    assert len(widths) == len(items) and min(widths) > 0
