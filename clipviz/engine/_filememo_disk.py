"""The file memo on disk, so that a new process (a reopened notebook) trusts a stat as well.

Without it a fresh kernel reads and hashes every file again before it can use one cached
vector: most of the time of reopening a large folder. Git keeps its index for the same
reason. One file per image folder:
``<cache root>/filememo/v1/<sha256 of the folder path>-<sha256 of the file>.npy``, a plain
structured ``.npy`` (no pickles) of ``(name, dev, ino, size, mtime_ns, ctime_ns, digest)``.
The checksum in the name is verified on load; a damaged or foreign file is ignored (its files
are simply hashed again). Entries are only ever used when the file's whole stat, ctime
included, is unchanged, and only non-racy entries are remembered (see ``_filememo``).
"""

from __future__ import annotations

import hashlib
import io
import os
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from clipviz._cache_dir import verified_files
from clipviz.engine import _filememo
from clipviz.engine.store_format import write_atomic

_LAYOUT = "v1"
_MAX_NAME_BYTES = 4096


def memo_dir(root: str | os.PathLike) -> Path:
    return Path(root) / "filememo" / _LAYOUT


def load(root: str | os.PathLike, paths: Iterable[str | None]) -> int:
    """Fill the in-process memo from the saved memos of the folders holding ``paths``.

    Each folder is read at most once per process and root. Returns the entries added.
    """
    base = memo_dir(root)
    if not base.is_dir():
        return 0
    added = 0
    for folder in _folders(paths):
        if (str(base), folder) in _filememo.LOADED:
            continue
        _filememo.LOADED.add((str(base), folder))
        records = _read(base, folder)
        if records is None:
            continue
        prefix = folder if folder.endswith(os.sep) else folder + os.sep  # as os.path.join
        names = [prefix + os.fsdecode(name) for name in records["name"].tolist()]
        stats = [records[f].tolist() for f in ("dev", "ino", "size", "mtime_ns", "ctime_ns")]
        keys = list(zip(names, *stats, strict=True))
        blob = records["digest"].tobytes()
        _filememo.adopt_many(keys, [blob[k : k + 32] for k in range(0, len(blob), 32)])
        added += len(keys)
    return added


def save(root: str | os.PathLike, paths: Iterable[str | None]) -> None:
    """Write the memo of every folder of ``paths`` that gained entries in this process.

    Best effort: a cache folder that cannot be written keeps the old memo (or none).
    """
    if not _filememo.DIRTY:
        return
    folders = set(_folders(paths)) & _filememo.DIRTY
    if not folders:
        return
    by_folder: dict[str, dict[str, _filememo.StatKey]] = defaultdict(dict)
    digests: dict[_filememo.StatKey, bytes] = {}
    for key, digest in _filememo.items():
        folder, name = os.path.split(key[0])
        if folder in folders:
            newest = by_folder[folder].get(name)
            if newest is None or key[-1] >= newest[-1]:  # one entry per file: its latest stat
                by_folder[folder][name] = key
                digests[key] = digest
    base = memo_dir(root)
    for folder, keys in by_folder.items():
        try:
            _write(base, folder, [(name, key, digests[key]) for name, key in keys.items()])
        except OSError:
            return  # read-only or full cache: the embedding cache already warned
        _filememo.DIRTY.discard(folder)


def _folders(paths: Iterable[str | None]) -> list[str]:
    return _filememo.folders_of(list(paths))


def _tag(folder: str) -> str:
    return hashlib.sha256(os.fsencode(folder)).hexdigest()


def _dtype(name_bytes: int) -> np.dtype:
    return np.dtype(
        [("name", f"S{name_bytes}"), ("dev", "<i8"), ("ino", "<i8"), ("size", "<i8"),
         ("mtime_ns", "<i8"), ("ctime_ns", "<i8"), ("digest", np.uint8, (32,))]
    )  # fmt: skip


def _read(base: Path, folder: str) -> np.ndarray | None:
    """The saved records of one folder, or None (none saved, or damaged: ignored)."""
    for data in verified_files(base, _tag(folder), ".npy"):
        try:
            records = np.load(io.BytesIO(data), allow_pickle=False)
        except ValueError:
            continue
        if records.dtype.names != _dtype(1).names:
            continue
        return records
    return None


def _write(base: Path, folder: str, rows: list[tuple[str, _filememo.StatKey, bytes]]) -> None:
    names = [os.fsencode(name) for name, _, _ in rows]
    keep = [i for i, n in enumerate(names) if len(n) <= _MAX_NAME_BYTES and b"\0" not in n]
    records = np.zeros(len(keep), _dtype(max((len(names[i]) for i in keep), default=1)))
    for j, i in enumerate(keep):
        _, key, digest = rows[i]
        records[j] = (names[i], *key[1:], np.frombuffer(digest, np.uint8))
    buf = io.BytesIO()
    np.save(buf, records, allow_pickle=False)
    data = buf.getvalue()
    tag = _tag(folder)
    final = base / f"{tag}-{hashlib.sha256(data).hexdigest()}.npy"
    write_atomic(final, lambda f: f.write(data))  # a reader sees the old memo or the new one
    for old in base.glob(f"{tag}-*.npy"):
        if old != final:
            old.unlink(missing_ok=True)
