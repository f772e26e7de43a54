"""A second, independent shapes renderer, for evaluation only (it never feeds training).

The bundled models learn from ``clipviz.datasets.shapes``; a model that has learned *shapes*
rather than that generator should hold its accuracy on shapes of the same vocabulary drawn by
other code. Nothing here is shared with ``shapes.py`` except the vocabulary (shape names, colour
names, held-out combinations):

- geometry: its own vertex construction, any rotation, a star's inner radius and a cross's arm
  width that vary, slightly squashed circles;
- rasterisation: per-pixel coverage from a 4x supersampled grid (numpy point-in-polygon), not
  PIL's polygon fill; outlines (stroke only) as well as fills;
- colour: sampled in HSV around each colour name's hue, not from a fixed RGB table;
- backgrounds: linear and radial gradients, stripes, checkers, smooth noise;
- placement: off-centre, sometimes partly cut by the frame;
- image: 48 to 160 px square, optional blur, Gaussian noise and JPEG artefacts.

Everything derives from ``numpy.random.default_rng([seed, index, split, 9001])``, so an image is
reproducible alone.
"""

from __future__ import annotations

import colorsys
import io
import math
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from clipviz.datasets.shapes import SHAPES, SIZES, SPLITS, ShapesData, combinations

__all__ = ["redrawn_shapes", "IMAGE_SIZES"]

IMAGE_SIZES = (48, 64, 96, 128, 160)
_SUPERSAMPLE = 4
# hue in degrees, saturation range, value range; chosen by name, not copied from shapes.py
_HSV = {
    "red": (0.0, (0.75, 1.0), (0.7, 0.95)),
    "orange": (28.0, (0.8, 1.0), (0.85, 1.0)),
    "yellow": (54.0, (0.75, 1.0), (0.88, 1.0)),
    "green": (125.0, (0.6, 0.95), (0.45, 0.8)),
    "blue": (225.0, (0.65, 0.95), (0.65, 0.95)),
    "purple": (282.0, (0.55, 0.85), (0.5, 0.8)),
    "pink": (330.0, (0.35, 0.55), (0.9, 1.0)),
    "gray": (0.0, (0.0, 0.06), (0.45, 0.62)),
}
_HUE_JITTER = 6.0
# circumscribed radius as a fraction of the image side, per size word
_RADIUS_FRACTION = {"small": (0.16, 0.23), "large": (0.30, 0.40)}


def _fill_colour(rng: np.random.Generator, name: str) -> np.ndarray:
    hue, sat, val = _HSV[name]
    h = ((hue + rng.uniform(-_HUE_JITTER, _HUE_JITTER)) % 360.0) / 360.0
    rgb = colorsys.hsv_to_rgb(h, rng.uniform(*sat), rng.uniform(*val))
    return np.array(rgb) * 255.0


def _outline(shape: str, rng: np.random.Generator) -> np.ndarray | None:
    """Unit-radius vertices (K, 2) of the shape's boundary; None for a circle."""
    if shape == "circle":
        return None
    if shape == "square":
        corners = [(1, 1), (-1, 1), (-1, -1), (1, -1)]
        return np.array(corners, float) / math.sqrt(2)
    if shape == "triangle":
        turns = np.arange(3) / 3.0
        return np.stack([np.sin(2 * np.pi * turns), -np.cos(2 * np.pi * turns)], 1)
    if shape == "hexagon":
        turns = np.arange(6) / 6.0
        return np.stack([np.cos(2 * np.pi * turns), np.sin(2 * np.pi * turns)], 1)
    if shape == "star":
        inner = rng.uniform(0.36, 0.5)
        k = np.arange(10)
        radius = np.where(k % 2 == 0, 1.0, inner)
        theta = np.pi * k / 5.0
        return np.stack([radius * np.sin(theta), -radius * np.cos(theta)], 1)
    if shape == "cross":
        w = rng.uniform(0.24, 0.36)  # half arm width; arms reach the unit circle
        a = math.sqrt(1.0 - w * w)
        arm = [(w, a), (w, w), (a, w), (a, -w), (w, -w), (w, -a)]
        arm += [(-w, -a), (-w, -w), (-a, -w), (-a, w), (-w, w), (-w, a)]
        return np.array(arm, float)
    raise ValueError(f"unknown shape {shape!r}; choose from {SHAPES}.")


def _inside_polygon(px: np.ndarray, py: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd rule, vectorised over points."""
    inside = np.zeros(px.shape, bool)
    x0, y0 = poly[-1]
    for x1, y1 in poly:
        crosses = (y1 > py) != (y0 > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            xcut = x0 + (py - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (px < xcut)
        x0, y0 = x1, y1
    return inside


def _edge_distance(px: np.ndarray, py: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Distance from each point to the polygon's boundary."""
    best = np.full(px.shape, np.inf)
    x0, y0 = poly[-1]
    for x1, y1 in poly:
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((px - x0) * dx + (py - y0) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
        best = np.minimum(best, np.hypot(px - (x0 + t * dx), py - (y0 + t * dy)))
        x0, y0 = x1, y1
    return best


def _coverage(
    shape: str,
    side: int,
    centre,
    radius: float,
    angle: float,
    stroke: float | None,
    squash: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """(side, side) float coverage in [0, 1] of the shape (fill, or a stroke of that width)."""
    s = _SUPERSAMPLE
    grid = (np.arange(side * s) + 0.5) / s
    gx, gy = np.meshgrid(grid, grid)
    # into the shape's unit frame: translate, rotate back, scale
    c, si = math.cos(-angle), math.sin(-angle)
    ux = ((gx - centre[0]) * c - (gy - centre[1]) * si) / radius
    uy = ((gx - centre[0]) * si + (gy - centre[1]) * c) / radius
    poly = _outline(shape, rng)
    if poly is None:
        r = np.hypot(ux / squash, uy * squash)
        mask = r <= 1.0 if stroke is None else np.abs(r - 1.0) <= stroke / radius / 2
    else:
        inside = _inside_polygon(ux, uy, poly)
        if stroke is None:
            mask = inside
        else:
            mask = _edge_distance(ux, uy, poly) <= stroke / radius / 2
    return mask.reshape(side, s, side, s).mean(axis=(1, 3))


def _neutral_background(rng: np.random.Generator, side: int, avoid: np.ndarray) -> np.ndarray:
    """A near-grey background (gradient, stripes, checker or smooth noise) far from ``avoid``."""
    for _ in range(30):
        dark = rng.random() < 0.5
        base = rng.uniform(15, 70) if dark else rng.uniform(185, 240)
        other = np.clip(base + rng.uniform(-40, 40), 0, 255)
        yy, xx = np.mgrid[0:side, 0:side] / max(side - 1, 1)
        style = rng.choice(["linear", "radial", "stripes", "checker", "noise"])
        if style == "linear":
            theta = rng.uniform(0, 2 * np.pi)
            t = np.clip((xx - 0.5) * math.cos(theta) + (yy - 0.5) * math.sin(theta) + 0.5, 0, 1)
        elif style == "radial":
            t = np.clip(np.hypot(xx - rng.uniform(0, 1), yy - rng.uniform(0, 1)), 0, 1)
        elif style == "stripes":
            period = rng.uniform(0.08, 0.25)
            t = (np.sin(2 * np.pi * (xx + yy * rng.uniform(-1, 1)) / period) + 1) / 2 * 0.5
        elif style == "checker":
            cells = int(rng.integers(4, 12))
            t = ((np.floor(xx * cells) + np.floor(yy * cells)) % 2) * 0.35
        else:
            coarse = rng.random((6, 6))
            t = (
                np.asarray(
                    Image.fromarray((coarse * 255).astype(np.uint8)).resize(
                        (side, side), Image.BICUBIC
                    ),
                    float,
                )
                / 255.0
            )
        grey = base * (1 - t) + other * t
        tint = rng.uniform(-8, 8, size=3)
        img = np.clip(grey[..., None] + tint, 0, 255)
        dist = np.sqrt(((img - avoid) ** 2).sum(-1)).min()
        lum = np.abs(img.mean(-1) - avoid.mean()).min()
        if dist > 100 and lum > 40:
            return img
    raise RuntimeError(f"no background keeps contrast with colour {avoid.round().tolist()}")


def _finish(img: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """Blur, sensor noise and JPEG artefacts, each applied to some images only."""
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    if rng.random() < 0.35:
        pil = pil.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.9) * pil.width / 64))
    if rng.random() < 0.5:
        noisy = np.asarray(pil, float) + rng.normal(
            0, rng.uniform(2, 9), (pil.height, pil.width, 3)
        )
        pil = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    if rng.random() < 0.5:
        buf = io.BytesIO()
        pil.save(buf, format="JPEG", quality=int(rng.integers(35, 90)))
        pil = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return pil


def _render(seed: int, index: int, split: str) -> tuple[Image.Image, dict[str, Any]]:
    rng = np.random.default_rng([seed, index, SPLITS.index(split), 9001])
    pairs = combinations(split)
    colour, shape = pairs[int(rng.integers(len(pairs)))]
    size = SIZES[int(rng.integers(len(SIZES)))]
    side = int(rng.choice(IMAGE_SIZES))
    radius = rng.uniform(*_RADIUS_FRACTION[size]) * side
    if shape == "square":
        angle = math.radians(rng.uniform(-20, 20))  # further turned, a square reads as a diamond
    else:
        angle = rng.uniform(0, 2 * np.pi)
    squash = rng.uniform(0.9, 1.1) if shape == "circle" else 1.0
    stroke = rng.uniform(0.12, 0.22) * radius if rng.random() < 0.3 else None
    cut = rng.random() < 0.15  # partly outside the frame, by up to 15% of the radius
    margin = radius * (0.85 if cut else 1.05)
    cx, cy = rng.uniform(margin, side - margin, size=2) if margin < side / 2 else (side / 2,) * 2
    fill = _fill_colour(rng, colour)
    bg = _neutral_background(rng, side, fill)
    cov = _coverage(shape, side, (cx, cy), radius, angle, stroke, squash, rng)[..., None]
    image = _finish(bg * (1 - cov) + fill * cov, rng)
    labels = {
        "shape": shape,
        "colour": colour,
        "size": size,
        "style": "outline" if stroke is not None else "fill",
        "image_size": side,
        "x": round(float(cx), 2),
        "y": round(float(cy), 2),
        "radius": round(float(radius), 2),
        "cut": bool(cut),
    }
    return image, labels


def redrawn_shapes(n: int, seed: int = 0, *, split: str = "all") -> ShapesData:
    """Shapes of the bundled vocabulary drawn by an independent renderer (evaluation only).

    Parameters
    ----------
    n : int
        Number of images.
    seed : int
        Same seed, same images; image ``i`` depends only on ``(seed, i, split)``.
    split : {"all", "train", "seen", "heldout"}
        As in :func:`clipviz.datasets.shapes`: ``"heldout"`` draws only ``HELD_OUT``
        combinations, ``"seen"``/``"train"`` never draw them.

    Returns
    -------
    ShapesData
        PIL images of varying size (48-160 px), labels with shape, colour, size, style
        (fill or outline), image_size, x, y, radius and cut; captions name colour and shape.

    Examples
    --------
    >>> data = redrawn_shapes(4, seed=1)
    >>> sorted(data.labels.columns)[:3]
    ['colour', 'cut', 'image_size']
    """
    import pandas as pd

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}.")
    rendered = [_render(int(seed), i, split) for i in range(int(n))]
    images = [r[0] for r in rendered]
    labels = pd.DataFrame([r[1] for r in rendered], columns=list(_LABEL_COLUMNS))
    captions = [f"a {lab['colour']} {lab['shape']}" for _, lab in rendered]
    ids = [f"redrawn-{seed}-{split}-{i:05d}" for i in range(len(images))]
    return ShapesData(images, captions, labels, seed=seed, split=split, ids=ids)


_LABEL_COLUMNS = ("shape", "colour", "size", "style", "image_size", "x", "y", "radius", "cut")
