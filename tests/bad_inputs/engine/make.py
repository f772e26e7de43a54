"""Generate the engine's bad-input corpus into a folder (see README.md for the cases).

Each case is a small file (or FIFO, or symlink) made on the fly, never a stored binary; the
expected ``ImageSkipped.kind`` of each is in :data:`CASES`.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

#: The largest file the tests allow (they lower clipviz.engine._decode.MAX_FILE_BYTES to it).
TEST_MAX_FILE_BYTES = 1 << 20

_EPS = (
    b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"
    b"newpath 0 0 moveto 10 10 lineto stroke\nshowpage\n%%EOF\n"
)


@dataclass(frozen=True)
class Case:
    name: str  # file name in the corpus folder
    kind: str  # expected ImageSkipped.kind (the reason without the file name)
    make: Callable[[Path], None]


def _png(size: tuple[int, int], mode: str = "L") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, "PNG")
    return buf.getvalue()


def _truncated(path: Path) -> None:
    buf = io.BytesIO()
    Image.effect_noise((64, 64), 40).convert("RGB").save(buf, "PNG")
    path.write_bytes(buf.getvalue()[:300])


def _big(path: Path) -> None:
    # a valid JPEG header followed by padding: over the (lowered) size limit
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "JPEG")
    path.write_bytes(buf.getvalue() + b"\0" * (TEST_MAX_FILE_BYTES + 1))


CASES: list[Case] = [
    Case("pipe.jpg", "not a regular file", lambda p: os.mkfifo(p)),
    Case("zero.png", "not a regular file", lambda p: os.symlink("/dev/zero", p)),
    Case("vector.png", "not an image file PIL can read (raster formats only)",
         lambda p: p.write_bytes(_EPS)),
    Case("strip.png", "extreme aspect ratio", lambda p: p.write_bytes(_png((1_000_000, 1)))),
    Case("tall.png", "extreme aspect ratio", lambda p: p.write_bytes(_png((1, 100_000)))),
    Case("text.jpg", "not an image file PIL can read (raster formats only)",
         lambda p: p.write_text("hello, not an image")),
    Case("empty.png", "empty file", lambda p: p.write_bytes(b"")),
    Case("cut.png", "truncated image", _truncated),
    Case("big.jpg", "file too large", _big),
]  # fmt: skip


def make_corpus(folder: Path, good: list[Image.Image] = ()) -> dict[str, str]:
    """Write every case (plus ``good`` images as ``good_<i>.png``) into ``folder``.

    Returns file name -> expected skip kind ("" for the good images).
    """
    folder.mkdir(parents=True, exist_ok=True)
    expected = {}
    for case in CASES:
        case.make(folder / case.name)
        expected[case.name] = case.kind
    for i, img in enumerate(good):
        img.save(folder / f"good_{i}.png")
        expected[f"good_{i}.png"] = ""
    return expected
