"""The embedding store on disk: Parquet shards, a manifest, a skipped table, one vectors file.

Layout of a store folder ``OUT``::

    manifest.json               model key/name, dim, count, clipviz version, precision, plan
    shards/part-00000.parquet   id, path (relative), label, content_hash, vector (fixed_size_list)
    skipped/part-00000.parquet  path, reason (files of that shard that could not be embedded)
    vectors.npy                 every vector in shard order, written when the store is complete

The Parquet shards are the open format (pyarrow, DuckDB, pandas, LanceDB read them). Parquet
pages must be decoded, so reading 1M x 512 fp16 vectors from them takes seconds and twice the
memory; ``vectors.npy`` is the same vectors once more, contiguous, so ``open_store`` memory-maps
it instead (zero copies; pages load on first touch). It is derived data: delete it and
``open_store`` writes it again from the shards.

Every file is written to a temporary name and renamed into place, so a reader (or a rerun
after a kill) sees a shard either whole or not at all. A shard is the rows
``[k * shard_size, (k + 1) * shard_size)`` of the sorted file list; its schema metadata holds a
digest of exactly those ids, so a rerun keeps a shard only if it still describes the same files.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clipviz._atomic import write_atomic

__all__ = [
    "Manifest",
    "ShardRows",
    "StoreLayout",
    "require",
    "shard_digest",
    "unit_rows",
    "write_atomic",
]

FORMAT = "clipviz-store"
FORMAT_VERSION = 1
VECTOR_DTYPES = ("float16", "float32")
_INSTALL = 'pip install "clipviz[distributed]"'


def require(module: str, what: str) -> Any:
    """Import an optional dependency of the distributed extra, or say how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"{what} needs {module.split('.')[0]}: {_INSTALL}") from err


@dataclass
class Manifest:
    """What a store holds; ``complete`` turns True when every shard is written."""

    model_key: str
    model_name: str
    logit_scale: float
    dim: int
    precision: str
    vector_dtype: str
    shard_size: int
    num_shards: int
    root: str
    planned: int
    count: int = 0
    skipped: int = 0
    complete: bool = False
    fingerprint: str = ""
    clipviz_version: str = ""
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def read(cls, path: Path) -> Manifest:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise ValueError(f"cannot read the store manifest {str(path)!r}: {err}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"{str(path)!r} is not a clipviz store manifest")
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class ShardRows:
    """The embedded and skipped rows of one shard, ready to be written."""

    ids: list[str]
    labels: list[str | None]
    hashes: list[str]
    vectors: np.ndarray  # (n, D)
    skipped: list[tuple[str, str]]  # (relative path, reason)


class StoreLayout:
    """Paths inside a store folder, and reading/writing of its pieces."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser()
        self.manifest = self.root / "manifest.json"
        self.shards = self.root / "shards"
        self.skipped = self.root / "skipped"
        self.vectors = self.root / "vectors.npy"
        self.index = self.root / "index"

    def shard_path(self, k: int) -> Path:
        return self.shards / f"part-{k:05d}.parquet"

    def skipped_path(self, k: int) -> Path:
        return self.skipped / f"part-{k:05d}.parquet"

    def shard_files(self) -> list[Path]:
        return sorted(self.shards.glob("part-*.parquet")) if self.shards.is_dir() else []

    # ---- shards -----------------------------------------------------------------------------
    def write_shard(self, k: int, digest: str, model_key: str, rows: ShardRows, dtype: str) -> None:
        """Write shard k: its skipped table first, then the shard itself (the 'done' mark)."""
        pa = require("pyarrow", "the embedding store")
        pq = require("pyarrow.parquet", "the embedding store")
        skipped = pa.table(
            {
                "path": pa.array([p for p, _ in rows.skipped], pa.string()),
                "reason": pa.array([r for _, r in rows.skipped], pa.string()),
            }
        )
        write_atomic(self.skipped_path(k), lambda f: pq.write_table(skipped, f))
        vecs = np.ascontiguousarray(rows.vectors, dtype=dtype)
        dim = vecs.shape[1]
        vector = pa.FixedSizeListArray.from_arrays(pa.array(vecs.reshape(-1)), dim)
        table = pa.table(
            {
                "id": pa.array(rows.ids, pa.string()),
                "path": pa.array(rows.ids, pa.string()),
                "label": pa.array(rows.labels, pa.string()),
                "content_hash": pa.array(rows.hashes, pa.string()),
                "vector": vector,
            }
        )
        meta = {
            "clipviz.shard": str(k),
            "clipviz.plan": digest,
            "clipviz.model_key": model_key,
            "clipviz.skipped": str(len(rows.skipped)),
        }
        table = table.replace_schema_metadata(meta)
        # vectors do not compress; plain pages keep reads fast for every Arrow tool
        write_atomic(
            self.shard_path(k),
            lambda f: pq.write_table(
                table, f, compression={"vector": "none"}, use_dictionary=["label"]
            ),
        )

    def shard_is_valid(self, k: int, digest: str, model_key: str, planned: int) -> bool:
        """Shard k exists, is readable, and holds exactly the planned files for this model."""
        pq = require("pyarrow.parquet", "the embedding store")
        path, skipped = self.shard_path(k), self.skipped_path(k)
        if not (path.is_file() and skipped.is_file()):
            return False
        try:
            meta = pq.read_metadata(path)
            n_skipped = pq.read_metadata(skipped).num_rows
        except (OSError, ValueError):  # truncated or foreign file: embed that shard again
            return False
        kv = {k.decode(): v.decode() for k, v in (meta.metadata or {}).items()}
        return (
            kv.get("clipviz.plan") == digest
            and kv.get("clipviz.model_key") == model_key
            and meta.num_rows + n_skipped == planned
            and kv.get("clipviz.skipped") == str(n_skipped)
        )

    def read_columns(self, columns: Sequence[str]) -> Any:
        """Columns of every shard, concatenated in shard order (a pyarrow Table; ``label``
        stays dictionary-encoded). ParquetFile, not read_table: no dataset set-up per file."""
        pa = require("pyarrow", "open_store")
        pq = require("pyarrow.parquet", "open_store")
        tables = [
            pq.ParquetFile(p, read_dictionary=["label"]).read(columns=list(columns))
            for p in self.shard_files()
        ]
        return pa.concat_tables(tables, promote_options="permissive") if tables else None

    def read_skipped(self) -> list[tuple[str, str]]:
        pq = require("pyarrow.parquet", "open_store")
        out: list[tuple[str, str]] = []
        files = sorted(self.skipped.glob("part-*.parquet")) if self.skipped.is_dir() else []
        for path in files:
            t = pq.ParquetFile(path).read()
            out.extend(zip(t.column("path").to_pylist(), t.column("reason").to_pylist(), strict=True))
        return out

    def iter_shard_vectors(self) -> Iterator[np.ndarray]:
        """Each shard's (n, D) vectors, in shard order (one shard in memory at a time)."""
        pq = require("pyarrow.parquet", "open_store")
        for path in self.shard_files():
            col = pq.read_table(path, columns=["vector"]).column("vector").combine_chunks()
            flat = col.values.to_numpy(zero_copy_only=False)
            yield flat.reshape(len(col), col.type.list_size)

    # ---- the vectors file -------------------------------------------------------------------
    def vectors_fresh(self, fingerprint: str) -> bool:
        """``vectors.npy`` exists, was written from the shards that are there now, and its rows
        were checked (finite, unit length) while it was written."""
        stamp = self.root / ".vectors.fingerprint"
        return (
            self.vectors.is_file()
            and stamp.is_file()
            and stamp.read_text() == _stamp(fingerprint)
        )

    def write_vectors(self, manifest: Manifest) -> None:
        """Stream every shard's vectors into ``vectors.npy`` (bounded memory), atomically,
        then stamp it with the shards' fingerprint. Each shard's rows are checked on the way
        (see :func:`unit_rows`), so ``open_store`` can map the file without reading it."""
        count, dim, dtype = manifest.count, manifest.dim, manifest.vector_dtype
        tmp = self.vectors.with_name(f".vectors.{uuid.uuid4().hex}.tmp.npy")
        try:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=(count, dim))
            pos = 0
            for k, vecs in enumerate(self.iter_shard_vectors()):
                out[pos : pos + len(vecs)] = unit_rows(vecs, f"shard {k} of {str(self.root)!r}")
                pos += len(vecs)
            if pos != count:
                raise ValueError(f"store shards hold {pos} vectors, the manifest says {count}")
            out.flush()
            del out
            os.replace(tmp, self.vectors)
        finally:
            tmp.unlink(missing_ok=True)
        stamp = self.root / ".vectors.fingerprint"
        write_atomic(stamp, lambda f: f.write(_stamp(manifest.fingerprint).encode()))

    def write_manifest(self, manifest: Manifest) -> None:
        text = manifest.to_json()
        write_atomic(self.manifest, lambda f: f.write(text.encode()))


def _stamp(fingerprint: str) -> str:
    # "+unit" marks files whose rows were checked on writing; older files are written again
    return f"{fingerprint}+unit"


def unit_rows(vectors: np.ndarray, where: str) -> np.ndarray:
    """``vectors`` with unit rows (re-normalised if off by more than fp16 rounding);
    NaN, infinite or all-zero rows raise ValueError naming ``where`` and the row."""
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1)
    bad = np.flatnonzero(~np.isfinite(norms) | (norms == 0))
    if len(bad):
        raise ValueError(
            f"{where}: {len(bad)} vector row(s) are NaN, infinite or all zero (first: row "
            f"{int(bad[0])}); delete that shard and run the embed command again"
        )
    if np.abs(norms - 1.0).max(initial=0.0) > 1e-3:  # fp16 round trips stay within ~5e-4
        v = v / norms[:, None]
    return v


def shard_digest(ids: Sequence[str], vector_dtype: str) -> str:
    """Identity of a shard's plan: the exact ids it covers and how vectors are stored."""
    h = hashlib.sha256(vector_dtype.encode() + b"\0")
    for i in ids:
        h.update(i.encode() + b"\0")
    return h.hexdigest()
