"""Safe image decoding: any file or PIL image in, an upright 8-bit RGB PIL image out.

Everything that can go wrong with one input (not an image, truncated, a decompression bomb, an
unsupported mode) becomes :class:`ImageSkipped` with a reason a person can act on, so a batch
job can skip that item, report it, and keep going.
"""

from __future__ import annotations

import io
import struct
import threading
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

__all__ = ["ImageSkipped", "decode_bytes", "to_rgb", "read_bytes"]

# Everything PIL raises for bad input (UnidentifiedImageError is an OSError).
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError, TypeError)
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_HIGH_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I", "F"}
# warnings.catch_warnings mutates process-wide state; serialise our use of it across threads.
_WARN_LOCK = threading.Lock()


class ImageSkipped(Exception):
    """An input that cannot be used as an image; ``reason`` says why, for people."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def read_bytes(path: str | Path) -> bytes:
    """Read a file, turning file-system errors into :class:`ImageSkipped`."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as err:
        raise ImageSkipped(f"file not found: {path}") from err
    except IsADirectoryError as err:
        raise ImageSkipped(f"is a directory, not an image file: {path}") from err
    except OSError as err:  # permissions, I/O errors
        raise ImageSkipped(f"cannot read file {path}: {err.strerror or err}") from err


def decode_bytes(data: bytes, name: str = "image") -> Image.Image:
    """Decode encoded image bytes to an upright RGB image, or raise :class:`ImageSkipped`."""
    if not data:
        raise ImageSkipped(f"empty file: {name}")
    try:
        with _WARN_LOCK, warnings.catch_warnings():
            # Over PIL's MAX_IMAGE_PIXELS PIL only warns (and raises at twice that): refuse both.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
        img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageSkipped(
            f"refused as a possible decompression bomb: {name} ({err}); raise "
            "PIL.Image.MAX_IMAGE_PIXELS if you trust this file"
        ) from err
    except Image.UnidentifiedImageError as err:
        raise ImageSkipped(f"not an image file PIL can read: {name}") from err
    except _DECODE_ERRORS as err:
        kind = "truncated" if "truncated" in str(err).lower() else "corrupt or unreadable"
        raise ImageSkipped(f"{kind} image {name}: {err}") from err
    return to_rgb(img, name)


def to_rgb(img: Image.Image, name: str = "image") -> Image.Image:
    """Apply EXIF orientation and convert any PIL mode to 8-bit RGB (alpha composited on white)."""
    try:
        img = ImageOps.exif_transpose(img)
    except _DECODE_ERRORS:
        pass  # a broken EXIF block is no reason to lose the pixels: keep them as stored
    try:
        return _convert(img)
    except _DECODE_ERRORS as err:
        raise ImageSkipped(f"cannot convert {name} (mode {img.mode}) to RGB: {err}") from err


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
    """Scale 16-bit, 32-bit integer and float images to 8 bits instead of clipping them."""
    arr = np.asarray(img, dtype=np.float64)
    lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    if img.mode.startswith("I;16"):
        arr = arr / 257.0
    elif img.mode == "F" and 0.0 <= lo and hi <= 1.0:
        arr = arr * 255.0
    elif lo < 0.0 or hi > 255.0:
        # "I" holding 16-bit data (older PIL, some TIFFs) scales like I;16; otherwise stretch.
        in_16bit = img.mode == "I" and lo >= 0.0 and hi <= 65535.0
        arr = arr / 257.0 if in_16bit else (arr - lo) * (255.0 / (hi - lo))
    gray = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    return Image.fromarray(gray).convert("RGB")
