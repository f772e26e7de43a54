"""The in-process file memo: content digests of files already hashed, keyed by their stat.

The key is what ``os.stat`` says: path, device, inode, size, mtime and ctime. Like git's
index, ctime is part of it: rewriting a file in place and restoring its mtime (``cp -p``,
``rsync -t``) still changes the ctime. Only files whose mtime and ctime are a few seconds old
are remembered, so an edit within the same clock tick cannot hide behind an unchanged stat.
"""

from __future__ import annotations

import os
import time

StatKey = tuple[str, int, int, int, int, int]

_DIGESTS: dict[StatKey, bytes] = {}
_RACY_S = 2.0
_MAX_DIGESTS = 1_000_000


def stat_key(path: str | None) -> StatKey | None:
    """The memo key of a file, or None (no path, or stat failed: the reader reports it)."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = (os.path.abspath(path), st.st_dev, st.st_ino, st.st_size)
    return (*key, st.st_mtime_ns, st.st_ctime_ns)


def recall(path: str | None) -> bytes | None:
    """The digest remembered for this file as it is now, if any."""
    key = stat_key(path)
    return None if key is None else _DIGESTS.get(key)


def remember(key: StatKey, digest: bytes) -> None:
    """Remember a digest read under ``key`` (taken before the read), unless the file is new."""
    if time.time() - max(key[-2:]) / 1e9 <= _RACY_S:
        return
    if len(_DIGESTS) >= _MAX_DIGESTS:
        _DIGESTS.clear()
    _DIGESTS[key] = digest


def clear() -> None:
    """Forget everything (a new process starts like this)."""
    _DIGESTS.clear()
