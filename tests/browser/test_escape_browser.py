"""Labels with quotes and markup, escaped once by ``clipviz.views._html.escape``, read right in plotly.

plotly.js decodes only a few named entities (``&amp; &lt; &gt;`` ...) and numeric ones, so a label
escaped with ``&quot;`` showed the entity itself on every axis and hover. Checked in real chromium
with the plotly.js bundled in the plotly package (no Jupyter needed).
"""

from __future__ import annotations

from pathlib import Path

from clipviz.views._html import escape

LABELS = ['a "quoted" shape', "it's <b>bold</b> & fine", "<img src=x onerror=alert(1)>"]


def _plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def test_escaped_labels_render_as_typed_in_plotly(recorder):
    page = recorder.page
    page.set_content(
        "<html><body><div id='plot' style='width:900px;height:400px'></div></body></html>"
    )
    page.add_script_tag(path=str(_plotly_js()))
    x = [escape(label) for label in LABELS]
    page.evaluate(
        """x => Plotly.newPlot('plot', [{type: 'heatmap', z: [[1, 2, 3]], x: x, y: [x[0]]}],
                               {margin: {b: 120, l: 160}})""",
        x,
    )
    ticks = page.eval_on_selector_all("#plot .xtick text", "els => els.map(e => e.textContent)")
    ytick = page.eval_on_selector_all("#plot .ytick text", "els => els.map(e => e.textContent)")
    recorder.shot("escaped_labels")
    assert ticks == LABELS, ticks
    assert ytick == LABELS[:1]
    assert not recorder.dialogs, recorder.dialogs  # the <img onerror> label ran nothing
