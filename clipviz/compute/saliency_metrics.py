"""Saliency quality against known shape geometry: pointing game and mass inside the mask.

Pure numpy. ``maps`` are (N, H, W) non-negative arrays; ground truth is one box and one mask
per map (``clipviz.datasets.shapes(...).geometry[i].box()`` / ``.mask()``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["pointing_hits", "mask_mass_ratio", "centre_prior", "overlay"]


def pointing_hits(maps: np.ndarray, boxes: Sequence[tuple[int, int, int, int]]) -> np.ndarray:
    """Pointing game: whether each map's maximum lies inside its ``(x0, y0, x1, y1)`` box.

    Ties take the first maximum in row-major order, so a constant map points at (0, 0).

    Returns
    -------
    numpy.ndarray
        (N,) bool.
    """
    maps = np.asarray(maps)
    if maps.ndim != 3 or len(maps) != len(boxes):
        raise ValueError(f"maps must be (N, H, W) with N == len(boxes); got {maps.shape}")
    flat = maps.reshape(len(maps), -1).argmax(1)
    ys, xs = np.unravel_index(flat, maps.shape[1:])
    b = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    return (xs >= b[:, 0]) & (xs <= b[:, 2]) & (ys >= b[:, 1]) & (ys <= b[:, 3])


def mask_mass_ratio(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Share of each map's mass inside its mask, divided by the mask's area fraction.

    1 is what a uniform map scores; higher means saliency concentrates on the shape. A map
    with no mass scores 0.

    Returns
    -------
    numpy.ndarray
        (N,) float64.
    """
    maps = np.asarray(maps, dtype=np.float64)
    masks = np.asarray(masks, dtype=bool)
    if maps.shape != masks.shape or maps.ndim != 3:
        raise ValueError(f"maps {maps.shape} and masks {masks.shape} must both be (N, H, W)")
    total = maps.reshape(len(maps), -1).sum(1)
    inside = (maps * masks).reshape(len(maps), -1).sum(1)
    area = masks.reshape(len(masks), -1).mean(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where((total > 0) & (area > 0), inside / total / area, 0.0)
    return ratio


def centre_prior(n: int, h: int, w: int) -> np.ndarray:
    """(n, h, w) centred Gaussians (sigma a sixth of each side): the map a method must beat.

    Shapes cluster near the middle of the image, so a map that ignores the image already
    points well; a saliency method is only useful where it beats this prior.
    """
    yy, xx = np.mgrid[:h, :w]
    g = np.exp(-(((yy - h / 2) / (h / 6)) ** 2 + ((xx - w / 2) / (w / 6)) ** 2) / 2)
    return np.broadcast_to(g, (n, h, w))


# a perceptual dark-to-bright ramp (close to matplotlib's "inferno"), 5 stops
_RAMP = np.array(
    [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=np.float64
)


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """Blend an (H, W) map in [0, 1] onto an (H, W, 3) uint8 image with a colour ramp.

    The map's weight grows with its value, so cold regions show the image itself.
    """
    image = np.asarray(image)
    heat = np.clip(np.asarray(heat, dtype=np.float64), 0.0, 1.0)
    if image.shape[:2] != heat.shape or image.ndim != 3:
        raise ValueError(f"image {image.shape} and map {heat.shape} sizes differ")
    pos = heat * (len(_RAMP) - 1)
    lo = np.floor(pos).astype(int).clip(0, len(_RAMP) - 2)
    frac = (pos - lo)[..., None]
    colour = _RAMP[lo] * (1 - frac) + _RAMP[lo + 1] * frac
    weight = (alpha * heat)[..., None]
    out = image[..., :3].astype(np.float64) * (1 - weight) + colour * weight
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
