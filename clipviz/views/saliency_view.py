"""SaliencyView: one image and one saliency overlay per prompt, side by side.

The view receives encoded images only (the original as PNG/JPEG bytes, one overlay PNG per
prompt, e.g. from ``clipviz.models.saliency.page.overlay_png``) and prompt strings; it never
computes a map. Prompts are escaped once, here. The widget is an ``ipywidgets.HTML`` built on
first use; :meth:`html` gives the same markup for static pages (save_html, screenshots).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import traitlets as t

from clipviz.views._html import escape

__all__ = ["SaliencyView"]

_CSS = (
    "<style>.clipviz-saliency{display:flex;flex-wrap:wrap;gap:10px;font:13px sans-serif}"
    ".clipviz-saliency figure{margin:0;text-align:center;max-width:{px}px}"
    ".clipviz-saliency img{width:{px}px;height:{px}px;object-fit:contain;"
    "image-rendering:pixelated;border:1px solid #ccc}"
    ".clipviz-saliency figcaption{overflow-wrap:anywhere}</style>"
)


def _mime(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise ValueError("image bytes must be PNG, JPEG or WebP (got an unknown header)")


def _img(data: bytes, alt: str) -> str:
    b64 = base64.b64encode(data).decode("ascii")
    return f'<img src="data:{_mime(data)};base64,{b64}" alt="{alt}">'


class SaliencyView(t.HasTraits):
    """One image with one overlay per prompt.

    Parameters
    ----------
    size : int
        Displayed side of each tile in CSS pixels.
    """

    prompts = t.List(t.Unicode())
    title = t.Unicode("")

    def __init__(self, *, size: int = 160, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.size = int(size)
        self._image: bytes = b""
        self._overlays: list[bytes] = []
        self._scores: list[float] | None = None
        self._widget: Any = None

    def set_maps(
        self,
        image: bytes,
        overlays: Sequence[bytes],
        prompts: Sequence[str],
        *,
        scores: Sequence[float] | None = None,
        title: str = "",
    ) -> None:
        """Show ``image`` and ``overlays[i]`` labelled ``prompts[i]`` (and ``scores[i]``)."""
        if len(overlays) != len(prompts):
            raise ValueError(f"{len(overlays)} overlays but {len(prompts)} prompts")
        if scores is not None and len(scores) != len(prompts):
            raise ValueError(f"{len(scores)} scores but {len(prompts)} prompts")
        _mime(image)
        self._image, self._overlays = bytes(image), [bytes(o) for o in overlays]
        self._scores = None if scores is None else [float(s) for s in scores]
        self.title = str(title)
        self.prompts = [str(p) for p in prompts]
        if self._widget is not None:
            self._widget.value = self.html()

    def html(self) -> str:
        """The view's markup: every prompt and the title escaped exactly once."""
        css = _CSS.replace("{px}", str(self.size))
        if not self._image:
            return css + '<div class="clipviz-saliency"><em>no image yet</em></div>'
        head = f"<div><b>{escape(self.title)}</b></div>" if self.title else ""
        tiles = [f"<figure>{_img(self._image, 'image')}<figcaption>image</figcaption></figure>"]
        for i, (png, prompt) in enumerate(zip(self._overlays, self.prompts, strict=True)):
            label = escape(prompt)
            score = "" if self._scores is None else f" <small>{self._scores[i]:.3f}</small>"
            tiles.append(
                f"<figure>{_img(png, label)}<figcaption>{label}{score}</figcaption></figure>"
            )
        return f'{css}{head}<div class="clipviz-saliency">{"".join(tiles)}</div>'

    @property
    def widget(self) -> Any:
        """The ipywidgets.HTML showing this view (built on first access)."""
        if self._widget is None:
            import ipywidgets as w

            self._widget = w.HTML(self.html())
        return self._widget

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)
