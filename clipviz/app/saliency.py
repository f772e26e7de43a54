"""Compose a SaliencyView from a model: compute the maps, encode the overlays, fill the view."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from clipviz.views.saliency_view import SaliencyView

__all__ = ["saliency_view"]


def saliency_view(
    model: Any, image: Any, prompts: Sequence[str], *, method: str = "auto", size: int = 160
) -> SaliencyView:
    """A :class:`SaliencyView` of ``image`` with one map per prompt, labelled with its cosine.

    Parameters
    ----------
    model : ClipModel
    image : PIL.Image.Image or path
    prompts : list of str
    method : str
        As in :func:`clipviz.saliency`.
    size : int
        Tile side in CSS pixels.
    """
    from clipviz.models.saliency import saliency
    from clipviz.models.saliency._tower import load_image
    from clipviz.models.saliency.page import overlay_png

    pil = load_image(image)
    maps = saliency(model, pil, list(prompts), method=method)
    scores = (model.encode_pil([pil]) @ model.encode_texts(list(prompts)).T)[0]
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    view = SaliencyView(size=size)
    view.set_maps(
        buf.getvalue(),
        [overlay_png(pil, m) for m in maps],
        list(prompts),
        scores=scores.tolist(),
        title=f"where each prompt matches ({method})",
    )
    return view
