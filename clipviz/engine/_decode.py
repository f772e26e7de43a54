"""Safe image decoding: any file or PIL image in, an upright 8-bit RGB PIL image out.

Everything that can go wrong with one input (not a regular file, too large, not a raster
image, truncated, a decompression bomb, an extreme aspect ratio, an unsupported mode) becomes
:class:`ImageSkipped` with a reason a person can act on, so a batch job can skip that item,
report it, and keep going. Only regular files are opened (a FIFO would block forever, a device
such as /dev/zero never ends), at most ``MAX_FILE_BYTES`` are read, and only raster formats
are decoded (PIL would hand EPS to Ghostscript).
"""

from __future__ import annotations

import io
import os
import stat
import struct
import threading
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

__all__ = ["ImageSkipped", "decode_bytes", "to_rgb", "read_bytes", "MAX_FILE_BYTES", "MAX_ASPECT"]

#: Files larger than this are skipped unread (an image this large is not a photo to embed).
MAX_FILE_BYTES = 256 * 1024**2
#: Longer side / shorter side above this is refused: CLIP preprocessing scales the short side
#: up to the model's input size, so a 1,000,000 x 1 strip would become 224,000,000 x 224.
MAX_ASPECT = 50.0
#: Raster formats PIL may decode. Never EPS/PS (Ghostscript), PDF, or other delegating formats.
RASTER_FORMATS = (
    "JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP", "PPM", "ICO", "TGA", "DIB", "PCX",
)  # fmt: skip
_HIGH_BIT_ROWS = 512  # rows scaled at a time: bounds the float32 temporary of 16-bit images

# Everything PIL raises for bad input (UnidentifiedImageError is an OSError).
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError, TypeError)
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_HIGH_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I", "F"}
# warnings.catch_warnings mutates process-wide state; serialise our use of it across threads.
_WARN_LOCK = threading.Lock()


class ImageSkipped(Exception):
    """An input that cannot be used as an image; ``reason`` says why, for people.

    ``kind`` is the reason without the file name or details (e.g. ``"file not found"``), for
    counting skips per reason.
    """

    def __init__(self, reason: str, kind: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.kind = kind or reason.split(":", 1)[0]


def read_bytes(path: str | Path, limit: int | None = None) -> bytes:
    """Read a regular file of at most ``limit`` bytes (default ``MAX_FILE_BYTES``).

    The file is opened non-blocking and checked with ``fstat`` before any read, so a FIFO, a
    socket or a device (``/dev/zero``, possibly behind a symlink) is skipped at once.
    File-system errors become :class:`ImageSkipped`.
    """
    limit = MAX_FILE_BYTES if limit is None else int(limit)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError as err:
        raise ImageSkipped(f"file not found: {path}") from err
    except IsADirectoryError as err:
        raise ImageSkipped(f"is a directory, not an image file: {path}") from err
    except OSError as err:  # permissions, I/O errors, ENXIO for a socket
        raise ImageSkipped(
            f"cannot read file {path}: {err.strerror or err}", "cannot read file"
        ) from err
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ImageSkipped(f"is a directory, not an image file: {path}")
        if not stat.S_ISREG(st.st_mode):
            raise ImageSkipped(
                f"not a regular file ({_file_kind(st.st_mode)}): {path}", "not a regular file"
            )
        if st.st_size > limit:
            raise ImageSkipped(
                f"file too large ({st.st_size:,} bytes > {limit:,}): {path}", "file too large"
            )
        data = _read_upto(fd, limit + 1)
    except OSError as err:
        raise ImageSkipped(
            f"cannot read file {path}: {err.strerror or err}", "cannot read file"
        ) from err
    finally:
        os.close(fd)
    if len(data) > limit:  # it grew while we read it
        raise ImageSkipped(f"file too large (more than {limit:,} bytes): {path}", "file too large")
    return data


def _read_upto(fd: int, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _file_kind(mode: int) -> str:
    kinds = [(stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")]  # fmt: skip
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def decode_bytes(data: bytes, name: str = "image", min_side: int | None = None) -> Image.Image:
    """Decode encoded image bytes to an upright RGB image, or raise :class:`ImageSkipped`.

    ``min_side``: the size the image will be scaled to (the model's input); JPEGs may then be
    decoded at a reduced scale (``draft``) whose shorter side is still at least ``min_side``.
    """
    if not data:
        raise ImageSkipped(f"empty file: {name}")
    try:
        with _WARN_LOCK, warnings.catch_warnings():
            # Over PIL's MAX_IMAGE_PIXELS PIL only warns (and raises at twice that): refuse both.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=RASTER_FORMATS)
        check_shape(img, name)
        if min_side and img.format == "JPEG":
            img.draft("RGB", _draft_size(img.size, int(min_side)))
        img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageSkipped(
            f"refused as a possible decompression bomb: {name} ({err}); raise "
            "PIL.Image.MAX_IMAGE_PIXELS if you trust this file",
            "possible decompression bomb",
        ) from err
    except Image.UnidentifiedImageError as err:
        raise ImageSkipped(f"not an image file PIL can read (raster formats only): {name}") from err
    except MemoryError as err:
        raise ImageSkipped(f"out of memory decoding {name}", "out of memory") from err
    except _DECODE_ERRORS as err:
        kind = "truncated" if "truncated" in str(err).lower() else "corrupt or unreadable"
        raise ImageSkipped(f"{kind} image {name}: {err}", f"{kind} image") from err
    return to_rgb(img, name)


def check_shape(img: Image.Image, name: str) -> None:
    """Refuse empty images and extreme aspect ratios from the header, before decoding."""
    w, h = img.size
    if w < 1 or h < 1:
        raise ImageSkipped(f"image has no pixels ({w} x {h}): {name}", "no pixels")
    if max(w, h) / min(w, h) > MAX_ASPECT:
        raise ImageSkipped(
            f"extreme aspect ratio {w} x {h} ({max(w, h) / min(w, h):,.0f}:1, the limit is "
            f"{MAX_ASPECT:g}:1): scaling its short side up to the model's input would take "
            f"too much memory: {name}",
            "extreme aspect ratio",
        )


def _draft_size(size: tuple[int, int], min_side: int) -> tuple[int, int]:
    """A draft request that keeps the shorter side >= min_side at the image's aspect ratio."""
    w, h = size
    scale = min_side / min(w, h)
    return max(1, int(np.ceil(w * scale))), max(1, int(np.ceil(h * scale)))


def to_rgb(img: Image.Image, name: str = "image") -> Image.Image:
    """Apply EXIF orientation and convert any PIL mode to 8-bit RGB (alpha composited on white)."""
    try:
        img = ImageOps.exif_transpose(img)
    except _DECODE_ERRORS:
        pass  # a broken EXIF block is no reason to lose the pixels: keep them as stored
    try:
        return _convert(img)
    except _DECODE_ERRORS as err:
        raise ImageSkipped(
            f"cannot convert {name} (mode {img.mode}) to RGB: {err}", "cannot convert to RGB"
        ) from err


def _convert(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in _HIGH_BIT_MODES:
        return _high_bit_to_rgb(img)
    if mode == "P" and "transparency" in img.info:
        img, mode = img.convert("RGBA"), "RGBA"
    if mode in _ALPHA_MODES:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")  # L, 1, P, CMYK, YCbCr, HSV, ...


def _high_bit_to_rgb(img: Image.Image) -> Image.Image:
    """Scale 16-bit, 32-bit integer and float images to 8 bits instead of clipping them.

    Works a block of rows at a time in float32, so a 9,400 px 16-bit image needs about its
    own size again, not five float64 copies.
    """
    arr = np.asarray(img)  # uint16 / int32 / float32, no conversion copy
    lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    offset, factor = 0.0, 1.0
    if img.mode.startswith("I;16"):
        factor = 1.0 / 257.0
    elif img.mode == "F" and 0.0 <= lo and hi <= 1.0:
        factor = 255.0
    elif lo < 0.0 or hi > 255.0:
        # "I" holding 16-bit data (older PIL, some TIFFs) scales like I;16; otherwise stretch.
        in_16bit = img.mode == "I" and lo >= 0.0 and hi <= 65535.0
        offset, factor = (0.0, 1.0 / 257.0) if in_16bit else (lo, 255.0 / (hi - lo))
    gray = np.empty(arr.shape[:2], np.uint8)
    for start in range(0, arr.shape[0], _HIGH_BIT_ROWS):
        block = arr[start : start + _HIGH_BIT_ROWS].astype(np.float32)
        block -= np.float32(offset)
        block *= np.float32(factor)
        np.rint(block, out=block)
        np.clip(block, 0, 255, out=block)
        gray[start : start + _HIGH_BIT_ROWS] = block
    return Image.fromarray(gray).convert("RGB")
