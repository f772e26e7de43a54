"""Atomic file writes, shared by every layer that writes files (caches, the store, exports).

A reader (another process, a crash, a Ctrl-C) sees either the old file or the whole new one:
the data goes to a uniquely named temporary file in the same folder (so two writers never
share it), is flushed to disk, and is renamed over the target (``os.replace`` is atomic on one
file system). The new file gets the permissions a plain ``open`` gives (the umask), not
``mkstemp``'s owner-only 0600: an exported page or Parquet file is meant to be shared.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["write_atomic"]


def write_atomic(
    path: str | os.PathLike[str], data: bytes | str | Callable[[BinaryIO], object]
) -> Path:
    """Write ``data`` to ``path`` atomically and return the path.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; its folder is created if missing.
    data : bytes, str or callable
        The content (a ``str`` is written as UTF-8), or a function called with the open binary
        temporary file that writes it (e.g. ``lambda f: table.to_parquet(f)``).

    Raises
    ------
    OSError
        The folder or file cannot be written; nothing is left behind and an existing file at
        ``path`` is unchanged.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "xb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
