"""Saliency overlays for one grid page: top-1 prompt per image, PNG bytes, cached.

The grid shows a page of small images; the "where" overlay needs one map per visible image for
its top-1 (or a chosen) prompt. All uncached images of the page share one forward pass, and
results are kept in an LRU cache keyed by model, method, image content and prompt, so paging
back and forth costs nothing.
"""

from __future__ import annotations

import hashlib
import io
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from clipviz.compute.saliency_metrics import overlay
from clipviz.models.saliency import saliency_batch
from clipviz.models.saliency._tower import load_image

__all__ = ["SaliencyCache", "saliency_for_page", "overlay_png"]


class SaliencyCache:
    """LRU cache of overlay PNGs: (model key, method, image digest, prompt) -> bytes."""

    def __init__(self, max_items: int = 2048) -> None:
        self.max_items = max_items
        self._items: OrderedDict[tuple[str, str, str, str], bytes] = OrderedDict()

    def get(self, key: tuple[str, str, str, str]) -> bytes | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: tuple[str, str, str, str], value: bytes) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


_DEFAULT_CACHE = SaliencyCache()


def overlay_png(image: Any, heat: np.ndarray, alpha: float = 0.6) -> bytes:
    """PNG bytes of ``heat`` (H, W) blended onto the PIL image."""
    from PIL import Image

    rgb = np.asarray(load_image(image))
    buf = io.BytesIO()
    Image.fromarray(overlay(rgb, heat, alpha)).save(buf, format="PNG")
    return buf.getvalue()


def _digest(image: Any) -> str:
    arr = np.asarray(image)
    return hashlib.sha1(arr.tobytes() + str(arr.shape).encode()).hexdigest()


def saliency_for_page(
    model: Any,
    images: Sequence[Any],
    top1_prompts: Sequence[str],
    *,
    method: str = "auto",
    cache: SaliencyCache | None = None,
) -> list[bytes]:
    """One overlay PNG per image, for its own prompt (the grid's top-1 by default).

    Parameters
    ----------
    model : ClipModel
    images : sequence of PIL images or paths
        The visible page only.
    top1_prompts : sequence of str
        ``top1_prompts[i]`` is the prompt whose map image ``i`` shows.
    method : str
        As in :func:`clipviz.saliency`.
    cache : SaliencyCache, optional
        Defaults to a process-wide cache.

    Returns
    -------
    list of bytes
        PNG overlays, in the order of ``images``.
    """
    if len(images) != len(top1_prompts):
        raise ValueError(f"{len(images)} images but {len(top1_prompts)} prompts")
    cache = _DEFAULT_CACHE if cache is None else cache
    pils = [load_image(im) for im in images]
    keys = [
        (model.key, method, _digest(im), str(p)) for im, p in zip(pils, top1_prompts, strict=True)
    ]
    out: list[bytes | None] = [cache.get(k) for k in keys]
    todo = [i for i, v in enumerate(out) if v is None]
    if todo:
        maps = saliency_batch(
            model, [pils[i] for i in todo], [[str(top1_prompts[i])] for i in todo], method=method
        )
        for i, m in zip(todo, maps, strict=True):
            out[i] = overlay_png(pils[i], m[0])
            cache.put(keys[i], out[i])
    return [v for v in out if v is not None]
