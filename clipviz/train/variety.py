"""Training-time rendering variety: the shapes generator's drawing, varied far beyond its defaults.

``clipviz.datasets.shapes`` draws filled, nearly upright shapes at 64 px on three kinds of
background; a model trained on it alone learns that generator (87.6% shape accuracy on another
renderer's shapes, 28% on outlines). These pairs vary what a shape's *name* does not depend on:
fill or outline, any rotation, squashed circles, stars and crosses of other proportions, size,
position (sometimes cut by the frame), colour tone, blur, noise, JPEG artefacts and the resolution
the shape was drawn at. The evaluation renderer (``clipviz.datasets.redrawn``) shares none of
this code and never feeds training.
"""

from __future__ import annotations

import importlib
import io
import math
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# the module, not the function of the same name that clipviz.datasets exports
base = importlib.import_module("clipviz.datasets.shapes")

_DRAW_SIDES = (64, 96, 128)  # drawn at this size, then resized to the model's 64 px
_OUTLINE_FRACTION = 0.3
_CUT_FRACTION = 0.15


def _vertices(shape: str, r: float, angle: float, rng: np.random.Generator) -> list | None:
    """The generator's polygon, with a star's inner radius and a cross's arms varied."""
    if shape == "star":
        inner = rng.uniform(0.35, 0.52)
        pts = [(r if k % 2 == 0 else inner * r, -math.pi / 2 + math.pi * k / 5) for k in range(10)]
        return [(d * math.cos(t + angle), d * math.sin(t + angle)) for d, t in pts]
    if shape == "cross":
        a, w = r * 0.95, r * rng.uniform(0.24, 0.4)
        xy = [(w, a), (w, w), (a, w), (a, -w), (w, -w), (w, -a)]
        xy += [(-w, -a), (-w, -w), (-a, -w), (-a, w), (-w, w), (-w, a)]
        c, s = math.cos(angle), math.sin(angle)
        return [(x * c - y * s, x * s + y * c) for x, y in xy]
    if shape == "square":
        h = r * 0.8
        c, s = math.cos(angle), math.sin(angle)
        return [(x * c - y * s, x * s + y * c) for x, y in [(-h, -h), (h, -h), (h, h), (-h, h)]]
    return base._polygon(shape, r, angle)


def _angle(shape: str, rng: np.random.Generator) -> float:
    if shape == "circle":
        return 0.0
    if shape == "square":  # turned further, a square reads as a diamond
        return math.radians(rng.uniform(-25, 25))
    return rng.uniform(0, 2 * math.pi)


def _post(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    if rng.random() < 0.35:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 1.0) * img.width / 64))
    if rng.random() < 0.4:
        arr = np.asarray(img, float) + rng.normal(0, rng.uniform(2, 10), (img.height, img.width, 3))
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if rng.random() < 0.4:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=int(rng.integers(30, 92)))
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return img


def _render_one(seed: int, index: int, split: str) -> tuple[np.ndarray, dict[str, Any], str]:
    rng = np.random.default_rng([seed, index, base.SPLITS.index(split), 4242])
    pairs = base.combinations(split)
    colour, shape = pairs[int(rng.integers(len(pairs)))]
    size = base.SIZES[int(rng.integers(2))]
    side = int(rng.choice(_DRAW_SIDES))
    scale = side / base.IMAGE_SIZE
    lo, hi = base._RADIUS[size]
    r = rng.uniform(lo * 0.9, hi * 1.15) * scale
    if colour == "gray":  # a tint per channel would turn grey into a pale colour
        jitter = rng.uniform(-30, 30) + rng.uniform(-4, 4, size=3)
    else:
        jitter = rng.uniform(-28, 28, size=3) * rng.uniform(0.6, 1.0)
    fill = np.clip(np.array(base._RGB[colour], float) + jitter, 0, 255)
    bg64, tone, _ = base._background(rng, fill)
    bg = Image.fromarray(bg64).resize((side * 2, side * 2), Image.BILINEAR)
    cut = rng.random() < _CUT_FRACTION
    margin = r * (0.85 if cut else 1.05)
    cx, cy = rng.uniform(margin, side - margin, size=2)
    draw = ImageDraw.Draw(bg)
    ink = tuple(int(v) for v in fill)
    outline = rng.random() < _OUTLINE_FRACTION
    stroke = max(2, int(round(rng.uniform(0.12, 0.22) * r * 2)))
    poly = _vertices(shape, r * 2, _angle(shape, rng), rng)
    if poly is None:
        squash = rng.uniform(0.9, 1.1)
        box = [
            (cx - r * squash) * 2,
            (cy - r / squash) * 2,
            (cx + r * squash) * 2,
            (cy + r / squash) * 2,
        ]
        draw.ellipse(
            box,
            outline=ink if outline else None,
            fill=None if outline else ink,
            width=stroke if outline else 1,
        )
    else:
        xy = [(cx * 2 + x, cy * 2 + y) for x, y in poly]
        if outline:
            draw.line(xy + xy[:1], fill=ink, width=stroke, joint="curve")
        else:
            draw.polygon(xy, fill=ink)
    img = _post(bg.resize((side, side), Image.BOX), rng)
    img = img.resize((base.IMAGE_SIZE, base.IMAGE_SIZE), Image.BICUBIC)
    template = base._TEMPLATES[int(rng.integers(len(base._TEMPLATES)))]
    caption = base._articles(
        template.format(size=size, colour=colour, shape=shape, background=tone), rng
    )
    labels = {
        "shape": shape,
        "colour": colour,
        "size": size,
        "background": tone,
        "style": "outline" if outline else "fill",
    }
    return np.asarray(img), labels, caption


def _render_range(args: tuple[int, int, int, str]) -> tuple[np.ndarray, list[dict], list[str]]:
    seed, start, stop, split = args
    out = [_render_one(seed, i, split) for i in range(start, stop)]
    return np.stack([o[0] for o in out]), [o[1] for o in out], [o[2] for o in out]


def varied_shapes_array(
    n: int, seed: int, *, split: str = "train", processes: int = 1
) -> tuple[np.ndarray, Any, list[str]]:
    """``n`` varied training images as (n, 64, 64, 3) uint8, labels and captions.

    Same vocabulary, splits and caption templates as :func:`clipviz.datasets.shapes_array`;
    image ``i`` depends only on ``(seed, i, split)``, whatever ``processes`` is.
    """
    import pandas as pd

    base._check_split(split)
    parts = base.render_in_chunks(_render_range, int(seed), int(n), split, processes)
    if not parts:
        return np.zeros((0, 64, 64, 3), np.uint8), pd.DataFrame(), []
    images = np.concatenate([p[0] for p in parts])
    labels = pd.DataFrame([row for p in parts for row in p[1]])
    return images, labels, [c for p in parts for c in p[2]]
