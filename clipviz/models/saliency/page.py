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


def overlay_png(
    image: Any, heat: np.ndarray, alpha: float = 0.6, *, fmt: str = "PNG", size: int | None = None
) -> bytes:
    """Bytes of ``heat`` (H, W) blended onto the PIL image (PNG, or ``fmt`` e.g. "WEBP").

    ``size``: scale the result so its longest side is ``size`` pixels (a grid thumbnail).
    """
    from PIL import Image

    rgb = np.asarray(load_image(image))
    blended = Image.fromarray(overlay(rgb, heat, alpha))
    if size is not None and max(blended.size) > size:
        blended.thumbnail((size, size), Image.BILINEAR)
    buf = io.BytesIO()
    blended.save(buf, format=fmt)
    return buf.getvalue()


def _digest(data: Any) -> str:
    arr = np.ascontiguousarray(np.asarray(data))
    return hashlib.sha1(arr.tobytes() + str(arr.shape).encode()).hexdigest()


def saliency_for_page(
    model: Any,
    images: Sequence[Any],
    top1_prompts: Sequence[str],
    *,
    method: str = "auto",
    cache: SaliencyCache | None = None,
    vectors: np.ndarray | None = None,
    fmt: str = "PNG",
    size: int | None = None,
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
    vectors : numpy.ndarray, optional
        (len(images), D) text vector of each image's prompt (e.g. the workbench's template
        ensemble); ``top1_prompts`` then only name them. Default: encode the prompt strings.
    fmt, size : str, int, optional
        Image format and longest side of the overlays (as in :func:`overlay_png`).

    Returns
    -------
    list of bytes
        Encoded overlays, in the order of ``images``.
    """
    if len(images) != len(top1_prompts):
        raise ValueError(f"{len(images)} images but {len(top1_prompts)} prompts")
    if vectors is not None and len(vectors) != len(images):
        raise ValueError(f"{len(images)} images but {len(vectors)} prompt vectors")
    cache = _DEFAULT_CACHE if cache is None else cache
    pils = [load_image(im) for im in images]
    what = [str(p) if vectors is None else _digest(vectors[i]) for i, p in enumerate(top1_prompts)]
    keys = [
        (model.key, f"{method}/{fmt}/{size}", _digest(im), w)
        for im, w in zip(pils, what, strict=True)
    ]
    out: list[bytes | None] = [cache.get(k) for k in keys]
    todo = [i for i, v in enumerate(out) if v is None]
    if todo:
        prompts = [
            [str(top1_prompts[i])] if vectors is None else np.asarray(vectors[i : i + 1])
            for i in todo
        ]
        maps = saliency_batch(model, [pils[i] for i in todo], prompts, method=method)
        for i, m in zip(todo, maps, strict=True):
            out[i] = overlay_png(pils[i], m[0], fmt=fmt, size=size)
            cache.put(keys[i], out[i])
    return [v for v in out if v is not None]
