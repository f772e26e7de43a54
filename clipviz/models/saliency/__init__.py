"""Saliency: where in an image each prompt matches, for CLIP's ResNet and ViT image towers.

``saliency(model, image, prompts)`` returns one map per prompt on the original image. Methods
live one per file and register themselves by name (``list_methods()``); ``method="auto"``
takes the best one measured for the tower (``benchmarks/saliency_quality.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from clipviz.models.saliency._align import input_geometry, to_original
from clipviz.models.saliency._registry import AUTO, get_method, list_methods
from clipviz.models.saliency._tower import load_image, pixels_for, text_targets, tower_kind

__all__ = ["AUTO", "saliency", "saliency_batch", "list_methods", "tower_kind"]


def saliency(model: Any, image: Any, prompts: Any, *, method: str = "auto") -> np.ndarray:
    """Where in ``image`` each prompt matches, as one map per prompt.

    Parameters
    ----------
    model : ClipModel
        From :func:`clipviz.load_model`; its image tower is an open_clip ModifiedResNet or
        VisionTransformer.
    image : PIL.Image.Image or path
        The image, any size; maps are returned at this size.
    prompts : list of str, or (P, D) numpy array
        Prompts (encoded with the model) or text embeddings already computed.
    method : str
        ``"auto"`` (the measured best for the tower: ``AUTO``) or a name from
        :func:`list_methods`: ``"layercam-fused"``, ``"layercam"`` and ``"gradcam"`` (ResNet),
        ``"chefer-rollout"``, ``"chefer"``, ``"rollout"`` (a baseline that ignores the prompt)
        and ``"grad-eclip"`` (ViT), and the baselines ``"grad-x-input"`` and ``"occlusion"``
        (both towers).

    Returns
    -------
    numpy.ndarray
        (P, H, W) float32 in [0, 1], H x W the image's own size; each map scaled to a maximum
        of 1 (all zero when nothing raises the score). Parts the model's centre crop cut away
        are 0.

    Examples
    --------
    >>> model = clipviz.load_model("clipviz-shapes")  # doctest: +SKIP
    >>> maps = clipviz.saliency(model, "star.png", ["a star", "a circle"])  # doctest: +SKIP
    """
    pil = load_image(image)
    return saliency_batch(model, [pil], [prompts], method=method)[0]


def saliency_batch(
    model: Any, images: Sequence[Any], prompts: Sequence[Any], *, method: str = "auto"
) -> list[np.ndarray]:
    """``saliency`` for several PIL images at once, ``prompts[i]`` for image ``i``.

    Every image needs the same number of prompts; the images share one forward pass.
    """
    import torch

    if len(images) != len(prompts):
        raise ValueError(f"{len(images)} images but {len(prompts)} prompt lists")
    if not images:
        return []
    chosen = get_method(method, tower_kind(model))
    targets = _targets(model, prompts)
    counts = {len(t) for t in targets}
    if len(counts) != 1:
        raise ValueError(f"every image needs the same number of prompts, got {sorted(counts)}")
    pils = [load_image(im) for im in images]
    pixels = pixels_for(model, pils)
    with torch.enable_grad():
        raw = chosen.fn(model, pixels, torch.stack(targets))
    out = []
    for pil, maps in zip(pils, raw, strict=True):
        w, h = pil.size
        out.append(to_original(_unit_max(maps), input_geometry(model.preprocess, h, w), h, w))
    return out


def _targets(model: Any, prompts: Sequence[Any]) -> list[Any]:
    """Per-image (P, D) text vectors; prompt strings are encoded once for all images."""
    import torch

    texts = sorted({str(t) for p in prompts if not isinstance(p, (np.ndarray, str)) for t in p})
    table = dict(zip(texts, text_targets(model, texts), strict=True)) if texts else {}
    out = []
    for p in prompts:
        if isinstance(p, (np.ndarray, str)) or not p:
            out.append(text_targets(model, p))  # arrays, and the errors for bad input
        else:
            out.append(torch.stack([table[str(t)] for t in p]))
    return out


def _unit_max(maps: np.ndarray) -> np.ndarray:
    """Scale each non-negative map to a maximum of 1 (zero maps stay zero)."""
    maps = np.nan_to_num(np.maximum(maps, 0.0).astype(np.float32))
    peak = maps.reshape(len(maps), -1).max(1)
    return maps / np.where(peak > 0, peak, 1.0)[:, None, None]
