"""embed_images: ImageSet -> ImageEmbeddings, batched, overlapped, cached, resumable.

A small thread pool reads, hashes, decodes and preprocesses the next images, a few per task,
while encoder threads run forward passes (PIL decoding and resizing and torch release the
GIL). Models with open_clip's standard transform get it from ``_fast_preprocess`` (the same
values, about half the CPU). At most a few batches are in flight, so memory stays bounded
for any set size. Each finished batch goes straight into the disk cache, so an interrupted
run keeps its work. On the CPU the split of cores between torch, the decoders and forward
passes side by side is chosen from measured costs (see ``_threads``).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from clipviz.compute.types import EmbedCounts, ImageEmbeddings
from clipviz.engine import _filememo, _filememo_disk
from clipviz.engine._decode import ImageSkipped
from clipviz.engine._fast_preprocess import FastPreprocess, recognise
from clipviz.engine._threads import CpuTuner
from clipviz.engine.cache import EmbeddingCache, resolve_cache_dir
from clipviz.engine.imageset import ImageSet, hash_raw

__all__ = [
    "embed_images",
    "as_imageset",
    "cpu_threads",
    "default_workers",
    "NoImagesEmbeddedError",
]


class NoImagesEmbeddedError(ValueError):
    """Every image of a non-empty set was skipped; ``skipped`` holds ``(id, reason)``."""

    def __init__(self, skipped: list[tuple[str, str]], kinds: Counter[str]):
        parts = ", ".join(f"{n} {kind}" for kind, n in kinds.most_common())
        first = f"; first: {skipped[0][0]}: {skipped[0][1]}" if skipped else ""
        super().__init__(
            f"all {len(skipped)} images were skipped, none could be embedded ({parts}){first}"
        )
        self.skipped = skipped
        self.kinds = dict(kinds)


@dataclass
class _Item:
    """What a worker hands back for image ``i``: a cached vector, pixels to encode, or a reason."""

    i: int
    digest: bytes | None = None
    cached: np.ndarray | None = None
    pixels: Any = None
    skipped: str | None = None
    skip_kind: str = ""


class _Results:
    """The run's output rows, filled in as items arrive, and where each came from."""

    def __init__(self, n: int, dim: int):
        self.vectors = np.zeros((n, dim), np.float32)
        self.done = np.zeros(n, bool)
        self.skipped: list[tuple[str, str]] = []
        self.kinds: Counter[str] = Counter()
        self.fresh: set[bytes] = set()  # digests encoded in this run
        self.encoded = self.from_cache = self.duplicates = 0

    def put(self, i: int, vector: np.ndarray) -> None:
        self.vectors[i], self.done[i] = vector, True

    def skip(self, item_id: str, reason: str, kind: str) -> None:
        self.skipped.append((item_id, reason))
        self.kinds[kind] += 1

    def hit(self, item: _Item) -> None:
        self.put(item.i, item.cached)
        if item.digest in self.fresh:
            self.duplicates += 1
        else:
            self.from_cache += 1

    def counts(self) -> EmbedCounts:
        return EmbedCounts(self.encoded, self.from_cache, self.duplicates)


def embed_images(
    model: Any,
    images: ImageSet | Sequence[Any] | str | os.PathLike,
    batch_size: int = 64,
    cache: bool | str | os.PathLike = True,
    progress: bool = True,
    *,
    num_workers: int | None = None,
) -> ImageEmbeddings:
    """Embed every image of a set with a CLIP model.

    Parameters
    ----------
    model : ClipModel
        From :func:`clipviz.load_model` (anything with ``info``, ``preprocess`` and
        ``encode_images``).
    images : ImageSet, folder path, or list of PIL images / file paths
    batch_size : int
        Images per forward pass.
    cache : bool or path
        ``True``: the default cache folder (``$CLIPVIZ_CACHE_DIR``, else the platform's user
        cache folder); a path: that folder; ``False``: no cache. Cached vectors are keyed by
        model and image content (a renamed file is found again, an edited one is re-embedded)
        and stored as fp16. A cache folder that cannot be written is read, with a warning.
    progress : bool
        Show a progress bar (``tqdm.auto``).
    num_workers : int, optional
        Decoding threads. Default: on a GPU, up to 8 (one less than the CPUs); on the CPU the
        split between torch's threads and the decoders is chosen after timing the decoding
        and forward passes at one thread and at torch's default threads (a large model keeps
        every core for torch; a small one encodes a batch per core side by side). Given
        explicitly on the CPU, torch's threads are lowered to the cores left over, for the
        run, and one batch is encoded at a time.

    Returns
    -------
    ImageEmbeddings
        Vectors (float32, L2-normalised) for every image that could be read, in set order;
        ``skipped`` lists ``(id, reason)`` for the others; ``counts`` says how many were
        encoded, found in the cache, or shared with an identical image. With a cache, every
        vector goes through fp16 (also on the first run), so reruns return identical arrays;
        they agree with uncached float32 vectors to about 1e-3.

    Raises
    ------
    NoImagesEmbeddedError
        If the set has images but every one was skipped (the message counts the reasons).
    """
    imageset = as_imageset(images)
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    root = resolve_cache_dir(cache)
    store = EmbeddingCache(root, model.info.key, model.info.dim) if root is not None else None
    index = store.load() if store is not None else {}
    if root is not None and index:  # a new process trusts an unchanged stat too
        _filememo_disk.load(root, imageset.paths)
    n = len(imageset)
    res = _Results(n, model.info.dim)
    todo = _memo_hits(imageset, index, res) if store is not None and index else list(range(n))
    if todo:  # only now is the model needed (a deferred one is built here), and a progress bar
        with _progress(n, progress, model) as bar:
            bar.update(n - len(todo))
            _embed_rest(model, imageset, todo, index, store, res, bar, batch_size, num_workers)
    if store is not None and store.writable:
        _filememo_disk.save(root, imageset.paths)
    keep = np.flatnonzero(res.done)
    if n and not len(keep):
        raise NoImagesEmbeddedError(res.skipped, res.kinds)
    if store is not None:  # fresh and cached rows alike: fp16 values, renormalised in fp32
        res.vectors[keep] = _unit(res.vectors[keep])
    return ImageEmbeddings(
        ids=[imageset.ids[i] for i in keep],
        vectors=np.ascontiguousarray(res.vectors[keep]),
        model=model.info,
        labels=None if imageset.labels is None else [imageset.labels[i] for i in keep],
        paths=[imageset.paths[i] for i in keep],
        skipped=res.skipped,
        counts=res.counts(),
    )


def _memo_hits(imageset: ImageSet, index: dict[bytes, np.ndarray], res: _Results) -> list[int]:
    """File the cache hits of files whose stat the memo knows (a stat each, no read); return
    the other rows."""
    todo, hits, rows = [], [], []
    for i, path in enumerate(imageset.paths):
        known = _filememo.recall(path)
        row = index.get(known) if known is not None else None
        if row is None:
            todo.append(i)
        else:
            hits.append(i)
            rows.append(row)
    if hits:  # nothing is encoded yet, so each is a hit from the cache (res.hit, in bulk)
        res.vectors[hits] = np.stack(rows)
        res.done[hits] = True
        res.from_cache += len(hits)
    return todo


def _embed_rest(
    model: Any,
    imageset: ImageSet,
    todo: list[int],
    index: dict[bytes, np.ndarray],
    store: EmbeddingCache | None,
    res: _Results,
    bar: Any,
    batch_size: int,
    num_workers: int | None,
) -> None:
    """Read and hash the rows ``todo``; decode and encode those not in the cache."""
    device = getattr(model, "device", "cpu")  # duck-typed: may not say
    tuner = CpuTuner(device, num_workers, default_workers(device))
    fast = recognise(getattr(model, "preprocess", None))
    encoder = _Encoder(model, fast, tuner, store, index, res, imageset.ids, int(batch_size))
    prep = fast.pixels if fast is not None else model.preprocess
    with tuner, encoder:
        for item in _prepared(imageset, todo, model, prep, index, tuner, int(batch_size), store):
            if item.skipped is not None:
                res.skip(imageset.ids[item.i], item.skipped, item.skip_kind)
            elif item.cached is not None:
                res.hit(item)  # normalised below
            elif item.digest is not None and item.digest in index:  # encoded since it was read
                res.hit(_Item(item.i, item.digest, cached=index[item.digest]))
            elif item.digest is not None and item.digest in encoder.by_digest:
                encoder.by_digest[item.digest].waiting.append(item)  # same content, in flight
            else:
                encoder.add(item)
            bar.update(1)
        encoder.finish()


_NAN_REASON = "the model returned a NaN or infinite vector for this image (broken weights?)"


def default_workers(device: Any) -> int:
    """Decoding threads: many feed a GPU; on the CPU the forward pass needs the cores."""
    cores = os.cpu_count() or 2
    if getattr(device, "type", str(device)) == "cpu":
        return max(1, cores // 4)
    return max(1, min(8, cores - 1))


@contextlib.contextmanager
def cpu_threads(device: Any, workers: int) -> Iterator[None]:
    """On the CPU, lower torch's intra-op threads so that they and the decoding threads fit the
    cores: oversubscribed OpenMP threads spin-wait and can make the forward pass many times
    slower. Restored afterwards. Nothing changes for GPU devices."""
    if getattr(device, "type", str(device)) != "cpu":
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, min(before, (os.cpu_count() or 2) - workers)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def as_imageset(images: Any) -> ImageSet:
    """Accept an ImageSet, a folder path, or a list of PIL images or file paths."""
    if isinstance(images, ImageSet):
        return images
    if isinstance(images, (str, os.PathLike)):
        return ImageSet.from_folder(images)
    from PIL import Image

    items = list(images)
    if items and all(isinstance(x, Image.Image) for x in items):
        return ImageSet.from_pil(items)
    if items and all(isinstance(x, (str, os.PathLike)) for x in items):
        return ImageSet.from_paths(items)
    kinds = sorted({type(x).__name__ for x in items}) or ["nothing"]
    raise TypeError(
        f"cannot embed {kinds}: pass an ImageSet, a folder path, or a list of PIL images or "
        "file paths (see clipviz.ImageSet.from_dataframe for tables)"
    )


def _prepared(
    imageset: ImageSet,
    todo: list[int],
    model: Any,
    prep: Any,
    index: dict[bytes, np.ndarray],
    tuner: CpuTuner,
    batch_size: int,
    store: EmbeddingCache | None,
) -> Iterator[_Item]:
    """The items ``todo`` in set order, prepared a few at a time by a thread pool that stays a
    bounded window ahead (a task per few images: fewer hand-offs than one per image)."""
    hashing = store is not None
    per_task = max(1, min(16, batch_size // 4))
    tasks = [todo[k : k + per_task] for k in range(0, len(todo), per_task)]
    window = max(2, -(-(2 * batch_size + tuner.pool_size) // per_task))
    size = getattr(model, "image_size", None)
    min_side = max(size) if isinstance(size, tuple) and size else None
    with ThreadPoolExecutor(tuner.pool_size, thread_name_prefix="clipviz-decode") as pool:
        pending: deque[Future[list[_Item]]] = deque()
        nxt = 0
        try:
            while nxt < len(tasks) or pending:
                while nxt < len(tasks) and len(pending) < window:
                    job = (imageset, tasks[nxt], prep, index, hashing, min_side)
                    pending.append(pool.submit(_prepare_task, tuner, *job))
                    nxt += 1
                yield from pending.popleft().result()
        finally:  # Ctrl-C or an error: drop queued work instead of finishing it
            for f in pending:
                f.cancel()


def _prepare_task(
    tuner: CpuTuner, imageset: ImageSet, indices: list[int], *job: Any
) -> list[_Item]:
    items = []
    for i in indices:
        with tuner.limiter:
            t = time.thread_time()
            item = _prepare(imageset, i, *job)
            if item.pixels is not None:
                tuner.decoded(time.thread_time() - t)
        items.append(item)
    return items


def _prepare(
    imageset: ImageSet,
    i: int,
    preprocess: Any,
    index: dict[bytes, np.ndarray],
    hashing: bool,
    min_side: int | None,
) -> _Item:
    """Read item i once; on a cache hit stop there, otherwise decode and preprocess it."""
    try:
        stat_key = _filememo.stat_key(imageset.paths[i]) if hashing else None
        raw = imageset.read_raw(i)
        digest = bytes.fromhex(hash_raw(raw)) if hashing else None  # no cache: no hashing
        if stat_key is not None and digest is not None:
            _filememo.remember(stat_key, digest)
        if digest is not None and digest in index:
            return _Item(i, digest, cached=index[digest])
        return _Item(i, digest, pixels=preprocess(imageset.decode_raw(i, raw, min_side)))
    except ImageSkipped as err:
        return _Item(i, skipped=err.reason, skip_kind=err.kind)
    except (OSError, ValueError) as err:  # preprocessing of an odd image (e.g. 0-sized)
        reason = f"cannot preprocess {imageset.ids[i]!r}: {err}"
        return _Item(i, skipped=reason, skip_kind="cannot preprocess")
    except MemoryError:
        reason = f"out of memory decoding or preprocessing {imageset.ids[i]!r}"
        return _Item(i, skipped=reason, skip_kind="out of memory")


@dataclass
class _Flight:
    """A batch on its way through the forward pass, and the items that wait for its vectors
    (the same content as one of its items)."""

    items: list[_Item]
    waiting: list[_Item]
    future: Future[tuple[np.ndarray, float, float]] | None = None
    threads: int | None = None


class _Encoder:
    """Collects items into batches, runs their forward passes in threads (as many at once as
    the tuner allows) and files the vectors, in order, into the cache and the results."""

    def __init__(
        self,
        model: Any,
        fast: FastPreprocess | None,
        tuner: CpuTuner,
        store: EmbeddingCache | None,
        index: dict[bytes, np.ndarray],
        res: _Results,
        ids: list[str],
        batch_size: int,
    ):
        self.model, self.fast, self.tuner = model, fast, tuner
        self.store, self.index, self.res, self.ids = store, index, res, ids
        self.batch_size = batch_size
        self.current = _Flight([], [])
        self.flights: deque[_Flight] = deque()
        self.by_digest: dict[bytes, _Flight] = {}  # content of items not yet filed
        self._pool = ThreadPoolExecutor(max(1, tuner.cores), thread_name_prefix="clipviz-encode")

    def __enter__(self) -> _Encoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def add(self, item: _Item) -> None:
        self.current.items.append(item)
        if item.digest is not None:
            self.by_digest[item.digest] = self.current
        if len(self.current.items) == self.batch_size:
            self._submit()

    def finish(self) -> None:
        if self.current.items:
            self._submit()
        while self.flights:
            self._file(self.flights.popleft())

    def _submit(self) -> None:
        flight, self.current = self.current, _Flight([], [])
        while len(self.flights) >= self.tuner.forwarders:
            self._file(self.flights.popleft())
        flight.threads = self.tuner.threads_for_next_forward()
        job = (self.model, self.fast, [it.pixels for it in flight.items], flight.threads)
        flight.future = self._pool.submit(_forward, *job)
        self.flights.append(flight)

    def _file(self, flight: _Flight) -> None:
        assert flight.future is not None  # submitted before it was queued
        out, wall_s, cpu_s = flight.future.result()
        self.tuner.forward_done(len(flight.items), flight.threads, wall_s, cpu_s)
        kept, vectors, bad = _keep_good(out, flight.items, self.store, self.index)
        res = self.res
        for item, vec in zip(kept, vectors, strict=True):
            res.put(item.i, vec)
            if item.digest is not None:
                res.fresh.add(item.digest)
        res.encoded += len(kept)
        for item in bad:
            res.skip(self.ids[item.i], _NAN_REASON, "non-finite vector from the model")
        for item in flight.items:
            if item.digest is not None and self.by_digest.get(item.digest) is flight:
                del self.by_digest[item.digest]
        for item in flight.waiting:  # same content as an item of this batch: its vector or fate
            if item.digest in self.index:
                res.hit(_Item(item.i, item.digest, cached=self.index[item.digest]))
            else:
                res.skip(self.ids[item.i], _NAN_REASON, "non-finite vector from the model")


def _forward(
    model: Any, fast: FastPreprocess | None, pixels: list[Any], threads: int | None
) -> tuple[np.ndarray, float, float]:
    """One forward pass (in an encoder thread): vectors, wall and thread-CPU seconds."""
    import torch

    if threads is not None:  # torch's thread count is per calling thread: set it here
        torch.set_num_threads(threads)
    wall, cpu = time.perf_counter(), time.thread_time()
    x = fast.to_batch(pixels) if fast is not None else torch.stack(pixels)
    out = np.asarray(model.encode_images(x))
    return out, time.perf_counter() - wall, time.thread_time() - cpu


def _keep_good(
    out: np.ndarray,
    batch: list[_Item],
    store: EmbeddingCache | None,
    index: dict[bytes, np.ndarray],
) -> tuple[list[_Item], np.ndarray, list[_Item]]:
    """The items kept, their vectors (cached when there is a cache), and the items whose
    vector is bad (NaN, inf or zero: never cached, never returned)."""
    with np.errstate(invalid="ignore", over="ignore"):
        ok = np.isfinite(out).all(axis=1) & (np.abs(out).sum(axis=1) > 0)
    kept = [it for it, good in zip(batch, ok, strict=True) if good]
    bad = [it for it, good in zip(batch, ok, strict=True) if not good]
    out = out[ok]
    if store is None:
        return kept, out, bad
    half = out.astype(np.float16)
    digests = [it.digest for it in kept]
    store.write(digests, half)
    for d, v in zip(digests, half, strict=True):
        index[d] = v  # duplicates later in this run are hits
    return kept, half, bad


def _unit(v: np.ndarray) -> np.ndarray:
    """fp16 -> float32, renormalised (the same arithmetic for fresh and cached vectors)."""
    v = v.astype(np.float32)
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), np.float32(1e-12))


class _NoBar:
    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int) -> None:
        return None


def _progress(n: int, show: bool, model: Any) -> Any:
    if not show:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=n, desc=f"embedding ({model.info.name})", unit="img")
