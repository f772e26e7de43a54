"""Gaussian smoothing of saliency maps and of input pixels (torch, separable, edges replicated)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["gaussian_smooth", "smooth_tensor"]


def smooth_tensor(t: Any, sigma: float) -> Any:
    """Blur a (..., H, W) torch tensor with a Gaussian of ``sigma`` pixels."""
    import torch
    import torch.nn.functional as F

    if sigma <= 0:
        return t
    shape = t.shape
    flat = t.reshape(-1, 1, *shape[-2:]).float()
    r = int(3 * sigma) + 1
    xs = torch.arange(-r, r + 1, dtype=torch.float32, device=t.device)
    k = torch.exp(-(xs**2) / (2 * sigma**2))
    k = k / k.sum()
    flat = F.conv2d(F.pad(flat, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))
    return flat.reshape(shape).to(t.dtype)


def gaussian_smooth(maps: np.ndarray, sigma: float) -> np.ndarray:
    """Blur (..., H, W) numpy maps with a Gaussian of ``sigma`` pixels."""
    import torch

    if sigma <= 0:
        return maps
    t = torch.from_numpy(np.ascontiguousarray(maps, np.float32))
    return smooth_tensor(t, sigma).numpy()
