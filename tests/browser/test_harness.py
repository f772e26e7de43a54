"""The server/browser plumbing on a notebook with no clipviz in it.

It proves Voila serves ipywidgets, an anywidget and a plotly FigureWidget to headless chromium,
and that a click travels to the kernel and back. If this fails, the workbench browser tests cannot
pass either, and this failure says whether the server, the browser or a widget manager is to blame.
"""

from __future__ import annotations

RENDER_TIMEOUT_MS = 90_000


def test_voila_serves_widgets_and_round_trips(voila, recorder):
    server = voila("harness.ipynb")
    page = recorder.page
    page.goto(server.url, timeout=RENDER_TIMEOUT_MS, wait_until="domcontentloaded")
    page.locator(".harness-slider").wait_for(state="visible", timeout=RENDER_TIMEOUT_MS)
    page.locator(".harness-any").wait_for(state="visible", timeout=30_000)
    page.locator(".js-plotly-plot .main-svg").first.wait_for(state="attached", timeout=30_000)
    recorder.shot("rendered")

    # Values the kernel set arrived in the page.
    assert page.locator(".harness-slider .widget-readout").inner_text().strip() == "3"
    assert page.locator(".harness-any").text_content() == "anywidget ok"
    # A Label's value is text, never markup: no <img> made, no alert.
    label = page.locator(".harness-label")
    assert label.text_content().strip() == "<img src=x onerror=alert(1)>"
    assert label.locator("img").count() == 0

    # Browser -> kernel -> browser: the click runs a Python callback that rewrites a label.
    page.locator(".harness-button").click()
    page.locator(".harness-echo", has_text="pong 3").wait_for(timeout=30_000)
    recorder.shot("after_click")
    assert recorder.dialogs == []
