"""Where clipviz keeps its disk caches (embeddings, thumbnails, model manifests, text vectors).

A module of its own below every layer: ``models`` (model manifests) and ``engine`` (vectors,
thumbnails) both need the folder, and neither may import the other's layer for it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["CACHE_ENV", "default_cache_dir", "resolve_cache_dir", "verified_files"]

#: Environment variable naming the default cache folder (used when ``cache=True``).
CACHE_ENV = "CLIPVIZ_CACHE_DIR"


def default_cache_dir() -> Path:
    """The default cache folder: ``$CLIPVIZ_CACHE_DIR`` if set, else the platform's user cache
    folder for clipviz (e.g. ``~/.cache/clipviz`` on Linux)."""
    env = os.environ.get(CACHE_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("clipviz", appauthor=False))


def resolve_cache_dir(cache: bool | str | os.PathLike | None) -> Path | None:
    """``True`` -> :func:`default_cache_dir`, a path -> that folder, ``False``/``None`` -> none."""
    if cache is None or cache is False:
        return None
    if cache is True:
        return default_cache_dir()
    if isinstance(cache, (str, os.PathLike)):
        return Path(cache).expanduser()
    raise TypeError(f"cache must be True, False or a folder path, got {cache!r}")


def verified_files(base: Path, tag: str, suffix: str) -> Iterator[bytes]:
    """The contents of ``base/<tag>-<sha256 of the file><suffix>`` files whose name matches
    their bytes, newest first; a file damaged after it was written, or unreadable, is skipped."""
    try:
        paths = sorted(base.glob(f"{tag}-*{suffix}"), key=_mtime, reverse=True)
    except OSError:
        return
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if path.name == f"{tag}-{hashlib.sha256(data).hexdigest()}{suffix}":
            yield data


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
