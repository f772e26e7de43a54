"""plotly's ``go.FigureWidget`` in JupyterLab (dark), Notebook 7 and Voila: the reproducer.

clipviz draws its plotly views on its own ``PlotlyFigure`` because FigureWidget was said to
ignore Python-side updates. tests/notebooks/figurewidget.ipynb holds the failing case reported
upstream (plotly.py #4998: FigureWidgets built with their data, never displayed alone, in an
HBox with a fixed Layout) and clipviz's own patterns (figures built before display inside
VBox/HBox/Tab, one in a hidden tab; updates after display from a button callback and from a
background thread; a click and a box selection made with the real mouse arriving in Python).
Each host runs every step and records what it saw in artifacts/figurewidget_<host>.json; the
test then asserts every step passed, so a plotly upgrade that breaks one shows here.
docs/architecture.md ("Why our own plotly widget") quotes the results.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from conftest import REPO, SCREENSHOTS, PageRecorder
from jupyter_host import DARK, LIGHT, accept_kernel, jupyter_server, run_all

RENDER_MS = 150_000  # kernel start and five copies of plotly's 5 MB bundle on 2 busy cores
STEP_MS = 30_000
NOTEBOOK = "figurewidget.ipynb"


def _gd(cls: str, i: int = 0) -> str:
    """JS for the i-th plotly graph div under the element with class ``cls``."""
    # FigureWidget's view element is the graph div itself; a box holds them as children.
    return f"document.querySelectorAll('.{cls}.js-plotly-plot, .{cls} .js-plotly-plot')[{i}]"


@pytest.fixture(params=["voila", "jupyterlab", "notebook"])
def host(request, tmp_path, voila):
    """(name, url, theme) of a server on the notebook: Voila, JupyterLab (dark), Notebook 7."""
    name = request.param
    if name == "voila":
        yield name, voila(NOTEBOOK).url, "light"
        return
    theme = DARK if name == "jupyterlab" else LIGHT
    with jupyter_server(name, tmp_path, NOTEBOOK, theme) as url:
        yield name, url, theme


class Steps:
    """Runs named checks in order, recording pass/fail (and why) instead of stopping."""

    def __init__(self, rec: PageRecorder) -> None:
        self.rec, self.results = rec, {}

    def check(self, name: str, fn: Callable[[], object]) -> None:
        try:
            detail = fn()
            self.results[name] = {"ok": True, "detail": detail}
        except Exception as err:  # noqa: BLE001 - recorded, then asserted at the end
            self.results[name] = {"ok": False, "detail": f"{type(err).__name__}: {err}"[:400]}
            self.rec.shot(f"failed_{name}")

    def wait(self, expr: str, timeout: int = STEP_MS) -> None:
        self.rec.page.wait_for_function(f"() => {{ return {expr}; }}", timeout=timeout)

    def js(self, expr: str) -> object:
        return self.rec.page.evaluate(f"() => {{ return {expr}; }}")


def _drawn(steps: Steps) -> object:
    steps.wait(
        "document.querySelectorAll('.repro-4998 .js-plotly-plot .main-svg').length >= 2"
        f" && {_gd('fw-heat')} && {_gd('fw-heat')}.querySelector('.hm')"
        f" && {_gd('fw-scatter')} && {_gd('fw-scatter')}.querySelectorAll('.point').length",
        RENDER_MS,
    )
    return steps.js("document.querySelectorAll('.js-plotly-plot').length")


def _repro_4998(steps: Steps) -> object:
    """Both figures of the box draw their data at a size that fits the 1050 x 320 box."""
    line, bar = _gd("repro-4998", 0), _gd("repro-4998", 1)
    seen = steps.js(
        f"[{line}.data[0].y, {bar}.data[0].type, {line}.querySelectorAll('.scatterlayer .point')"
        f".length, {bar}.querySelectorAll('.bars .point').length,"
        f" [{line}, {bar}].map(g => [g._fullLayout.width, g._fullLayout.height]),"
        " document.querySelector('.repro-4998').getBoundingClientRect().width]"
    )
    ys, kind, points, bars, sizes, box_width = seen
    assert ys == [1, 2, 3] and kind == "bar", seen
    assert points == 3 and bars == 3, f"drawn: {points} line points, {bars} bars"
    assert all(w >= 300 for w, _ in sizes), f"figure sizes {sizes}"
    assert sum(w for w, _ in sizes) <= box_width + 2, f"sizes {sizes} in a {box_width}px box"
    return {"sizes": sizes, "box_width": box_width}


def _heat_updated(steps: Steps, button: str, drawn: str) -> None:
    """Click ``button`` and wait until the heatmap shows ``drawn`` (a JS condition on ``gd``).

    On a timeout, say whether the kernel ran the callback (the notebook's ``ran`` label): a
    dropped update and a click that never reached Python are different failures.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    steps.rec.page.locator(f".fw-{button}").click()
    heat = _gd("fw-heat")
    try:
        steps.wait(f"(gd => {drawn})({heat})")
    except PlaywrightTimeout as err:
        ran = steps.js("document.querySelector('.fw-ran')?.textContent")
        raise AssertionError(f"heatmap not updated; the kernel's label says {ran!r}") from err


def _button_update(steps: Steps) -> object:
    _heat_updated(
        steps, "update", "gd.layout.title?.text === 'from a button' && gd.data[0].z[0][0] === 0.25"
    )
    return steps.js(f"{_gd('fw-heat')}.querySelector('.gtitle').textContent")


def _thread_update(steps: Steps) -> object:
    _heat_updated(
        steps,
        "thread",
        "gd.layout.title?.text === 'from a thread' && gd.data[0].y[0] === 'thread row 0'"
        " && gd.data[0].z[11][5] === 71",
    )
    heat = _gd("fw-heat")
    ticks = steps.js(f"Array.from({heat}.querySelectorAll('.ytick text')).map(t => t.textContent)")
    assert "thread row 0" in ticks, ticks
    return ticks[:2]


def _mouse_click(steps: Steps) -> object:
    page = steps.rec.page
    box = page.locator(".fw-heat .nsewdrag").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.05, box["y"] + box["height"] * 0.04)
    page.mouse.click(box["x"] + box["width"] * 0.05, box["y"] + box["height"] * 0.04)
    label = page.locator(".fw-clicked")
    label.filter(has_text="|").wait_for(timeout=STEP_MS)
    text = label.text_content()
    assert text.startswith("prompt 0|"), text
    return text


def _mouse_box_selection(steps: Steps) -> object:
    page = steps.rec.page
    box = page.locator(".fw-scatter .nsewdrag").first.bounding_box()
    page.mouse.move(box["x"] + 2, box["y"] + 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] - 2, box["y"] + box["height"] - 2, steps=12)
    page.mouse.up()
    label = page.locator(".fw-selected").filter(has_text=",")
    label.wait_for(timeout=STEP_MS)
    picked = label.text_content().split(",")
    assert len(picked) == 20, picked
    return len(picked)


def _hidden_tab(steps: Steps) -> object:
    page = steps.rec.page
    page.locator(".lm-TabBar-tab", has_text="metrics").first.click()
    gd = _gd("fw-confusion")
    steps.wait(f"{gd} && {gd}.querySelector('.hm') && {gd}.getBoundingClientRect().width > 300")
    return steps.js(f"[{gd}._fullLayout.width, {gd}.getBoundingClientRect().width]")


def _theme(steps: Steps) -> object:
    """What the figure looks like in this host's theme (recorded, not judged)."""
    return steps.js(
        f"[getComputedStyle(document.body).backgroundColor, {_gd('fw-heat')}._fullLayout"
        ".paper_bgcolor]"
    )


def test_figurewidget_draws_and_updates(host, browser):
    name, url, theme = host
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    context.set_default_timeout(STEP_MS)
    rec = PageRecorder(context.new_page(), f"figurewidget_{name}")
    rec.page.on("dialog", lambda d: d.accept() if d.type == "beforeunload" else None)
    steps = Steps(rec)
    try:
        rec.page.goto(url, wait_until="domcontentloaded", timeout=RENDER_MS)
        if name != "voila":
            accept_kernel(rec.page, RENDER_MS)
            run_all(rec.page)
        steps.check("drawn", lambda: _drawn(steps))
        rec.shot("1_drawn")
        for step, fn in [
            ("repro_4998", _repro_4998),
            ("button_update", _button_update),
            ("thread_update", _thread_update),
            ("mouse_click", _mouse_click),
            ("mouse_box_selection", _mouse_box_selection),
        ]:
            steps.check(step, lambda fn=fn: fn(steps))
        rec.shot("2_updated")
        steps.check("hidden_tab", lambda: _hidden_tab(steps))
        steps.check("theme", lambda: _theme(steps))
        rec.shot("3_tab")
    finally:
        out = REPO / "artifacts" / f"figurewidget_{name}.json"
        out.parent.mkdir(exist_ok=True)
        record = {"host": name, "theme": theme, "steps": steps.results}
        record["anywidget_init_failures"] = sum(
            "Failed to initialize model" in e for e in rec.console_errors
        )
        record["console_errors"] = rec.console_errors[:10]
        out.write_text(json.dumps(record, indent=1))
        context.close()
    failed = {k: v["detail"] for k, v in steps.results.items() if not v["ok"]}
    expected = _expected_failures(name, record["anywidget_init_failures"])
    unexpected = {k: v for k, v in failed.items() if k not in expected}
    assert not unexpected, f"{name}: {unexpected} (screenshots in {SCREENSHOTS})"
    # plotly 7.1 still draws #4998's figures at plotly's default 700 x 360 px each, cut off by
    # the 1050 x 320 box. When this trips, plotly fixed it: revisit docs/architecture.md.
    assert "repro_4998" in failed, f"{name}: #4998 passes now: {steps.results['repro_4998']}"


def _expected_failures(host: str, init_failures: int) -> set[str]:
    """Steps known to fail with plotly 7.1 + anywidget 0.11 (docs/architecture.md).

    #4998's sizes fail everywhere. anywidget gives each model 2 s to import its ESM and run
    ``initialize``; FigureWidget's is plotly's 5 MB bundle, imported once per figure, and on a
    busy machine with five figures some miss it ("Failed to initialize model"): those figures
    still draw, but their Python-side updates are dropped. In Voila, which makes all five at
    once, the updates were also dropped with no such error in some full-suite runs (CI of
    stop 18, one of two here; none of 11 runs of this test alone), so there they are recorded
    in artifacts/figurewidget_voila.json, not asserted. Elsewhere, without an init failure,
    the updates must arrive.
    """
    known = {"repro_4998"}
    if init_failures or host == "voila":
        known |= {"button_update", "thread_update"}
    return known
