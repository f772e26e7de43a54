"""On-disk embedding cache: (model key, image content hash) -> fp16 vector, and (model key,
prompt text hash) -> float32 vector.

Layout: ``<root>/embeddings/v2/<model key>/<sha256 of the shard file>.npy``, each shard an
immutable structured array of N records ``(key: 32 uint8 sha256 digest, vector: D float16)``
(one plain ``.npy``: no zip, no pickles). The file name is the checksum of the file, so a
shard whose payload was damaged after it was written (a flipped bit, swapped or zeroed rows)
is recognised on load, set aside with a warning and its images embedded again. The header is
checked against the file size before any payload is read, so a header that claims 10**10
rows costs nothing. Rows that are not finite unit vectors are never served.

A batch is written as one shard to a uniquely named temporary file and renamed into place
(``os.replace`` is atomic), so a reader never sees half a shard and a run killed at any moment
keeps every batch it finished. Many small shards are merged into one now and then; only
shards that were read completely are removed afterwards. A cache folder that cannot be
written (read-only, disk full) is read as it is, with one warning, and the run goes on.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clipviz._atomic import write_atomic
from clipviz._cache_dir import CACHE_ENV, default_cache_dir, resolve_cache_dir

__all__ = ["EmbeddingCache", "default_cache_dir", "resolve_cache_dir", "CACHE_ENV"]

_LAYOUT = "v2"  # v1 shards (uuid names, no checksum) are not read
_SUFFIX = ".npy"
_COMPACT_OVER = 64  # shards per model before they are merged
_STALE_TMP_S = 3600.0  # temp files older than this are leftovers of killed runs
_UNIT_TOL = 1e-2  # fp16 rows of unit vectors have norms within ~1e-3 of 1
_CHUNK_ROWS = 65536  # rows checked at a time (bounds the float32 temporary)
_KINDS = {"images": (f"embeddings/{_LAYOUT}", np.float16), "texts": ("texts/v1", np.float32)}


class _Corrupt(Exception):
    """The shard's bytes are not what was written: set it aside."""


class _Foreign(Exception):
    """A well-formed shard of another record type (another version): leave it alone."""


@dataclass
class _Shard:
    path: Path
    keys: np.ndarray  # (N, 32) uint8
    vectors: np.ndarray  # (N, D) float16


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
    kind : {"images", "texts"}
        Image vectors (keyed by content digest, fp16, under ``embeddings/v2``) or prompt text
        vectors (keyed by the sha256 of the text, float32 so that a reopened workbench scores
        exactly as the session that encoded them, under ``texts/v1``).
    """

    def __init__(self, root: str | os.PathLike, model_key: str, dim: int, *, kind: str = "images"):
        if not model_key or not all(c in "0123456789abcdef" for c in model_key):
            raise ValueError(f"model_key must be a lowercase hex digest, got {model_key!r}")
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {sorted(_KINDS)}, got {kind!r}")
        folder, dtype = _KINDS[kind]
        self.dir = Path(root) / folder / model_key
        self.dim = int(dim)
        self._dtype = np.dtype([("key", np.uint8, (32,)), ("vector", dtype, (self.dim,))])
        #: False once a write failed (read-only folder, disk full): later writes are skipped.
        self.writable = True

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.dir)!r})"

    # ---- reading ------------------------------------------------------------------------
    def load(self) -> dict[bytes, np.ndarray]:
        """All cached vectors of this model: sha256 digest (32 bytes) -> (D,) float16 row.

        Every row is a finite vector of norm ~1; damaged shards are skipped with a warning.
        """
        paths = self._shards()
        index: dict[bytes, np.ndarray] = {}
        read: list[Path] = []
        for path in paths:
            shard = self._read_shard(path)
            if shard is None:
                continue
            read.append(path)
            for k, v in zip(shard.keys, shard.vectors, strict=True):
                index[k.tobytes()] = v
        if len(read) > _COMPACT_OVER and self.writable:
            self._compact(read, index)
        return index

    def _shards(self) -> list[Path]:
        if not self.dir.is_dir():
            return []
        return sorted(self.dir.glob(f"*{_SUFFIX}"))

    def _read_shard(self, path: Path) -> _Shard | None:
        try:
            data, header_end, count = self._verified_bytes(path)
            keys, vectors = self._records(data, header_end, count, path)
        except FileNotFoundError:
            return None  # merged away by another process since we listed the folder
        except _Corrupt as err:
            self._set_aside(path, str(err))
            return None
        except _Foreign as err:
            warnings.warn(f"ignoring cache shard {path}: {err}", stacklevel=3)
            return None
        except OSError as err:  # e.g. EIO, permissions: maybe transient, so keep the file
            warnings.warn(f"ignoring unreadable cache shard {path}: {err}", stacklevel=3)
            return None
        return _Shard(path, keys, vectors)

    def _verified_bytes(self, path: Path) -> tuple[bytes, int, int]:
        """The whole file, after its header was checked against its size and its checksum."""
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            header_end, count = self._check_header(f, size)
            want = header_end + count * self._dtype.itemsize
            if want != size:
                raise _Corrupt(f"header declares {count} records ({want} bytes), file has {size}")
            f.seek(0)
            data = f.read(size + 1)
        if len(data) != size:
            raise _Corrupt(f"file changed size while reading ({len(data)} of {size} bytes)")
        if hashlib.sha256(data).hexdigest() != path.stem:
            raise _Corrupt("checksum mismatch (the file was modified after it was written)")
        return data, header_end, count

    def _check_header(self, f: io.BufferedReader, size: int) -> tuple[int, int]:
        fmt = np.lib.format
        try:
            version = fmt.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(f, max_header_size=10_000)
            else:
                shape, fortran, dtype = fmt.read_array_header_2_0(f, max_header_size=10_000)
        except (ValueError, EOFError, SyntaxError, TypeError) as err:
            raise _Corrupt(f"not a readable .npy header: {err}") from err
        if len(shape) != 1 or fortran:
            raise _Corrupt(f"unexpected shape {shape}")
        if dtype != self._dtype:
            raise _Foreign(f"records of type {dtype}, expected {self._dtype}")
        return f.tell(), int(shape[0])

    def _records(
        self, data: bytes, header_end: int, count: int, path: Path
    ) -> tuple[np.ndarray, np.ndarray]:
        records = np.frombuffer(data, self._dtype, count=count, offset=header_end)
        keys, vectors = records["key"], records["vector"]
        good = _unit_rows(vectors)
        if not good.all():
            warnings.warn(
                f"cache shard {path}: dropping {int((~good).sum())} rows that are not finite "
                "unit vectors; those images are embedded again",
                stacklevel=4,
            )
            keys, vectors = keys[good], vectors[good]
        return keys, vectors

    def _set_aside(self, path: Path, why: str) -> None:
        """Rename a damaged shard out of the way (kept for inspection, never read again)."""
        warnings.warn(
            f"cache shard {path} is damaged ({why}); ignoring it, its images are embedded again",
            stacklevel=4,
        )
        try:
            os.replace(path, path.with_name(f".corrupt-{path.name}"))
        except OSError:
            pass  # a read-only cache: it stays, and is checked (and ignored) again next time

    # ---- writing ------------------------------------------------------------------------
    def write(self, digests: list[bytes], vectors: np.ndarray) -> Path | None:
        """Store one batch as a new immutable shard (atomic). Returns its path.

        Returns None (after one warning per cache object) when the folder cannot be written.
        """
        if not digests or not self.writable:
            return None
        vecs = np.asarray(vectors, dtype=self._dtype["vector"].base)
        if vecs.shape != (len(digests), self.dim):
            raise ValueError(
                f"expected vectors of shape {(len(digests), self.dim)}, got {vecs.shape}"
            )
        records = np.empty(len(digests), self._dtype)
        records["key"] = np.frombuffer(b"".join(digests), np.uint8).reshape(len(digests), 32)
        records["vector"] = vecs
        buf = io.BytesIO()
        np.save(buf, records, allow_pickle=False)
        data = buf.getvalue()
        try:
            return self._write_atomic(data)
        except OSError as err:
            self.writable = False
            warnings.warn(
                f"cannot write to the embedding cache {self.dir} ({err}); going on without "
                "saving vectors (use a writable cache folder, or cache=False)",
                stacklevel=3,
            )
            return None

    def _write_atomic(self, data: bytes) -> Path:
        # temp name ".<final>.<uuid>.tmp": the stale-temp sweep's ".*.tmp" still finds it
        return write_atomic(self.dir / f"{hashlib.sha256(data).hexdigest()}{_SUFFIX}", data)

    def _compact(self, read: list[Path], index: dict[bytes, np.ndarray]) -> None:
        """Merge the shards that were read into one: write the merged shard first, then remove
        exactly those shards (a shard that could not be read is never deleted)."""
        if not index:
            return
        merged = self.write(list(index), np.stack(list(index.values())))
        if merged is None:
            return  # not writable: warned in write(), keep every shard
        for path in read:
            if path == merged:
                continue
            try:
                path.unlink()
            except FileNotFoundError:
                pass  # another process compacted at the same time
            except OSError as err:
                warnings.warn(f"cannot remove merged cache shard {path}: {err}", stacklevel=3)
                return
        self._remove_stale_temps()

    def _remove_stale_temps(self) -> None:
        now = time.time()
        for tmp in self.dir.glob(".*.tmp"):
            try:
                if now - tmp.stat().st_mtime > _STALE_TMP_S:
                    tmp.unlink()
            except OSError:
                pass

    def clear(self) -> None:
        """Delete every cached vector of this model."""
        if not self.dir.is_dir():
            return
        for path in [*self._shards(), *self.dir.glob(".*.tmp"), *self.dir.glob(".corrupt-*")]:
            path.unlink(missing_ok=True)


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    """True for rows that are finite with an L2 norm within ``_UNIT_TOL`` of 1."""
    good = np.empty(len(vectors), bool)
    for start in range(0, len(vectors), _CHUNK_ROWS):
        chunk = vectors[start : start + _CHUNK_ROWS].astype(np.float32)
        with np.errstate(invalid="ignore", over="ignore"):
            norms = np.sqrt(np.einsum("ij,ij->i", chunk, chunk))
        good[start : start + _CHUNK_ROWS] = np.abs(norms - 1.0) <= _UNIT_TOL  # NaN -> False
    return good
