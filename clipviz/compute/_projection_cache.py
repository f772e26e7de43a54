"""On-disk cache of 2-D projections, keyed by the input vectors and the parameters.

The key is a sha256 over a typed JSON preamble (format, clipviz version, method, parameters)
followed by the shape, dtype and bytes of every input array, so any change to the vectors or
the settings is a miss. Files are ``<key>.npz`` written to a temp file and renamed (atomic:
two processes never see a half-written file), and read with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

CACHE_FORMAT = 1


def cache_key(preamble: dict[str, Any], arrays: list[np.ndarray]) -> str:
    """sha256 hex digest of a JSON preamble plus the arrays' shapes, dtypes and bytes."""
    h = hashlib.sha256()
    h.update(json.dumps({"format": CACHE_FORMAT, **preamble}, sort_keys=True).encode())
    for arr in arrays:
        arr = np.ascontiguousarray(arr)
        h.update(f"\0{arr.dtype.str}{arr.shape}\0".encode())
        h.update(arr.data)
    return h.hexdigest()


def resolve_dir(cache: bool | str | os.PathLike[str], cache_dir: Any = None) -> Path | None:
    """Folder for projection files: None when caching is off.

    ``cache=False`` -> None; ``cache=True`` -> ``cache_dir`` or the platform user cache
    ``clipviz/projections``; ``cache=<folder>`` -> that folder.
    """
    if cache is False or cache is None:
        return None
    if cache is True:
        if cache_dir is not None:
            return Path(cache_dir)
        import platformdirs

        return Path(platformdirs.user_cache_dir("clipviz")) / "projections"
    if isinstance(cache, (str, os.PathLike)):
        return Path(cache)
    raise TypeError(
        f"cache must be True, False or a folder path, got {type(cache).__name__} ({cache!r})."
    )


def load(folder: Path, key: str) -> dict[str, np.ndarray] | None:
    """The arrays stored under ``key``, or None on a miss (or an unreadable file)."""
    path = folder / f"{key}.npz"
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        warnings.warn(
            f"Ignoring unreadable projection cache file {path} ({err}); recomputing.",
            stacklevel=3,
        )
        return None


def save(folder: Path, key: str, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` atomically as ``<key>.npz``; a failure to write only warns."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **arrays)
            os.replace(tmp, folder / f"{key}.npz")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)  # also on Ctrl-C: leave no temp file behind
            raise
    except OSError as err:
        warnings.warn(f"Could not write the projection cache in {folder}: {err}", stacklevel=3)
