"""The WebGL map in real headless chromium, bridged to the real Python EmbeddingMap (no kernel).

100k points render; a box drag selects what is inside it and Python receives those ids; a
selection set from Python replaces the highlight and enlarges a lone point; zooming during PCA
and then the UMAP arrival leaves every point in view (the empty-map bug); hovering fetches one
thumbnail from Python; prompt labels are drawn above the points as text; dark theme variables
are used; while the camera moves a sample of the points is drawn (every selected one among
them), and once it is still all N are drawn again, exactly as a fresh frame would draw them.
Screenshots land in artifacts/screenshots/map_*.png.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import SCREENSHOTS
from widget_bridge import WidgetPage

from clipviz.views.embedding_map import EmbeddingMap

pytestmark = pytest.mark.browser
N = 100_000
EVIL = "<img src=x onerror=alert(1)>"
MAP = "document.getElementById('root').__clipvizMap"
# Every WebGL draw call of points, [page time, count]: what was drawn, whatever the page reports.
GL_PROBE = """
window.__pointDraws = [];
const getContext = HTMLCanvasElement.prototype.getContext;
HTMLCanvasElement.prototype.getContext = function (type, opts) {
  const gl = getContext.call(this, type, opts);
  if (gl && type.startsWith("webgl") && !gl.__probed) {
    gl.__probed = true;
    const draw = gl.drawArrays.bind(gl);
    gl.drawArrays = (mode, first, count) => {
      draw(mode, first, count);
      if (mode === gl.POINTS) window.__pointDraws.push([performance.now(), count]);
    };
  }
  return gl;
};
"""


def _clusters(n: int, scale: float, offset: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(8, 2)) * 3
    return (centres[np.arange(n) % 8] + rng.normal(size=(n, 2))) * scale + offset


def _png(i: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (48, 48), (40 * (i % 6), 120, 200)).save(buf, format="PNG")
    return buf.getvalue()


def _shot(wp: WidgetPage, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    wp.page.screenshot(path=str(SCREENSHOTS / f"map_{name}.png"))


def _wait_drawn(wp: WidgetPage, revision: int) -> None:
    wp.pump()
    wp.page.wait_for_function(
        f"{MAP}.points?.revision === {revision} && {MAP}.stats.firstDrawAt !== null", timeout=60_000
    )
    wp.page.wait_for_timeout(300)  # the camera fit and overlay land in the next frame


def _in_view(wp: WidgetPage) -> int:
    _wait_still(wp)  # while the camera moves only a sample is in the view
    return wp.page.evaluate(f"{MAP}.sp.get('pointsInView').length")


def _wait_still(wp: WidgetPage) -> None:
    wp.page.wait_for_function(f"!{MAP}.lod?.active", timeout=30_000)
    wp.page.evaluate("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")


@pytest.fixture(scope="module")
def mapped(browser):
    labels = [f"class {k % 8}" for k in range(N)]
    view = EmbeddingMap(height=520)
    prompts = [*(f"class {k}" for k in range(7)), EVIL]
    view.set_points(_clusters(N, 0.1, 0.0, 0), [f"img{k}" for k in range(N)], labels,
                    _clusters(8, 0.1, 0.0, 0)[:8], prompts, true_labels=labels[::-1])  # fmt: skip
    view.method, view.pending = "pca", "umap"
    asked: list[int] = []
    view.thumbnail_provider = lambda i: (asked.append(i), _png(i))[1]
    wp = WidgetPage(browser, view.map_widget, init_script=GL_PROBE)
    dialogs: list[str] = []
    wp.page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    _wait_drawn(wp, 1)
    wp.view, wp.asked, wp.dialogs, wp.prompts = view, asked, dialogs, prompts
    yield wp
    wp.close()


def test_100k_points_render_with_prompt_labels_above_as_text(mapped):
    wp = mapped
    _shot(wp, "100k_rendered")
    assert wp.errors == []
    assert _in_view(wp) == N
    labels = wp.page.locator(".clipviz-map-overlay .clipviz-map-prompt text")
    assert labels.all_text_contents() == wp.prompts  # EVIL shown as text
    assert wp.page.locator("img[src='x']").count() == 0 and wp.dialogs == []
    # the overlay is stacked after (above) the GL canvas and every label sits inside the stage
    order = wp.page.evaluate(
        "(() => { const s = document.querySelector('.clipviz-map-stage');"
        "return [...s.children].map((c) => c.getAttribute('class')); })()"
    )
    assert order.index("clipviz-map-overlay") > order.index("clipviz-map-canvas")
    stage = wp.page.locator(".clipviz-map-stage").bounding_box()
    for box in (labels.nth(k).bounding_box() for k in range(7)):
        assert stage["x"] <= box["x"] and box["x"] + box["width"] <= stage["x"] + stage["width"]
    assert "PCA · UMAP computing" in wp.page.locator(".clipviz-map-method").inner_text()


def _screen_xy(wp: WidgetPage) -> np.ndarray:
    """Where the page draws every point now (CSS px in the stage), from its camera."""
    view = np.array(wp.page.evaluate(f"Array.from({MAP}.view)"), np.float64)
    size = wp.page.evaluate(f"{MAP}.size()")
    w, h = size["width"], size["height"]
    from clipviz.views import _map_widget as wire

    xy = wire.normalise(wp.view._xy, wp.view._extent).astype(np.float64)
    cx = (view[0] * xy[:, 0] + view[4] * xy[:, 1] + view[12]) / (w / h)
    cy = view[1] * xy[:, 0] + view[5] * xy[:, 1] + view[13]
    return np.stack([w * (cx + 1) / 2, h * (0.5 - cy / 2)], axis=1)


def test_box_selection_reaches_python_and_python_selection_replaces_it(mapped):
    wp = mapped
    wp.page.locator(".clipviz-map-mode[data-mode='box']").click()
    stage = wp.page.locator(".clipviz-map-stage").bounding_box()
    x0, y0, x1, y1 = 250, 150, 450, 330  # in the stage
    mouse = wp.page.mouse
    mouse.move(stage["x"] + x0, stage["y"] + y0)
    mouse.down()
    for k in range(1, 21):
        mouse.move(stage["x"] + x0 + (x1 - x0) * k / 20, stage["y"] + y0 + (y1 - y0) * k / 20)
        wp.page.wait_for_timeout(15)
    mouse.up()
    wp.page.wait_for_timeout(300)
    _shot(wp, "box_selected")
    wp.pump()
    chosen = set(wp.view.selection)
    sxy = _screen_xy(wp)
    inside = (sxy[:, 0] > x0) & (sxy[:, 0] < x1) & (sxy[:, 1] > y0) & (sxy[:, 1] < y1)
    expected = {f"img{k}" for k in np.flatnonzero(inside)}
    assert len(expected) > 500
    overlap = len(chosen & expected) / len(chosen | expected)
    assert overlap > 0.97, (len(chosen), len(expected))  # border points may differ by rounding
    assert wp.page.locator(".clipviz-map-count").inner_text() == f"{len(chosen):,} selected"
    # a freeform lasso (a circle) replaces it
    wp.page.locator(".clipviz-map-mode[data-mode='lasso']").click()
    cx, cy, r = 560, 260, 90
    ring = [(cx + r * np.cos(a), cy + r * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 37)]
    mouse.move(stage["x"] + ring[0][0], stage["y"] + ring[0][1])
    mouse.down()
    for px, py in ring[1:]:
        mouse.move(stage["x"] + px, stage["y"] + py)
        wp.page.wait_for_timeout(15)
    mouse.up()
    wp.page.wait_for_timeout(300)
    wp.pump()
    _shot(wp, "lasso_selected")
    lassoed = set(wp.view.selection)
    inside = np.hypot(sxy[:, 0] - cx, sxy[:, 1] - cy) < r * np.cos(np.pi / 36)  # inscribed
    expected = {f"img{k}" for k in np.flatnonzero(inside)}
    assert len(expected) > 500 and len(expected - lassoed) < 0.01 * len(expected)
    outside = {f"img{k}" for k in np.flatnonzero(np.hypot(sxy[:, 0] - cx, sxy[:, 1] - cy) > r + 2)}
    assert not lassoed & outside  # nothing outside the drawn ring
    # a grid click in the workbench sets one id from Python: it replaces the lasso selection
    wp.view.selection = ["img42"]
    wp.page.wait_for_timeout(300)
    assert wp.page.evaluate(f"{MAP}.sp.get('selectedPoints')") == [42]
    assert wp.page.locator(".clipviz-map-count").inner_text() == "1 selected"
    assert wp.page.locator(".clipviz-map-ring").count() == 1  # a lone point is marked, enlarged
    assert wp.page.evaluate(f"{MAP}.sp.get('pointSizeSelected')") > wp.page.evaluate(
        f"{MAP}.sp.get('pointSize')"
    )
    _shot(wp, "python_selection_replaces_box")
    wp.page.locator(".clipviz-map-mode[data-mode='pan']").click()


def test_hover_fetches_one_thumbnail_from_python(mapped):
    wp = mapped
    wp.view.selection = []
    stage = wp.page.locator(".clipviz-map-stage").bounding_box()
    sxy = _screen_xy(wp)
    target = int(np.argmin(np.abs(sxy - sxy.mean(axis=0)).sum(axis=1)))
    wp.page.mouse.move(stage["x"] + sxy[target, 0], stage["y"] + sxy[target, 1])
    tip = wp.page.locator(".clipviz-map-tip")
    for _ in range(60):  # the page asks after a short debounce; answer whenever it does
        wp.page.wait_for_timeout(250)
        wp.pump()
        if tip.is_visible():
            break
    assert tip.is_visible()
    hovered = wp.view.hover
    assert hovered is not None and hovered in tip.inner_text()
    width = wp.page.evaluate(
        "document.querySelector('.clipviz-map-tip-img').decode()"
        ".then(() => document.querySelector('.clipviz-map-tip-img').naturalWidth)"
    )
    assert width == 48
    assert 1 <= len(wp.asked) <= 3  # one image per hover, never all of them
    _shot(wp, "hover_thumbnail")


def test_zoom_during_pca_then_umap_arrives_with_every_point_in_view(mapped):
    wp = mapped
    stage = wp.page.locator(".clipviz-map-stage").bounding_box()
    wp.page.mouse.move(stage["x"] + 120, stage["y"] + 100)
    for _ in range(12):  # zoom far into a corner while PCA is shown
        wp.page.mouse.wheel(0, -300)
        wp.page.wait_for_timeout(40)
    wp.page.wait_for_timeout(300)
    zoomed = _in_view(wp)
    assert zoomed < N // 4, zoomed
    _shot(wp, "zoomed_during_pca")
    # UMAP arrives: another range entirely (as in the issue: x [-12.6, 20.9] vs [-1.15, 0.33])
    view = wp.view
    view.set_points(_clusters(N, 2.5, 4.0, 1), view._ids, view._predicted,
                    _clusters(8, 2.5, 4.0, 1), wp.prompts, true_labels=view._true)  # fmt: skip
    view.method, view.pending = "umap", ""
    _wait_drawn(wp, 2)
    _shot(wp, "umap_arrived")
    assert _in_view(wp) == N  # fitted to the new data, not left at the PCA zoom
    assert wp.page.locator(".clipviz-map-method").inner_text() == "UMAP"
    # a prompt edit afterwards keeps the user's view
    wp.page.mouse.wheel(0, -300)
    wp.page.wait_for_timeout(300)
    before = _in_view(wp)
    view.update_prompts(np.zeros((1, 2)), ["a new prompt"])
    # a relabelling, as a prompt edit gives
    view.set_labels([f"class {k % 8}" for k in range(N)][::-1])
    wp.page.wait_for_timeout(500)
    assert _in_view(wp) == before < N
    assert wp.page.locator(".clipviz-map-prompt text").all_text_contents() == ["a new prompt"]


def test_dark_theme_variables_are_used(browser):
    view = EmbeddingMap(height=300)
    view.set_points(_clusters(2000, 1.0, 0.0, 2), [f"d{k}" for k in range(2000)],
                    [f"class {k % 8}" for k in range(2000)], np.zeros((1, 2)), ["class 0"])  # fmt: skip
    dark = (":root { --jp-layout-color0: #111111; --jp-layout-color1: #222222; "
            "--jp-ui-font-color1: #eeeeee; --jp-border-color1: #555555; }")  # fmt: skip
    wp = WidgetPage(browser, view.map_widget, width=600, height=420, page_css=dark)
    try:
        _wait_drawn(wp, 1)
        _shot(wp, "dark_theme")
        assert wp.page.evaluate(f"{MAP}.bg") == "#111111"  # the GL canvas background
        fill = wp.page.evaluate(
            "getComputedStyle(document.querySelector('.clipviz-map-prompt text')).fill"
        )
        assert fill == "rgb(238, 238, 238)"  # light text on the dark background
        bar = wp.page.evaluate(
            "getComputedStyle(document.querySelector('.clipviz-map-view')).color"
        )
        assert bar == "rgb(238, 238, 238)"
    finally:
        wp.close()


def _pixels(wp: WidgetPage) -> bytes:
    js = (f"(() => {{ const c = {MAP}.dom.canvas;"
          "return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); })()")  # fmt: skip
    return bytes(wp.page.evaluate(js))


def test_moving_draws_a_sample_then_every_point_when_still(mapped):
    wp, page = mapped, mapped.page
    wp.view.selection = [f"img{k}" for k in range(0, N, 25)]  # 4,000 selected: all kept
    _wait_still(wp)
    page.locator(".clipviz-map-mode[data-mode='pan']").click()
    stage = page.locator(".clipviz-map-stage").bounding_box()
    x, y = stage["x"] + 300, stage["y"] + 200
    page.mouse.move(x, y)
    start = page.evaluate("performance.now()")
    for k in range(4):  # a zoom gesture, then a drag-pan
        page.mouse.wheel(0, -100 if k % 2 else 120)
        page.wait_for_timeout(30)
    page.mouse.down()
    for k in range(1, 11):
        page.mouse.move(x + 8 * k, y + 4 * k)
    moving_until = page.evaluate("performance.now()")
    assert page.evaluate(f"{MAP}.sp.get('selectedPoints').length") == 4000
    _shot(wp, "100k_mid_drag")
    page.mouse.up()
    _wait_still(wp)
    page.wait_for_timeout(400)
    _shot(wp, "100k_after_idle")
    draws = page.evaluate("window.__pointDraws")
    moving = [c for t, c in draws if start < t <= moving_until]
    sample = page.evaluate(f"{MAP}.lod?.rows?.length ?? 0")
    assert 20_000 <= sample < 24_000  # the sample plus the selected points outside it
    assert sample in moving and N not in moving[-3:], moving  # moving frames drew the sample
    bodies = [c for _, c in draws if c > 4000]  # not the selected points' own draws
    assert bodies[-1] == N  # the frame left on screen has every point
    assert page.evaluate(f"{MAP}.sp.get('selectedPoints').length") == 4000
    wp.pump()
    assert len(wp.view.selection) == 4000  # the sample never reached Python as a selection
    # the frame left is the one a fresh draw gives (the density opacity counts all N again)
    still = _pixels(wp)
    page.evaluate(
        f"new Promise((r) => {{ {MAP}.sp.subscribe('draw', () => requestAnimationFrame(r), 1);"
        f"{MAP}.sp.view({MAP}.sp.get('cameraView')); }})"
    )
    assert _pixels(wp) == still
    wp.view.selection = []


def test_a_lone_wheel_notch_draws_every_point_at_once(mapped):
    # the sample only pays off over a gesture: one notch after a still moment goes straight to
    # the full frame instead of a sample frame and a LOD_IDLE_MS wait before it
    wp, page = mapped, mapped.page
    wp.view.selection = []
    _wait_still(wp)
    stage = page.locator(".clipviz-map-stage").bounding_box()
    page.mouse.move(stage["x"] + 300, stage["y"] + 200)
    page.wait_for_timeout(600)  # still: no notch and no frame for longer than LOD_IDLE_MS
    start = page.evaluate("performance.now()")
    page.mouse.wheel(0, -120)
    page.wait_for_function(f"window.__pointDraws.some(([t, c]) => t > {start} && c === {N})")
    draws = [c for t, c in page.evaluate("window.__pointDraws") if t > start]
    assert draws[0] == N, draws[:5]
    assert page.evaluate(f"{MAP}.lod.stats.enters") == page.evaluate(f"{MAP}.lod.stats.restores")
    for k in range(6):  # a gesture: notches close together draw the sample
        page.mouse.wheel(0, -60 if k % 2 else 60)
        page.wait_for_timeout(40)
    sample = page.evaluate(f"{MAP}.lod.rows.length")
    assert sample in [c for t, c in page.evaluate("window.__pointDraws") if t > start]
    _wait_still(wp)


def test_a_drag_pan_asks_python_for_no_thumbnail(mapped):
    wp, page = mapped, mapped.page
    wp.view.selection = []
    _wait_still(wp)
    page.locator(".clipviz-map-mode[data-mode='pan']").click()
    stage = page.locator(".clipviz-map-stage").bounding_box()
    sxy = _screen_xy(wp)
    centre = sxy[int(np.argmin(np.abs(sxy - sxy.mean(axis=0)).sum(axis=1)))]
    x, y = stage["x"] + centre[0], stage["y"] + centre[1]
    page.mouse.move(x - 60, y)
    asked = -1
    while asked != len(wp.asked):  # the hover before the drag may ask once: let it land first
        asked = len(wp.asked)
        page.wait_for_timeout(600)  # then two frames: a debounce timer due by now has fired
        page.evaluate("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
        wp.pump()
    page.mouse.down()
    for k in range(1, 16):  # across the densest part of the map, 100 ms per move
        page.mouse.move(x - 60 + 8 * k, y)
        page.wait_for_timeout(100)
    wp.pump()
    assert len(wp.asked) == asked, wp.asked[asked:]
    assert not page.locator(".clipviz-map-tip").is_visible()
    page.mouse.up()
    _wait_still(wp)
