"""Small image thumbnails for the views, made once per image set and packed for the wire.

Torch-free (PIL only). ``make_thumbnails`` caches its result on the ImageSet object, so a
Workbench that rebuilds its grid, or a second Workbench on the same images, does not decode the
images again. ``pack_thumbnails`` joins them into one binary buffer plus offsets: the grid sends
that buffer to the browser once, as a binary widget buffer (no base64, no per-image widgets).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

_FORMATS = {"webp": ("WEBP", "image/webp"), "jpeg": ("JPEG", "image/jpeg")}
_CACHE_ATTR = "_clipviz_thumbnails"


def thumbnail_mime(fmt: str) -> str:
    """The MIME type of thumbnails made with ``fmt`` ("webp" or "jpeg")."""
    return _check_fmt(fmt)[1]


def make_thumbnails(
    images: Any,
    size: int = 96,
    *,
    fmt: str = "webp",
    quality: int = 80,
    workers: int = 2,
) -> list[bytes]:
    """Encode one small thumbnail per image, once; later calls return the cached list.

    Parameters
    ----------
    images : ImageSet or sequence of PIL.Image.Image
        An ImageSet (anything with ``len()`` and ``load(i)``) or plain PIL images.
    size : int
        The longest side of a thumbnail in pixels (images are never enlarged).
    fmt : {"webp", "jpeg"}
        The encoding; WebP is about half the bytes of JPEG at the same quality.
    quality : int
        Encoder quality, 1-100.
    workers : int
        Threads used for decoding and encoding (PIL releases the GIL while it works).

    Returns
    -------
    list of bytes
        ``thumbs[i]`` is the encoded thumbnail of image ``i``. Images that cannot be read get a
        grey placeholder tile with a cross, so indices always line up with the image set.
    """
    pil_format, _ = _check_fmt(fmt)
    if not isinstance(size, int) or size < 8:
        raise ValueError(f"size must be an int >= 8 pixels, got {size!r}")
    key = (size, fmt, quality)
    cache = getattr(images, _CACHE_ATTR, None)
    if isinstance(cache, dict) and key in cache:
        return cache[key]

    loader = _loader(images)
    n = len(images)

    def one(i: int) -> bytes:
        return _encode(lambda: loader(i), size, pil_format, quality)

    if workers > 1 and n > 16:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            thumbs = list(pool.map(one, range(n), chunksize=32))
    else:
        thumbs = [one(i) for i in range(n)]

    try:
        if not isinstance(cache, dict):
            cache = {}
            setattr(images, _CACHE_ATTR, cache)
        cache[key] = thumbs
    except (AttributeError, TypeError):
        pass  # a plain list or a slotted object: no cache, the caller keeps the result
    return thumbs


def pack_thumbnails(thumbs: Sequence[bytes]) -> tuple[bytes, np.ndarray]:
    """Join thumbnails into one buffer; ``offsets`` (N+1, uint32) delimit image ``i``.

    Parameters
    ----------
    thumbs : sequence of bytes
        Encoded thumbnails, e.g. from :func:`make_thumbnails`.

    Returns
    -------
    (bytes, numpy.ndarray)
        The concatenated bytes and offsets such that image ``i`` is
        ``buffer[offsets[i]:offsets[i + 1]]``.
    """
    lengths = np.fromiter((len(t) for t in thumbs), dtype=np.int64, count=len(thumbs))
    offsets = np.zeros(len(thumbs) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] >= 2**32:
        raise ValueError(
            f"thumbnails total {offsets[-1]} bytes, over the 4 GiB a uint32 offset can address; "
            "use a smaller size= or fewer images"
        )
    return b"".join(thumbs), offsets.astype(np.uint32)


def placeholder(size: int = 96, fmt: str = "webp") -> bytes:
    """A grey tile with a cross, shown for images that could not be read."""
    tile = Image.new("RGB", (size, size), (200, 200, 200))
    draw = ImageDraw.Draw(tile)
    draw.line((0, 0, size, size), fill=(150, 150, 150), width=max(1, size // 24))
    draw.line((0, size, size, 0), fill=(150, 150, 150), width=max(1, size // 24))
    return _to_bytes(tile, _check_fmt(fmt)[0], 80)


def _check_fmt(fmt: str) -> tuple[str, str]:
    if fmt not in _FORMATS:
        raise ValueError(f"unknown thumbnail format {fmt!r}; use one of {sorted(_FORMATS)}")
    return _FORMATS[fmt]


def _loader(images: Any):
    if hasattr(images, "load") and hasattr(images, "__len__"):
        return images.load
    if isinstance(images, Sequence):
        return images.__getitem__
    raise TypeError(
        f"make_thumbnails needs an ImageSet or a list of PIL images, got {type(images).__name__}"
    )


def _unreadable_errors() -> tuple[type[BaseException], ...]:
    errors: tuple[type[BaseException], ...] = (OSError, ValueError, Image.DecompressionBombError)
    try:  # the engine's own "this image was skipped" error, when the engine is present
        from clipviz.engine import ImageSkipped
    except ImportError:
        return errors
    return (*errors, ImageSkipped)


def _encode(load: Callable[[], Image.Image], size: int, pil_format: str, quality: int) -> bytes:
    try:
        image = load().convert("RGB")
        image.thumbnail((size, size), Image.Resampling.LANCZOS)
    except _unreadable_errors():
        return placeholder(size, "webp" if pil_format == "WEBP" else "jpeg")
    return _to_bytes(image, pil_format, quality)


def _to_bytes(image: Image.Image, pil_format: str, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, format=pil_format, quality=quality)
    return out.getvalue()
