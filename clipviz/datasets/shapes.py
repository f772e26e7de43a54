"""Synthetic shapes: 64x64 images of one coloured shape each, with captions and labels.

The data the bundled ``clipviz-shapes`` model is trained on, and a fully reproducible sample set
for demos and tests. Everything is derived from a ``numpy.random.Generator`` seeded per image
(``seed`` and the image index), so any image can be regenerated alone and two processes agree.

A fixed list of colour-shape combinations (``HELD_OUT``) is never generated for
``split="train"``: zero-shot accuracy on those measures compositional generalisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

SHAPES: list[str] = ["circle", "square", "triangle", "star", "hexagon", "cross"]
COLOURS: list[str] = ["red", "orange", "yellow", "green", "blue", "purple", "pink", "gray"]
SIZES: list[str] = ["small", "large"]
BACKGROUNDS: list[str] = ["dark", "light"]
# Six of the 48 colour-shape combinations (one in eight), each colour and shape at most twice,
# never drawn for split="train".
HELD_OUT: list[tuple[str, str]] = [
    ("red", "star"),
    ("orange", "hexagon"),
    ("yellow", "cross"),
    ("green", "triangle"),
    ("blue", "circle"),
    ("purple", "square"),
]
SPLITS = ("all", "train", "seen", "heldout")
IMAGE_SIZE = 64

_RGB = {
    "red": (220, 30, 30),
    "orange": (250, 140, 20),
    "yellow": (245, 225, 30),
    "green": (40, 170, 50),
    "blue": (35, 75, 225),
    "purple": (135, 45, 190),
    "pink": (250, 130, 190),
    "gray": (135, 135, 135),
}
# Shape "radius" (circumscribed, in output pixels); small shapes stay >= 11 px so that a small
# hexagon still shows its corners.
_RADIUS = {"small": (11.0, 15.0), "large": (19.0, 26.0)}
_TEMPLATES = [
    "a photo of a {size} {colour} {shape}",
    "a photo of a {colour} {shape}",
    "a {colour} {shape}",
    "a {size} {colour} {shape}",
    "a drawing of a {shape} that is {colour}",
    "a {size} {colour} {shape} on a {background} background",
    "a {colour} {shape} on a {background} background",
    "a picture of a {size} {shape} in {colour}",
    "an image of a {colour} {shape}",
]
_SCALE = 2  # draw at 2x, then downsample: cheap anti-aliasing


@dataclass(frozen=True)
class ShapeGeometry:
    """Where the shape of one image is: exact centre, circumscribed radius and rotation.

    ``mask()`` redraws the shape alone with the generator's own drawing code, so it matches the
    image's pixels; ``box()`` is the mask's bounding box. Used as ground truth for saliency.
    """

    shape: str
    cx: float
    cy: float
    radius: float
    angle: float  # radians
    image_size: int = IMAGE_SIZE

    def mask(self) -> np.ndarray:
        """(H, W) bool: pixels at least half covered by the shape."""
        s = _SCALE
        big = Image.new("L", (self.image_size * s,) * 2, 0)
        _draw_shape(ImageDraw.Draw(big), self.shape, self.cx, self.cy, self.radius, self.angle, 255)
        small = big.resize((self.image_size, self.image_size), Image.BOX)
        return np.asarray(small) >= 128

    def box(self) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)`` pixel bounds of the mask, inclusive."""
        ys, xs = np.nonzero(self.mask())
        return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


@dataclass
class ShapesData:
    """Generated shapes: ``images[i]`` is described by ``captions[i]`` and ``labels.iloc[i]``."""

    images: list[Image.Image]
    captions: list[str]
    labels: pd.DataFrame
    seed: int = 0
    split: str = "all"
    ids: list[str] = field(default_factory=list)
    geometry: list[ShapeGeometry] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)

    def to_imageset(self, label: str = "colour_shape") -> Any:
        """Wrap the images as a ``clipviz.engine.ImageSet``.

        Parameters
        ----------
        label : {"shape", "colour", "colour_shape"}
            Which label the set carries; ``"colour_shape"`` gives e.g. ``"red circle"``.
        """
        from clipviz.engine import ImageSet

        return ImageSet.from_pil(self.images, labels=self.label_strings(label), ids=self.ids)

    def label_strings(self, label: str = "colour_shape") -> list[str]:
        """Per-image label strings: ``"shape"``, ``"colour"`` or ``"colour_shape"``."""
        if label == "colour_shape":
            return [
                f"{c} {s}" for c, s in zip(self.labels["colour"], self.labels["shape"], strict=True)
            ]
        if label in ("shape", "colour", "size", "background"):
            return [str(v) for v in self.labels[label]]
        raise ValueError(
            f"label must be 'shape', 'colour' or 'colour_shape', got {label!r}; "
            "for example shapes(100).to_imageset(label='shape')."
        )


def combinations(split: str = "all") -> list[tuple[str, str]]:
    """The (colour, shape) pairs a split draws from, in a fixed order."""
    _check_split(split)
    held = set(HELD_OUT)
    pairs = [(c, s) for c in COLOURS for s in SHAPES]
    if split == "heldout":
        return [p for p in pairs if p in held]
    if split in ("train", "seen"):
        return [p for p in pairs if p not in held]
    return pairs


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")


def _polygon(shape: str, r: float, angle: float) -> list[tuple[float, float]] | None:
    """Vertices around the origin for a shape of circumscribed radius r (None for circle)."""
    if shape == "circle":
        return None
    if shape == "square":
        h = r * 0.8  # half side; the square is never rotated
        return [(-h, -h), (h, -h), (h, h), (-h, h)]
    if shape == "triangle":
        pts = [(r, -math.pi / 2 + 2 * math.pi * k / 3) for k in range(3)]
    elif shape == "hexagon":
        pts = [(r, 2 * math.pi * k / 6) for k in range(6)]  # pointy left/right, flat top
    elif shape == "star":
        pts = [(r if k % 2 == 0 else 0.42 * r, -math.pi / 2 + math.pi * k / 5) for k in range(10)]
    elif shape == "cross":
        a, w = r * 0.95, r * 0.33  # arm length, half arm width: a plus sign
        xy = [(w, a), (w, w), (a, w), (a, -w), (w, -w), (w, -a)]
        xy += [(-w, -a), (-w, -w), (-a, -w), (-a, w), (-w, w), (-w, a)]
        pts = [(math.hypot(x, y), math.atan2(y, x)) for x, y in xy]
    else:
        raise ValueError(f"unknown shape {shape!r}; choose from {SHAPES}.")
    return [(d * math.cos(t + angle), d * math.sin(t + angle)) for d, t in pts]


def _background(rng: np.random.Generator, fill: np.ndarray) -> tuple[np.ndarray, str, str]:
    """A plain, gradient or noisy background that keeps its distance from the fill colour."""
    n = IMAGE_SIZE
    for _ in range(20):
        tone = rng.choice(BACKGROUNDS)
        base = rng.uniform(10, 60) if tone == "dark" else rng.uniform(195, 245)
        tint = rng.uniform(-12, 12, size=3)  # near-neutral so no background reads as a colour
        style = rng.choice(["plain", "gradient", "noise"])
        a = np.clip(base + tint, 0, 255)
        if style == "gradient":
            b = np.clip(a + rng.uniform(-35, 35), 0, 255)
            t = np.linspace(0.0, 1.0, n)[:, None, None]
            img = a * (1 - t) + b * t
            if rng.random() < 0.5:
                img = img.transpose(1, 0, 2)
            img = np.broadcast_to(img, (n, n, 3))
        elif style == "noise":
            img = a + rng.normal(0.0, 10.0, size=(n, n, 1))
        else:
            img = np.broadcast_to(a, (n, n, 3))
        img = np.clip(img, 0, 255)
        # Every background pixel stays far from the fill, in RGB and in brightness.
        dist = np.sqrt(((img - fill) ** 2).sum(-1)).min()
        lum = np.abs(img.mean(-1) - fill.mean()).min()
        if dist > 110 and lum > 45:
            return img.astype(np.uint8), str(tone), str(style)
    raise RuntimeError(f"no background keeps contrast with fill colour {fill.tolist()}")


def _render_one(
    seed: int, index: int, split: str
) -> tuple[np.ndarray, dict[str, Any], str, ShapeGeometry]:
    """One image (uint8 HxWx3), its labels, caption and geometry, from (seed, index) alone."""
    rng = np.random.default_rng([seed, index, SPLITS.index(split)])
    pairs = combinations(split)
    colour, shape = pairs[int(rng.integers(len(pairs)))]
    size = SIZES[int(rng.integers(2))]
    r = rng.uniform(*_RADIUS[size])
    fill = np.clip(np.array(_RGB[colour], float) + rng.uniform(-12, 12, size=3), 0, 255)
    bg, tone, style = _background(rng, fill)
    angle = 0.0 if shape in ("square", "circle") else math.radians(rng.uniform(-15, 15))
    margin = r + 2
    cx, cy = rng.uniform(margin, IMAGE_SIZE - margin, size=2)
    big = Image.fromarray(bg).resize((IMAGE_SIZE * _SCALE,) * 2, Image.NEAREST)
    colour_fill = tuple(int(v) for v in fill)
    _draw_shape(ImageDraw.Draw(big), shape, cx, cy, r, angle, colour_fill)
    img = np.asarray(big.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BOX))
    template = _TEMPLATES[int(rng.integers(len(_TEMPLATES)))]
    caption = _articles(
        template.format(size=size, colour=colour, shape=shape, background=tone), rng
    )
    labels = {
        "shape": shape,
        "colour": colour,
        "size": size,
        "background": tone,
        "style": style,
        "x": round(float(cx), 2),
        "y": round(float(cy), 2),
        "radius": round(float(r), 2),
    }
    geometry = ShapeGeometry(shape, float(cx), float(cy), float(r), float(angle))
    return img, labels, caption, geometry


def _draw_shape(
    draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, angle: float, fill: Any
) -> None:
    """Draw one shape on a canvas at ``_SCALE`` times the output size (images and masks)."""
    s = _SCALE
    poly = _polygon(shape, r * s, angle)
    if poly is None:
        draw.ellipse([(cx - r) * s, (cy - r) * s, (cx + r) * s, (cy + r) * s], fill=fill)
    else:
        draw.polygon([(cx * s + x, cy * s + y) for x, y in poly], fill=fill)


def _articles(caption: str, rng: np.random.Generator) -> str:
    """Before a vowel, write "an" about half the time: users type both, prompts use "a"."""
    words = caption.split(" ")
    for i in range(len(words) - 1):
        if words[i] == "a" and words[i + 1][0] in "aeiou" and rng.random() < 0.5:
            words[i] = "an"
    return " ".join(words)


def _render_range(
    args: tuple[int, int, int, str],
) -> tuple[np.ndarray, list[dict], list[str], list[ShapeGeometry]]:
    seed, start, stop, split = args
    out = [_render_one(seed, i, split) for i in range(start, stop)]
    images = np.stack([o[0] for o in out])
    return images, [o[1] for o in out], [o[2] for o in out], [o[3] for o in out]


def shapes_array(
    n: int, seed: int = 0, *, split: str = "all", processes: int = 1
) -> tuple[np.ndarray, pd.DataFrame, list[str]]:
    """Generate ``n`` shapes as one uint8 array (the fast path used for training).

    Parameters
    ----------
    n : int
        Number of images.
    seed : int
        Seed; image ``i`` depends only on ``(seed, i, split)``, whatever ``processes`` is.
    split : {"all", "train", "seen", "heldout"}
        ``"train"`` and ``"seen"`` never draw a ``HELD_OUT`` combination; ``"heldout"`` only
        draws those.
    processes : int
        Worker processes (2 generates ~70k images in well under a minute).

    Returns
    -------
    images : np.ndarray
        (n, 64, 64, 3) uint8.
    labels : pandas.DataFrame
        Columns shape, colour, size, background, style, x, y, radius.
    captions : list of str
    """
    images, labels, captions, _ = _generate(n, seed, split, processes)
    return images, labels, captions


def render_in_chunks(
    render_range: Callable[[tuple[int, int, int, str]], Any],
    seed: int,
    n: int,
    split: str,
    processes: int,
) -> list[Any]:
    """``render_range((seed, start, stop, split))`` over chunks of 2,000 images, in a fork pool
    when ``processes > 1``; image ``i`` depends only on ``(seed, i, split)`` either way."""
    chunk = 2000
    jobs = [(seed, a, min(a + chunk, n), split) for a in range(0, n, chunk)]
    if processes > 1 and n > chunk:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(processes) as pool:
            return pool.map(render_range, jobs)
    return [render_range(j) for j in jobs]


def _generate(
    n: int, seed: int, split: str, processes: int
) -> tuple[np.ndarray, pd.DataFrame, list[str], list[ShapeGeometry]]:
    import pandas as pd

    _check_split(split)
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}.")
    n = int(n)
    parts = render_in_chunks(_render_range, int(seed), n, split, processes)
    if not parts:
        empty = pd.DataFrame(columns=["shape", "colour", "size", "background"])
        return np.zeros((0, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8), empty, [], []
    images = np.concatenate([p[0] for p in parts])
    labels = pd.DataFrame([row for p in parts for row in p[1]])
    captions = [c for p in parts for c in p[2]]
    geometry = [g for p in parts for g in p[3]]
    return images, labels, captions, geometry


def shapes(n: int, seed: int = 0, *, split: str = "all", processes: int = 1) -> ShapesData:
    """Generate ``n`` synthetic shape images with captions and labels.

    Parameters
    ----------
    n : int
        Number of images (10,000 take a few seconds).
    seed : int
        Same seed, same images.
    split : {"all", "train", "seen", "heldout"}
        ``"train"``/``"seen"`` exclude the ``HELD_OUT`` colour-shape combinations,
        ``"heldout"`` draws only them.
    processes : int
        Worker processes for large ``n``.

    Returns
    -------
    ShapesData
        ``.images`` (64x64 PIL RGB), ``.captions``, ``.labels`` (DataFrame with shape, colour,
        size, background, ...), ``.geometry`` (one :class:`ShapeGeometry` per image: centre,
        radius, ``mask()``, ``box()``), ``.to_imageset(label=...)``.

    Examples
    --------
    >>> data = shapes(8, seed=1)
    >>> data.captions[0]  # doctest: +SKIP
    'a photo of a small red circle'
    """
    arr, labels, captions, geometry = _generate(n, seed, split, processes)
    images = [Image.fromarray(a) for a in arr]
    ids = [f"shapes-{seed}-{split}-{i:05d}" for i in range(len(images))]
    return ShapesData(images, captions, labels, seed=seed, split=split, ids=ids, geometry=geometry)
