"""ImageSet: an ordered, labelled collection of images from files or PIL objects (no torch).

It only describes where the images are; pixels are decoded one at a time by :meth:`ImageSet.load`,
so a set of a million files costs a list of paths, not a million decoded images.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from clipviz.engine._decode import ImageSkipped, check_shape, decode_bytes, read_bytes, to_rgb

__all__ = ["ImageSet", "ImageSkipped", "IMAGE_EXTENSIONS", "display_name"]

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".jfif"}
)

_Source = str | Image.Image


class ImageSet:
    """An ordered collection of images, each with a unique id, an optional label and a path.

    Build one with :meth:`from_folder`, :meth:`from_paths`, :meth:`from_pil` or
    :meth:`from_dataframe`; decode item ``i`` with :meth:`load`.

    Attributes
    ----------
    ids : list of str
        Unique, stable names (relative paths for files, ``"0".."N-1"`` for PIL images by default).
    labels : list of str or None
        True labels, or None when the set is unlabelled (an item may be None in a labelled set).
    paths : list of str or None
        Source file of each item (None for in-memory PIL images).
    metadata : list of dict or None
        Optional extra columns per item (e.g. source and licence of bundled photos).
    """

    def __init__(
        self,
        sources: Sequence[_Source],
        ids: Sequence[str],
        labels: Sequence[str | None] | None = None,
        *,
        metadata: Sequence[dict[str, Any]] | None = None,
    ):
        if len(ids) != len(sources):
            raise ValueError(f"got {len(ids)} ids for {len(sources)} images; give one id per image")
        ids = [display_name(str(i)) for i in ids]
        _check_unique(ids)
        if labels is not None and len(labels) != len(sources):
            raise ValueError(
                f"got {len(labels)} labels for {len(sources)} images; give one label per image"
            )
        self._sources = list(sources)
        self.ids: list[str] = ids
        self.labels: list[str] | None = None if labels is None else [_label(x) for x in labels]
        self.paths: list[str | None] = [s if isinstance(s, str) else None for s in self._sources]
        if metadata is not None and len(metadata) != len(sources):
            raise ValueError(f"got {len(metadata)} metadata rows for {len(sources)} images")
        self.metadata: list[dict[str, Any]] | None = (
            None if metadata is None else [dict(m) for m in metadata]
        )

    # ---- constructors -------------------------------------------------------------------
    @classmethod
    def from_folder(
        cls, path: str | os.PathLike, *, extensions: Iterable[str] = IMAGE_EXTENSIONS
    ) -> ImageSet:
        """All image files under ``path``, recursively, in sorted order.

        Labels come from the first sub-folder name (``path/cat/x.jpg`` -> ``"cat"``; files
        directly in ``path`` get None). Ids are paths relative to ``path``. Hidden files and
        folders (names starting with ``.``) are ignored.
        """
        root = Path(path).expanduser()
        if not root.exists():
            raise FileNotFoundError(f"ImageSet.from_folder: folder not found: {str(root)!r}")
        if not root.is_dir():
            raise NotADirectoryError(
                f"ImageSet.from_folder: {str(root)!r} is a file; use ImageSet.from_paths([...])"
            )
        exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
        # relative paths as tuples of parts: sorted as pathlib sorts them, at a fraction of the
        # cost of 50k Path objects (most of the time of opening a large folder)
        rels = sorted(_walk(root, exts), key=_sort_key)
        if not rels:
            raise ValueError(
                f"ImageSet.from_folder: no image files under {str(root)!r} "
                f"(looked for {', '.join(sorted(exts))})"
            )
        labels = [r[0] if len(r) > 1 else None for r in rels]
        has_labels = any(lab is not None for lab in labels)
        base = "" if str(root) == os.curdir else str(root)  # str(Path(".") / "a") is "a"
        base = base if not base or base.endswith(os.sep) else base + os.sep
        return cls(
            [base + os.sep.join(r) for r in rels],
            _dedupe([display_name("/".join(r)) for r in rels]),
            labels if has_labels else None,
        )

    @classmethod
    def from_paths(
        cls, paths: Iterable[str | os.PathLike], labels: Sequence[Any] | None = None
    ) -> ImageSet:
        """Image files at ``paths`` (kept in order; ids are paths relative to their common folder).

        Files are not opened here: a missing or broken file is reported when it is loaded or
        embedded (``ImageEmbeddings.skipped``).
        """
        if isinstance(paths, (str, os.PathLike)):
            raise TypeError(
                "ImageSet.from_paths expects a list of paths; for one folder use from_folder"
            )
        strs = [os.fspath(p) for p in paths]
        return cls(strs, _relative_ids(strs), labels)

    @classmethod
    def from_pil(
        cls,
        images: Iterable[Image.Image],
        labels: Sequence[Any] | None = None,
        ids: Sequence[Any] | None = None,
    ) -> ImageSet:
        """In-memory PIL images; ids default to ``"0".."N-1"``."""
        imgs = list(images)
        for i, img in enumerate(imgs):
            if not isinstance(img, Image.Image):
                raise TypeError(
                    f"ImageSet.from_pil: item {i} is a {type(img).__name__}, not a PIL.Image.Image; "
                    "use from_paths for files"
                )
        ids = [str(i) for i in range(len(imgs))] if ids is None else [str(i) for i in ids]
        return cls(imgs, ids, labels)

    @classmethod
    def from_dataframe(
        cls, df: Any, path: str = "path", label: str | None = "label", *, id: str | None = None
    ) -> ImageSet:
        """Images whose file paths are in column ``path`` of a pandas DataFrame.

        ``label`` names the label column (None for no labels; the default ``"label"`` is used
        only if that column exists). ``id`` optionally names a column of unique ids.
        """
        columns = [str(c) for c in df.columns]
        missing = [c for c in (path, id) if c is not None and c not in df.columns]
        if label is not None and label != "label" and label not in df.columns:
            missing.append(label)
        if missing:
            raise KeyError(
                f"ImageSet.from_dataframe: column(s) {missing} not in the DataFrame; "
                f"its columns are {columns}"
            )
        use_label = label is not None and label in df.columns
        labels = df[label].tolist() if use_label else None
        cells = zip(df.index, df[path].tolist(), strict=True)
        paths = [_table_path(value, row, path) for row, value in cells]
        ids = [str(x) for x in df[id].tolist()] if id is not None else _relative_ids(paths)
        return cls(paths, ids, labels)

    # ---- access -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._sources)

    def __repr__(self) -> str:
        kinds = {"file" if p is not None else "PIL" for p in self.paths}
        n_labels = len({lab for lab in self.labels or [] if lab is not None})
        label_part = f", {n_labels} labels" if self.labels is not None else ", unlabelled"
        return f"<ImageSet: {len(self)} images ({'/'.join(sorted(kinds)) or 'empty'}){label_part}>"

    def load(self, i: int) -> Image.Image:
        """Decode item ``i`` to an upright 8-bit RGB image.

        Raises
        ------
        ImageSkipped
            If the item is missing, not an image, truncated, too large, or cannot be converted.
        """
        return self.load_with_hash(i)[1]

    def content_hash(self, i: int) -> str:
        """sha256 of the file bytes (files) or of mode, size and raw pixels (PIL images)."""
        return hash_raw(self.read_raw(i))

    def load_with_hash(self, i: int) -> tuple[str, Image.Image]:
        """Decode item ``i`` and hash its content, reading a file only once."""
        raw = self.read_raw(i)
        return hash_raw(raw), self.decode_raw(i, raw)

    def read_raw(self, i: int) -> bytes | Image.Image:
        """The encoded file bytes of item ``i``, or its PIL image (not yet converted)."""
        src = self._sources[i]
        return read_bytes(src) if isinstance(src, str) else src

    def decode_raw(
        self, i: int, raw: bytes | Image.Image, min_side: int | None = None
    ) -> Image.Image:
        """Upright RGB image from what :meth:`read_raw` returned (raises ImageSkipped).

        ``min_side``: the image will be scaled so its shorter side is this long; a JPEG may be
        decoded at a reduced scale that still keeps at least that many pixels.
        """
        if isinstance(raw, bytes):
            return decode_bytes(raw, display_name(self._sources[i]), min_side)
        name = f"image {self.ids[i]!r}"
        check_shape(raw, name)
        return to_rgb(raw, name)

    def subset(self, indices: Iterable[int]) -> ImageSet:
        """A new ImageSet with the items at ``indices`` (ids and labels kept)."""
        idx = [int(i) for i in indices]
        labels = None if self.labels is None else [self.labels[i] for i in idx]
        meta = None if self.metadata is None else [self.metadata[i] for i in idx]
        sources = [self._sources[i] for i in idx]
        return ImageSet(sources, [self.ids[i] for i in idx], labels, metadata=meta)

    def to_pandas(self) -> Any:
        """One row per image: ``id``, ``label``, ``path`` and any metadata columns."""
        import pandas as pd

        df = pd.DataFrame(
            {"id": self.ids, "label": self.labels or [None] * len(self), "path": self.paths}
        )
        if self.metadata is not None:
            extra = pd.DataFrame(self.metadata).drop(
                columns=["id", "label", "path"], errors="ignore"
            )
            df = pd.concat([df, extra], axis=1)
        return df


def hash_raw(raw: bytes | Image.Image) -> str:
    """sha256 hex digest of file bytes, or of a PIL image's mode, size and pixels."""
    if isinstance(raw, bytes):
        return hashlib.sha256(raw).hexdigest()
    h = hashlib.sha256(f"pil:{raw.mode}:{raw.size}:".encode())
    h.update(raw.tobytes())
    return h.hexdigest()


def _walk(root: Path, exts: set[str]) -> list[tuple[str, ...]]:
    """Image files under ``root`` as tuples of path parts relative to it (hidden ones skipped)."""
    out: list[tuple[str, ...]] = []
    top = str(root)
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel = os.path.relpath(dirpath, top)
        prefix = () if rel == os.curdir else tuple(rel.split(os.sep))
        for name in filenames:
            stem, dot, ext = name.rpartition(".")  # as os.path.splitext for non-hidden names
            if dot and stem and not name.startswith(".") and f".{ext.lower()}" in exts:
                out.append((*prefix, name))
    return out


def _sort_key(parts: tuple[str, ...]) -> tuple[str, ...]:
    """pathlib's order: by parts, case-insensitive on Windows (as ``PureWindowsPath`` compares)."""
    return tuple(p.lower() for p in parts) if os.name == "nt" else parts


def _relative_ids(paths: list[str]) -> list[str]:
    """Paths relative to their common folder, so ids stay short but unique."""
    if not paths:
        return []
    try:
        common = os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in paths])
        ids = [Path(os.path.relpath(os.path.abspath(p), common)).as_posix() for p in paths]
    except ValueError:  # different drives on Windows
        ids = list(paths)
    return _dedupe([display_name(i) for i in ids])


def display_name(text: str) -> str:
    """``text`` as valid UTF-8 for display and tables: a file name with bytes that are not
    UTF-8 (kept by Python as lone surrogates) gets U+FFFD in their place. The file's real path
    is kept unchanged for reading it."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raw = text.encode("utf-8", "replace")
        return raw.decode("utf-8", "replace")


def _table_path(value: Any, row: Any, column: str) -> str:
    """One path cell of a DataFrame, or an error naming its row."""
    if value is None or (isinstance(value, float) and value != value):
        raise ValueError(
            f"ImageSet.from_dataframe: row {row!r} has no path in column {column!r} (got "
            f"{value!r}); drop or fill that row"
        )
    if not isinstance(value, (str, bytes, os.PathLike)):
        raise TypeError(
            f"ImageSet.from_dataframe: row {row!r} of column {column!r} is a "
            f"{type(value).__name__} ({value!r}), not a file path"
        )
    text = os.fsdecode(value)
    if not text.strip():
        raise ValueError(
            f"ImageSet.from_dataframe: row {row!r} has an empty path in column {column!r}"
        )
    return text


def _dedupe(ids: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for i in ids:
        n = seen.get(i, 0)
        seen[i] = n + 1
        out.append(i if n == 0 else f"{i}#{n}")
    return out


def _check_unique(ids: Sequence[Any]) -> None:
    seen: set[str] = set()
    dupes = sorted({str(i) for i in ids if str(i) in seen or seen.add(str(i))})
    if dupes:
        raise ValueError(f"image ids must be unique; duplicated: {dupes[:10]}")


def _label(x: Any) -> str | None:
    if x is None or (isinstance(x, float) and x != x):  # None or NaN: no label
        return None
    return display_name(str(x))
