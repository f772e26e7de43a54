"""SaliencyView: escapes prompts once, one tile per prompt, built from a real model's maps."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from clipviz.views.saliency_view import SaliencyView


def _png(colour) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buf, format="PNG")
    return buf.getvalue()


def test_prompts_escaped_exactly_once_and_one_tile_each():
    view = SaliencyView()
    view.set_maps(_png("red"), [_png("blue")] * 2, ['<b>"star"</b>', "a & b"], scores=[0.3, 0.1])
    html = view.html()
    assert "&lt;b&gt;&#34;star&#34;&lt;/b&gt;" in html and "a &amp; b" in html  # escape() writes &#34;
    assert '<b>"star"' not in html and "&amp;lt;" not in html and "&amp;amp;" not in html
    assert html.count("<figure>") == 3 and html.count("data:image/png;base64,") == 3
    assert "0.300" in html


def test_bad_input_is_refused_clearly():
    view = SaliencyView()
    with pytest.raises(ValueError, match="2 overlays but 1 prompts"):
        view.set_maps(_png("red"), [_png("red")] * 2, ["a"])
    with pytest.raises(ValueError, match="PNG, JPEG or WebP"):
        view.set_maps(b"not an image", [], [])


def test_widget_follows_updates():
    view = SaliencyView()
    widget = view.widget
    assert "no image yet" in widget.value
    view.set_maps(_png("red"), [_png("blue")], ["a circle"])
    assert "a circle" in widget.value


def test_saliency_view_from_the_bundled_model(tmp_path):
    import clipviz
    from clipviz.app.saliency import saliency_view

    model = clipviz.load_model("clipviz-shapes", device="cpu")
    image = clipviz.datasets.shapes(1, seed=5).images[0]
    view = saliency_view(model, image, ["a photo of a star.", "a photo of a circle."])
    assert view.prompts == ["a photo of a star.", "a photo of a circle."]
    assert view.html().count("<figure>") == 3
    overlay = Image.open(io.BytesIO(view._overlays[0]))
    assert overlay.size == image.size  # overlays at the image's own size
    assert not np.array_equal(np.asarray(overlay), np.asarray(image))  # the map is drawn on it
