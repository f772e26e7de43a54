"""The static snapshot opened in headless chromium: no kernel, no network, no script from data."""

from __future__ import annotations

from clipviz.app.snapshot import save_html

HOSTILE_NAME = "<img src=x onerror=alert(1)>.png"  # a file of the hostile_workbench fixture


def test_snapshot_renders_offline_and_runs_no_hostile_script(hostile_workbench, recorder, tmp_path):
    path = save_html(hostile_workbench, tmp_path / "snapshot.html")
    page = recorder.page
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri(), wait_until="load", timeout=60_000)

    # Each plot draws: plotly builds its svg layers, and WebGL scatter a canvas.
    for view in ("map", "heatmap", "metrics"):
        plot = page.locator(f'section[data-view="{view}"] .js-plotly-plot')
        plot.locator(".main-svg").first.wait_for(state="attached", timeout=30_000)
    assert page.locator('section[data-view="map"] canvas').count() >= 1
    assert (
        page.locator('section[data-view="heatmap"] .hm, section[data-view="heatmap"] image').count()
        >= 1
    )
    # every plot fits its section (side by side, none drawn under its neighbour)
    page.wait_for_timeout(500)  # the refit on load
    overflow = page.evaluate(
        """() => [...document.querySelectorAll('section.cv-plot')].map((s) => [s.dataset.view,
             s.querySelector('.main-svg').getBoundingClientRect().width
             - s.getBoundingClientRect().width]).filter(([, over]) => over > 1)"""
    )
    assert overflow == [], overflow
    recorder.shot("page")

    n = len(hostile_workbench.ids)
    cells = page.locator(".clipviz-cell")
    assert cells.count() == n
    # Every thumbnail decoded (a data URI that failed would have naturalWidth 0).
    widths = page.eval_on_selector_all(".clipviz-thumb", "els => els.map(e => e.naturalWidth)")
    assert len(widths) == n and min(widths) > 0

    # The hostile file name is text in its cell; no <img src=x> exists; no alert fired.
    hostile = page.locator(".clipviz-cell-id", has_text="onerror")
    assert hostile.text_content() == HOSTILE_NAME
    assert page.locator('img[src="x"], svg[onload]').count() == 0
    page.locator('section[data-view="map"] .js-plotly-plot').hover()  # hover labels render too
    assert recorder.dialogs == []

    # "mistakes only" is pure CSS: correct cells hide, wrong ones stay.
    wrong = int((~hostile_workbench.predictions.correct).sum())
    page.locator("#cv-mistakes").check()
    assert page.locator(".clipviz-cell:visible").count() == wrong
    recorder.shot("mistakes_only")

    # Self-contained: nothing but the file itself and data: URIs was requested.
    assert all(u.startswith(("file:", "data:")) for u in requests), requests
    assert not [e for e in recorder.console_errors if "favicon" not in e]
