"""Map saliency from the model's input back onto the original image (undo resize and crop).

open_clip's eval transforms are Resize (shortest side, or squash to a size) or ResizeKeepRatio
(longest side), followed by CenterCrop (which pads when the crop is larger). A map on the S x S
model input covers a known rectangle of the resized image; outside it (the cropped-away parts)
the original image gets 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["InputGeometry", "input_geometry", "to_original"]


@dataclass(frozen=True)
class InputGeometry:
    """Resized image size and the crop's top-left corner in it (negative: padding)."""

    resized_h: int
    resized_w: int
    top: int
    left: int
    crop_h: int
    crop_w: int


def _resized_size(t: Any, h: int, w: int) -> tuple[int, int]:
    size = t.size
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return int(size[0]), int(size[1])
    size = int(size[0] if isinstance(size, (list, tuple)) else size)
    name = type(t).__name__
    if name == "ResizeKeepRatio":  # longest side to size (open_clip's "longest" mode)
        scale = size / max(h, w)
        return round(h * scale), round(w * scale)
    # torchvision Resize(int): shorter side to size, the longer truncated (as torchvision does)
    if h <= w:
        return size, int(size * w / h)
    return int(size * h / w), size


def input_geometry(preprocess: Any, h: int, w: int) -> InputGeometry:
    """Follow ``preprocess``'s resize and crop steps for an (h, w) image."""
    rh, rw = h, w
    top = left = 0
    ch, cw = h, w
    for t in getattr(preprocess, "transforms", []):
        name = type(t).__name__
        if name in ("Resize", "ResizeKeepRatio"):
            rh, rw = _resized_size(t, rh, rw)
            ch, cw = rh, rw
        elif name in ("CenterCrop", "CenterCropOrPad"):
            size = t.size
            ch, cw = (
                (int(size[0]), int(size[-1]))
                if isinstance(size, (list, tuple))
                else (
                    int(size),
                    int(size),
                )
            )
            top = int(round((rh - ch) / 2.0)) if rh >= ch else -((ch - rh) // 2)
            left = int(round((rw - cw) / 2.0)) if rw >= cw else -((cw - rw) // 2)
    return InputGeometry(rh, rw, top, left, ch, cw)


def to_original(maps: np.ndarray, geometry: InputGeometry, h: int, w: int) -> np.ndarray:
    """(P, s, s) maps on the model input -> (P, h, w) on the original image, float32."""
    from PIL import Image

    g = geometry
    out = np.zeros((len(maps), h, w), np.float32)
    for i, m in enumerate(maps):
        crop = np.asarray(
            Image.fromarray(m.astype(np.float32)).resize((g.crop_w, g.crop_h), Image.BILINEAR)
        )
        canvas = np.zeros((g.resized_h, g.resized_w), np.float32)
        y0, x0 = max(g.top, 0), max(g.left, 0)
        y1, x1 = min(g.top + g.crop_h, g.resized_h), min(g.left + g.crop_w, g.resized_w)
        canvas[y0:y1, x0:x1] = crop[y0 - g.top : y1 - g.top, x0 - g.left : x1 - g.left]
        if (g.resized_h, g.resized_w) == (h, w):
            out[i] = canvas
        else:
            out[i] = np.asarray(Image.fromarray(canvas).resize((w, h), Image.BILINEAR))
    return np.clip(out, 0.0, 1.0)
