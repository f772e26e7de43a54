"""The in-process file memo: content digests of files already hashed, keyed by their stat.

The key is what ``os.stat`` says: path, device, inode, size, mtime and ctime. Like git's
index, ctime is part of it: rewriting a file in place and restoring its mtime (``cp -p``,
``rsync -t``) still changes the ctime. Only files whose mtime and ctime are a few seconds old
are remembered, so an edit within the same clock tick cannot hide behind an unchanged stat.
``_filememo_disk`` saves the memo beside the embedding cache, so a new process starts with it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

StatKey = tuple[str, int, int, int, int, int]

_DIGESTS: dict[StatKey, bytes] = {}
#: folders with entries not yet saved to disk, and (memo folder, image folder) pairs read
DIRTY: set[str] = set()
LOADED: set[tuple[str, str]] = set()
_FOLDERS: dict[str, str] = {}  # absolute folder as written -> normalised
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
    key = (absolute(path), st.st_dev, st.st_ino, st.st_size)
    return (*key, st.st_mtime_ns, st.st_ctime_ns)


def absolute(path: str) -> str:
    """``os.path.abspath``, with absolute folders memoised (a 1M-image set has few folders)."""
    path = str(path)
    head, sep, tail = path.rpartition(os.sep)
    folder = _FOLDERS.get(head) if sep and tail and tail not in (".", "..") else None
    if folder is None:
        folder, tail = _split(path)
        return os.path.join(folder, tail) if tail else folder
    if folder == head:
        return path  # a clean absolute folder: the path is already absolute
    return folder + tail if folder.endswith(os.sep) else folder + os.sep + tail


def folder_of(path: str) -> str:
    """The absolute folder holding ``path`` (the memo is saved per folder)."""
    folder, tail = _split(str(path))
    return folder if tail else os.path.dirname(folder)


def folders_of(paths: Iterable[str | None]) -> list[str]:
    """The distinct values of :func:`folder_of` over ``paths``, in first-seen order; one call
    per distinct folder string, not per path."""
    firsts: dict[tuple[int, str], str] = {}
    for p in paths:
        if p is None:
            continue
        head, sep, tail = p.rpartition(os.sep)
        key = (0, head) if sep and tail and tail not in (".", "..") else (1, p)
        firsts.setdefault(key, p)
    return list(dict.fromkeys(folder_of(p) for p in firsts.values()))


def _split(path: str) -> tuple[str, str]:
    head, sep, tail = path.rpartition(os.sep)
    if not sep or not tail or tail in (".", "..") or not os.path.isabs(head or os.sep):
        return os.path.abspath(path), ""  # relative: the working folder may change
    folder = _FOLDERS.get(head)
    if folder is None:
        folder = _FOLDERS[head] = os.path.abspath(head or os.sep)
    return folder, tail


def recall(path: str | None) -> bytes | None:
    """The digest remembered for this file as it is now, if any."""
    key = stat_key(path)
    return None if key is None else _DIGESTS.get(key)


def remember(key: StatKey, digest: bytes) -> None:
    """Remember a digest read under ``key`` (taken before the read), unless the file is new."""
    if time.time() - max(key[-2:]) / 1e9 <= _RACY_S:
        return
    if _DIGESTS.get(key) == digest:
        return
    adopt(key, digest)
    DIRTY.add(os.path.dirname(key[0]))  # key[0] is absolute


def adopt_many(keys: list[StatKey], digests: list[bytes]) -> None:
    """:func:`adopt` for many entries (a saved memo of one folder)."""
    if len(_DIGESTS) + len(keys) > _MAX_DIGESTS:
        _DIGESTS.clear()
        LOADED.clear()
    _DIGESTS.update(zip(keys, digests, strict=True))


def adopt(key: StatKey, digest: bytes) -> None:
    """Take an entry remembered earlier (by this or another process) as it is."""
    if len(_DIGESTS) >= _MAX_DIGESTS:
        _DIGESTS.clear()
        LOADED.clear()
    _DIGESTS[key] = digest


def items() -> list[tuple[StatKey, bytes]]:
    return list(_DIGESTS.items())


def clear() -> None:
    """Forget everything in this process (a new process starts like this, then reads the
    memo saved on disk)."""
    _DIGESTS.clear()
    DIRTY.clear()
    LOADED.clear()
