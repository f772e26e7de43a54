"""On-disk embedding cache: (model key, image content hash) -> fp16 vector.

Layout: ``<root>/embeddings/v1/<model key>/<uuid>.npy``, each shard an immutable structured
array of N records ``(key: 32 uint8 sha256 digest, vector: D float16)`` (one plain ``.npy``:
no zip, no pickles). A batch is written as
one shard to a uniquely named temporary file and renamed into place (``os.replace`` is
atomic), so a reader never sees half a shard, two processes never write the same file, and a
run killed at any moment keeps every batch it finished. Shards load with
``allow_pickle=False``. Many small shards are merged into one now and then.
"""

from __future__ import annotations

import os
import time
import uuid
import warnings
from pathlib import Path

import numpy as np

__all__ = ["EmbeddingCache", "default_cache_dir", "resolve_cache_dir"]

_LAYOUT = "v1"
_SUFFIX = ".npy"
_COMPACT_OVER = 64  # shards per model before they are merged
_STALE_TMP_S = 3600.0  # temp files older than this are leftovers of killed runs


def default_cache_dir() -> Path:
    """The platform's user cache folder for clipviz (e.g. ``~/.cache/clipviz`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("clipviz", appauthor=False))


def resolve_cache_dir(cache: bool | str | os.PathLike | None) -> Path | None:
    """``True`` -> the platform cache dir, a path -> that folder, ``False``/``None`` -> no cache."""
    if cache is None or cache is False:
        return None
    if cache is True:
        return default_cache_dir()
    if isinstance(cache, (str, os.PathLike)):
        return Path(cache).expanduser()
    raise TypeError(f"cache must be True, False or a folder path, got {cache!r}")


class EmbeddingCache:
    """The cached vectors of one model (one vector space) under a cache root folder.

    Parameters
    ----------
    root : path
        Cache root folder (created on first write).
    model_key : str
        :attr:`ClipModel.key`; vectors of different models never mix.
    dim : int
        Embedding dimension; shards of another width are ignored.
    """

    def __init__(self, root: str | os.PathLike, model_key: str, dim: int):
        if not model_key or not all(c in "0123456789abcdef" for c in model_key):
            raise ValueError(f"model_key must be a lowercase hex digest, got {model_key!r}")
        self.dir = Path(root) / "embeddings" / _LAYOUT / model_key
        self.dim = int(dim)
        self._dtype = np.dtype([("key", np.uint8, (32,)), ("vector", np.float16, (self.dim,))])

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.dir)!r})"

    # ---- reading ------------------------------------------------------------------------
    def load(self) -> dict[bytes, np.ndarray]:
        """All cached vectors of this model: sha256 digest (32 bytes) -> (D,) float16 row."""
        shards = self._shards()
        index: dict[bytes, np.ndarray] = {}
        for path in shards:
            loaded = self._read_shard(path)
            if loaded is None:
                continue
            keys, vectors = loaded
            for k, v in zip(keys, vectors, strict=True):
                index[k.tobytes()] = v
        if len(shards) > _COMPACT_OVER:
            self._compact(shards, index)
        return index

    def _shards(self) -> list[Path]:
        if not self.dir.is_dir():
            return []
        return sorted(self.dir.glob(f"*{_SUFFIX}"))

    def _read_shard(self, path: Path) -> tuple[np.ndarray, np.ndarray] | None:
        try:
            records = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            return None  # merged away by another process since we listed the folder
        except (OSError, ValueError, EOFError) as err:
            warnings.warn(f"ignoring unreadable cache shard {path}: {err}", stacklevel=3)
            return None
        if records.dtype != self._dtype or records.ndim != 1:
            warnings.warn(f"ignoring cache shard {path} with unexpected dtype", stacklevel=3)
            return None
        return records["key"], records["vector"]

    # ---- writing ------------------------------------------------------------------------
    def write(self, digests: list[bytes], vectors: np.ndarray) -> Path | None:
        """Store one batch as a new immutable shard (atomic). Returns its path."""
        if not digests:
            return None
        vecs = np.asarray(vectors, dtype=np.float16)
        if vecs.shape != (len(digests), self.dim):
            raise ValueError(
                f"expected vectors of shape {(len(digests), self.dim)}, got {vecs.shape}"
            )
        records = np.empty(len(digests), self._dtype)
        records["key"] = np.frombuffer(b"".join(digests), np.uint8).reshape(len(digests), 32)
        records["vector"] = vecs
        self.dir.mkdir(parents=True, exist_ok=True)
        final = self.dir / f"{uuid.uuid4().hex}{_SUFFIX}"
        tmp = self.dir / f".{final.stem}.{os.getpid()}.tmp"
        try:
            with open(tmp, "wb") as f:
                np.save(f, records, allow_pickle=False)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                tmp.unlink()
        return final

    def _compact(self, shards: list[Path], index: dict[bytes, np.ndarray]) -> None:
        """Merge many shards into one: write the merged shard first, then remove the old ones."""
        if not index:
            return
        self.write(list(index), np.stack(list(index.values())))
        for path in shards:
            try:
                path.unlink()
            except FileNotFoundError:
                pass  # another process compacted at the same time
        self._remove_stale_temps()

    def _remove_stale_temps(self) -> None:
        now = time.time()
        for tmp in self.dir.glob(".*.tmp"):
            try:
                if now - tmp.stat().st_mtime > _STALE_TMP_S:
                    tmp.unlink()
            except FileNotFoundError:
                pass

    def clear(self) -> None:
        """Delete every cached vector of this model."""
        for path in [*self._shards(), *self.dir.glob(".*.tmp")] if self.dir.is_dir() else []:
            path.unlink(missing_ok=True)
