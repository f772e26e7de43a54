"""Small image thumbnails for the views: made lazily, a page at a time, cached on disk.

Torch-free (PIL only). ``ThumbnailStore`` makes a thumbnail only when a view asks for it (the
grid's visible page, a hovered point) and keeps it in a disk cache keyed by the image's content
hash, like the embedding cache: reopening 50k images decodes nothing already seen, and 1M images
decode nothing at start. ``make_thumbnails`` encodes every image at once (small sets, tests);
``pack_thumbnails`` joins thumbnails into one buffer plus offsets.
"""

from __future__ import annotations

import io
import os
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from clipviz._atomic import write_atomic

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


class ThumbnailStore:
    """Thumbnails of an image set made on demand, in memory (bounded) and in a disk cache.

    Parameters
    ----------
    images : ImageSet or sequence of PIL.Image.Image
        The images; an ImageSet's content hash keys the disk cache (plain lists: memory only).
    order : sequence of int, optional
        ``order[i]`` is the image-set index of view index ``i`` (e.g. the embedded images, when
        some were skipped); default: the image set's own order.
    size, fmt, quality :
        As in :func:`make_thumbnails`.
    cache : bool or path
        The cache root (``True``: the platform cache folder, as for embeddings; ``False``: none).
    memory_items : int
        Thumbnails kept in memory (least recently used dropped first).
    workers : int
        Threads that decode and encode one page.

    Notes
    -----
    Disk layout: ``<root>/thumbnails/v1/<size>-<fmt>-q<quality>/<hash[:2]>/<hash>.<ext>``; each
    file is written to a temporary name and renamed (atomic), and is plain image bytes.
    """

    def __init__(
        self,
        images: Any,
        *,
        order: Sequence[int] | None = None,
        size: int = 96,
        fmt: str = "webp",
        quality: int = 80,
        cache: bool | str | os.PathLike = True,
        memory_items: int = 4096,
        workers: int = 2,
    ) -> None:
        pil_format, self.mime = _check_fmt(fmt)
        if not isinstance(size, int) or size < 8:
            raise ValueError(f"size must be an int >= 8 pixels, got {size!r}")
        self._images, self._load = images, _loader(images)
        self._order = None if order is None else np.asarray(order, dtype=np.int64)
        self._encode_args = (size, pil_format, quality)
        self._ext = fmt
        self._folder = _cache_folder(cache, f"{size}-{fmt}-q{quality}")
        self._memory: OrderedDict[int, bytes] = OrderedDict()
        self._memory_items = int(memory_items)
        self._workers = int(workers)
        self.made = 0  # thumbnails decoded and encoded here (not read from the disk cache)

    def __len__(self) -> int:
        return len(self._order) if self._order is not None else len(self._images)

    def __repr__(self) -> str:
        where = str(self._folder) if self._folder is not None else "memory only"
        return f"<ThumbnailStore: {len(self)} images, {self._encode_args[0]} px, {where}>"

    def thumbnail(self, index: int) -> bytes:
        """The encoded thumbnail of view index ``index`` (made now if needed)."""
        return self.page([index])[0]

    def page(self, indices: Iterable[int]) -> list[bytes]:
        """Encoded thumbnails of ``indices`` (view order), made in parallel where missing."""
        wanted = [self._check(i) for i in indices]
        missing = [i for i in dict.fromkeys(wanted) if i not in self._memory]
        if missing:
            if self._workers > 1 and len(missing) > 4:
                with ThreadPoolExecutor(max_workers=self._workers) as pool:
                    made = list(pool.map(self._fetch, missing))
            else:
                made = [self._fetch(i) for i in missing]
            for i, data in zip(missing, made, strict=True):
                self._remember(i, data)
        out = [self._memory[i] for i in wanted]
        for i in wanted:
            self._memory.move_to_end(i)
        return out

    def _check(self, index: int) -> int:
        i = int(index)
        if not 0 <= i < len(self):
            raise IndexError(f"thumbnail index {index} out of range for {len(self)} images")
        return i

    def _remember(self, i: int, data: bytes) -> None:
        self._memory[i] = data
        while len(self._memory) > self._memory_items:
            self._memory.popitem(last=False)

    def _fetch(self, i: int) -> bytes:
        j = int(self._order[i]) if self._order is not None else i
        images = self._images
        if self._folder is None or not hasattr(images, "read_raw"):
            self.made += 1
            return _encode(lambda: self._load(j), *self._encode_args)
        try:
            raw = images.read_raw(j)
        except _unreadable_errors():
            return _encode(lambda: self._load(j), *self._encode_args)  # the placeholder tile
        from clipviz.engine.imageset import hash_raw

        digest = hash_raw(raw)
        path = self._folder / digest[:2] / f"{digest}.{self._ext}"
        try:
            return path.read_bytes()
        except OSError:
            pass  # not cached yet
        self.made += 1
        data = _encode(lambda: images.decode_raw(j, raw), *self._encode_args)
        _write_cached(path, data)
        return data


def _cache_folder(cache: bool | str | os.PathLike, variant: str) -> Path | None:
    from clipviz.engine.cache import resolve_cache_dir

    root = resolve_cache_dir(cache)
    return None if root is None else root / "thumbnails" / "v1" / variant


def _write_cached(path: Path, data: bytes) -> None:
    try:
        write_atomic(path, data)
    except OSError:
        pass  # a read-only cache folder: serve from memory only


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
