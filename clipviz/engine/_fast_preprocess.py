"""The standard open_clip image transform, done in fewer and cheaper steps.

open_clip's preprocess is ``Resize(short side, bicubic) -> CenterCrop -> (convert RGB) ->
ToTensor -> Normalize``. Per image, torchvision spends more CPU on the last two steps (an
``np.array`` copy, a permute, three float passes) than PIL spends on the resize. When a
model's transform is recognisably that compose, :func:`recognise` returns a
:class:`FastPreprocess` that does the resize and crop in PIL (the same calls torchvision
makes) and hands back the 8-bit pixels; :meth:`FastPreprocess.to_batch` then converts and
normalises a whole batch in one pass with the same torch arithmetic, so the values are the
ones the model's own transform gives (tests/test_fast_preprocess.py checks this on images of
several sizes and shapes). Any other transform is left alone (``recognise`` returns None).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["FastPreprocess", "recognise"]


@dataclass(frozen=True)
class FastPreprocess:
    """Resize + centre crop in PIL, then ToTensor + Normalize for a whole batch at once.

    ``resize`` is the short side (one int) or an exact ``(height, width)``; ``crop`` is
    ``(height, width)``; ``resample`` a PIL filter.
    """

    resize: tuple[int, ...]
    crop: tuple[int, int]
    resample: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def pixels(self, img: Any) -> np.ndarray:
        """An RGB PIL image -> its resized, cropped 8-bit pixels, ``(H, W, 3)`` uint8."""
        w, h = img.size
        new_h, new_w = _resized_size(h, w, self.resize)
        if (new_h, new_w) != (h, w):  # torchvision skips a resize to the same size too
            img = img.resize((new_w, new_h), self.resample)
        ch, cw = self.crop
        top, left = int(round((new_h - ch) / 2.0)), int(round((new_w - cw) / 2.0))
        return np.asarray(img.crop((left, top, left + cw, top + ch)))

    def to_batch(self, pixels: Sequence[np.ndarray]) -> Any:
        """Stacked 8-bit pixels -> the normalised float32 batch ``(B, 3, H, W)``."""
        import torch

        x = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).contiguous()
        x = x.to(dtype=torch.get_default_dtype()).div(255)  # as torchvision's to_tensor
        mean = torch.as_tensor(self.mean, dtype=x.dtype).view(1, -1, 1, 1)
        std = torch.as_tensor(self.std, dtype=x.dtype).view(1, -1, 1, 1)
        return x.sub_(mean).div_(std)  # as torchvision's normalize


def _resized_size(h: int, w: int, size: tuple[int, ...]) -> tuple[int, int]:
    """torchvision's output size for ``Resize(size)`` (max_size=None)."""
    if len(size) == 2:
        return size[0], size[1]
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size[0], int(size[0] * long / short)
    return (new_long, new_short) if w <= h else (new_short, new_long)


def recognise(transform: Any) -> FastPreprocess | None:
    """A :class:`FastPreprocess` equivalent to ``transform``, or None if it is anything other
    than the standard compose (which is then used as it is)."""
    try:
        from torchvision import transforms as T
    except ImportError:
        return None
    steps = list(getattr(transform, "transforms", None) or [])
    if type(transform) is not T.Compose or len(steps) < 4:
        return None
    resize, crop, *middle, to_tensor, norm = steps
    if (
        type(resize) is not T.Resize
        or type(crop) is not T.CenterCrop
        or type(norm) is not T.Normalize
    ):
        return None
    if not _is_to_tensor(to_tensor) or not all(_is_rgb_step(s) for s in middle):
        return None
    size = (resize.size,) if isinstance(resize.size, int) else tuple(resize.size)
    crop_hw = tuple(int(c) for c in crop.size)
    resample = _PIL_FILTERS.get(str(getattr(resize.interpolation, "value", "")))
    if resize.max_size is not None or resample is None or len(size) not in (1, 2):
        return None
    smallest = size[0] if len(size) == 1 else min(size)  # resized sides are >= this
    if len(crop_hw) != 2 or max(crop_hw) > smallest or min(crop_hw) < 1:
        return None  # a crop larger than the resized image needs torchvision's padding
    mean, std = _channel_values(norm.mean), _channel_values(norm.std)
    if mean is None or std is None:
        return None
    return FastPreprocess(size, (crop_hw[0], crop_hw[1]), resample, mean, std)


_PIL_FILTERS = {"bicubic": 3, "bilinear": 2, "nearest": 0, "lanczos": 1}  # PIL.Image.Resampling


def _is_to_tensor(step: Any) -> bool:
    from torchvision import transforms as T

    return type(step) is T.ToTensor or _open_clip_type(step) == "MaybeToTensor"


def _is_rgb_step(step: Any) -> bool:
    """Steps that leave an RGB image as it is (embed_images always hands over RGB)."""
    if _open_clip_type(step) == "MaybeConvertMode":
        return getattr(step, "mode", None) == "RGB"
    return getattr(step, "__name__", "") == "_convert_to_rgb"  # older open_clip


def _open_clip_type(step: Any) -> str:
    cls = type(step)
    return cls.__name__ if cls.__module__.startswith("open_clip") else ""


def _channel_values(values: Any) -> tuple[float, ...] | None:
    out = tuple(float(v) for v in np.ravel(np.asarray(values, dtype=np.float64)))
    return out if len(out) == 3 else None
