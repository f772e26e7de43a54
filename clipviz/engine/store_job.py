"""``embed_to_store``: embed a folder into a store, resumably, with the local or the Ray engine.

The plan is the sorted file list of :meth:`ImageSet.from_folder` (so ids match it), cut into
shards of ``shard_size`` rows. Shards already on disk and valid are kept; the others are
embedded by an engine that yields batches of finished rows in any order. A
:class:`ShardCollector` gathers them by row number (a row delivered twice by a retried task
overwrites itself, so nothing is duplicated) and writes a shard the moment it is whole. When
every shard exists the manifest is marked complete and ``vectors.npy`` is written.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from clipviz.engine.embed import _progress
from clipviz.engine.imageset import ImageSet
from clipviz.engine.store_format import (
    VECTOR_DTYPES,
    Manifest,
    ShardRows,
    StoreLayout,
    require,
    shard_digest,
)
from clipviz.engine.store_rows import ModelSpec, encode_batch, prepare_batch

__all__ = ["StorePlan", "StoreResult", "embed_to_store", "plan_store"]


@dataclass
class StorePlan:
    """The folder's files cut into shards; which of them still need embedding."""

    images: ImageSet
    shard_size: int
    digests: list[str]
    todo: list[int]  # shard numbers to embed

    def rows(self, k: int) -> range:
        return range(k * self.shard_size, min(len(self.images), (k + 1) * self.shard_size))


@dataclass
class StoreResult:
    """What a run did: shards embedded now and kept from before, rows and skips in the store."""

    store: Path
    embedded_shards: int
    kept_shards: int
    count: int
    skipped: int
    manifest: Manifest = field(repr=False)


def plan_store(
    layout: StoreLayout, images: ImageSet, manifest: Manifest, dtype: str
) -> StorePlan:
    """Shards of the sorted file list; those present and valid are left out of ``todo``."""
    size = manifest.shard_size
    digests = [
        shard_digest(images.ids[k * size : (k + 1) * size], dtype) for k in range(manifest.num_shards)
    ]
    plan = StorePlan(images, size, digests, [])
    for k in range(manifest.num_shards):
        planned = len(plan.rows(k))
        if not layout.shard_is_valid(k, digests[k], manifest.model_key, planned):
            plan.todo.append(k)
    for path in layout.shard_files():  # shards beyond the plan (the folder shrank)
        if _number(path) >= manifest.num_shards:
            path.unlink()
            layout.skipped_path(_number(path)).unlink(missing_ok=True)
    return plan


class ShardCollector:
    """Gathers finished rows by shard and writes each shard as soon as all its rows are in."""

    def __init__(self, layout: StoreLayout, plan: StorePlan, manifest: Manifest, bar: Any):
        self.layout, self.plan, self.manifest, self.bar = layout, plan, manifest, bar
        self.pending: dict[int, dict[int, tuple[str, str, np.ndarray]]] = {k: {} for k in plan.todo}
        self.written = 0

    def add(self, batch: dict[str, np.ndarray]) -> None:
        size = self.plan.shard_size
        touched = set()
        for row, digest, reason, vec in zip(
            batch["row"], batch["hash"], batch["reason"], batch["vector"], strict=True
        ):
            k = int(row) // size
            if k not in self.pending:
                continue  # a shard written already (a retried task delivered it again)
            self.pending[k][int(row)] = (str(digest), str(reason), np.asarray(vec))
            touched.add(k)
        self.bar.update(len(batch["row"]))
        for k in sorted(touched):
            if len(self.pending[k]) == len(self.plan.rows(k)):
                self._write(k, self.pending.pop(k))

    def _write(self, k: int, got: dict[int, tuple[str, str, np.ndarray]]) -> None:
        images = self.plan.images
        ids, labels, hashes, vecs, skipped = [], [], [], [], []
        for row in self.plan.rows(k):
            digest, reason, vec = got[row]
            if reason:
                skipped.append((images.ids[row], reason))
                continue
            ids.append(images.ids[row])
            labels.append(images.labels[row] if images.labels is not None else None)
            hashes.append(digest)
            vecs.append(vec)
        dim = self.manifest.dim
        rows = ShardRows(ids, labels, hashes, np.array(vecs, np.float32).reshape(-1, dim), skipped)
        self.layout.write_shard(
            k, self.plan.digests[k], self.manifest.model_key, rows, self.manifest.vector_dtype
        )
        self.written += 1

    @property
    def missing(self) -> list[int]:
        return sorted(self.pending)


def embed_to_store(
    folder: str | os.PathLike,
    store: str | os.PathLike,
    spec: ModelSpec,
    *,
    engine: str = "local",
    batch_size: int = 64,
    shard_size: int = 4096,
    vector_dtype: str = "float16",
    progress: bool = True,
    ray_options: Any = None,
) -> StoreResult:
    """Embed every image under ``folder`` into the store ``store`` (resuming a partial one).

    Parameters
    ----------
    folder : path
        Images, as for :meth:`ImageSet.from_folder` (the store's ids are its ids).
    store : path
        Output folder; created, or finished if a previous run left it partial.
    spec : ModelSpec
        Model name, pretrained tag, device, precision.
    engine : {"local", "ray"}
        ``"local"``: this process. ``"ray"``: Ray Data tasks decode, a pool of model actors encodes.
    batch_size, shard_size : int
        Images per forward pass; rows per shard (the unit of resumption).
    vector_dtype : {"float16", "float32"}
        How vectors are stored.
    ray_options : RayOptions, optional
        Cluster address and actor pool settings (engine ``"ray"`` only).

    Returns
    -------
    StoreResult
    """
    if vector_dtype not in VECTOR_DTYPES:
        raise ValueError(f"vector_dtype must be one of {VECTOR_DTYPES}, got {vector_dtype!r}")
    if engine not in ("local", "ray"):
        raise ValueError(f"engine must be 'local' or 'ray', got {engine!r}")
    images = ImageSet.from_folder(folder)
    # On the driver: identity, dim and preprocessing of the vector space. With Ray the driver
    # may have no GPU, so it loads on the CPU in fp32 (the model key does not depend on either).
    driver = spec if engine == "local" else ModelSpec(spec.name, spec.pretrained, "cpu", "fp32")
    model = driver.load()
    layout = StoreLayout(store)
    manifest = _start_manifest(layout, model, spec, images, folder, shard_size, vector_dtype)
    plan = plan_store(layout, images, manifest, vector_dtype)
    todo_rows = sum(len(plan.rows(k)) for k in plan.todo)
    with _progress(todo_rows, progress, model) as bar:
        collector = ShardCollector(layout, plan, manifest, bar)
        if plan.todo:
            if engine == "local":
                _run_local(plan, model, collector, batch_size)
            else:
                from clipviz.engine.ray_job import run_ray

                run_ray(plan, spec, model, collector, batch_size, ray_options)
    if collector.missing:
        raise RuntimeError(
            f"the engine finished without rows of shards {collector.missing[:10]}; run the same "
            "command again to embed them"
        )
    finished = _finish(layout, manifest)
    return StoreResult(
        layout.root,
        collector.written,
        manifest.num_shards - len(plan.todo),
        finished.count,
        finished.skipped,
        finished,
    )


def _start_manifest(
    layout: StoreLayout,
    model: Any,
    spec: ModelSpec,
    images: ImageSet,
    folder: Any,
    shard_size: int,
    dtype: str,
) -> Manifest:
    from clipviz import __version__

    n = len(images)
    new = Manifest(
        model_key=model.info.key,
        model_name=model.info.name,
        logit_scale=float(model.info.logit_scale),
        dim=int(model.info.dim),
        precision=spec.precision,
        vector_dtype=dtype,
        shard_size=int(shard_size),
        num_shards=(n + shard_size - 1) // shard_size,
        root=str(Path(folder).expanduser().resolve()),
        planned=n,
        clipviz_version=__version__,
    )
    if layout.manifest.is_file():
        old = Manifest.read(layout.manifest)
        if old.model_key != new.model_key:
            raise ValueError(
                f"the store {str(layout.root)!r} holds vectors of model {old.model_name!r}, "
                f"not {new.model_name!r}: choose another --store folder"
            )
        if old.shard_size != new.shard_size:
            raise ValueError(
                f"the store {str(layout.root)!r} was cut into shards of {old.shard_size} rows; "
                f"rerun with --shard-size {old.shard_size} (or use a new folder)"
            )
    layout.write_manifest(new)  # complete=False until every shard exists
    return new


def _finish(layout: StoreLayout, manifest: Manifest) -> Manifest:
    """Count the shards, write ``vectors.npy`` and mark the manifest complete."""
    pq = require("pyarrow.parquet", "the embedding store")
    shards = layout.shard_files()
    manifest.count = sum(pq.read_metadata(p).num_rows for p in shards)
    manifest.skipped = sum(pq.read_metadata(layout.skipped_path(_number(p))).num_rows for p in shards)
    manifest.fingerprint = _fingerprint(layout)
    layout.write_vectors(manifest)
    manifest.complete = True
    layout.write_manifest(manifest)
    return manifest


def _number(shard: Path) -> int:
    return int(shard.stem.split("-")[1])


def _fingerprint(layout: StoreLayout) -> str:
    """Identity of the shard set: their plan digests in order (changes when any shard does)."""
    import hashlib

    pq = require("pyarrow.parquet", "the embedding store")
    h = hashlib.sha256()
    for p in layout.shard_files():
        meta = pq.read_metadata(p).metadata or {}
        h.update(meta.get(b"clipviz.plan", b"?") + b"\0")
    return h.hexdigest()


def _run_local(plan: StorePlan, model: Any, collector: ShardCollector, batch_size: int) -> None:
    """This process: a few threads prepare the next batch while the model encodes this one."""
    from clipviz.engine.embed import cpu_threads, default_workers

    workers = default_workers(model.device)
    with cpu_threads(model.device, workers), ThreadPoolExecutor(workers) as pool:
        batches = list(_row_batches(plan, batch_size))
        chunks = [np.array_split(np.arange(len(b["row"])), workers) for b in batches]
        nxt = _submit(pool, batches, chunks, 0, model.preprocess)
        for i in range(len(batches)):
            parts = [f.result() for f in nxt]
            if i + 1 < len(batches):
                nxt = _submit(pool, batches, chunks, i + 1, model.preprocess)
            prepared = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
            collector.add(encode_batch(model, prepared))


def _submit(pool: Any, batches: list, chunks: list, i: int, preprocess: Any) -> list:
    b = batches[i]
    return [
        pool.submit(prepare_batch, {"row": b["row"][c], "path": b["path"][c]}, preprocess)
        for c in chunks[i]
        if len(c)
    ]


def _row_batches(plan: StorePlan, batch_size: int) -> Iterator[dict[str, np.ndarray]]:
    """The rows of the shards to do, ``batch_size`` at a time (never across two shards)."""
    paths = plan.images.paths
    for k in plan.todo:
        rows = plan.rows(k)
        for start in range(rows.start, rows.stop, batch_size):
            r = np.arange(start, min(start + batch_size, rows.stop), dtype=np.int64)
            yield {"row": r, "path": np.array([paths[i] for i in r], dtype=object)}


def todo_table(plan: StorePlan) -> Iterable[tuple[np.ndarray, list[str]]]:
    """(rows, paths) of the shards to do, one pair per shard (the Ray engine's input blocks)."""
    for k in plan.todo:
        rows = np.arange(plan.rows(k).start, plan.rows(k).stop, dtype=np.int64)
        yield rows, [plan.images.paths[i] for i in rows]
