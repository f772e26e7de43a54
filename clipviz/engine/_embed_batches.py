"""The encoding half of embed_images: items from the decoders are collected into batches,
each batch's forward pass runs in an encoder thread (as many at once as the CPU plan allows),
and the vectors are filed, in order, into the disk cache and the run's results. Bad vectors
(NaN, inf, zero) are never cached and never returned."""

from __future__ import annotations

import time
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from clipviz.compute.types import EmbedCounts
from clipviz.engine._fast_preprocess import FastPreprocess
from clipviz.engine._threads import CpuTuner
from clipviz.engine.cache import EmbeddingCache

NAN_REASON = "the model returned a NaN or infinite vector for this image (broken weights?)"


@dataclass
class Item:
    """What a worker hands back for image ``i``: a cached vector, pixels to encode, or a reason."""

    i: int
    digest: bytes | None = None
    cached: np.ndarray | None = None
    pixels: Any = None
    skipped: str | None = None
    skip_kind: str = ""


class Results:
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

    def hit(self, item: Item) -> None:
        self.put(item.i, item.cached)
        if item.digest in self.fresh:
            self.duplicates += 1
        else:
            self.from_cache += 1

    def counts(self) -> EmbedCounts:
        return EmbedCounts(self.encoded, self.from_cache, self.duplicates)


@dataclass
class Flight:
    """A batch on its way through the forward pass, and the items that wait for its vectors
    (the same content as one of its items)."""

    items: list[Item]
    waiting: list[Item]
    future: Future[tuple[np.ndarray, float, float]] | None = None
    threads: int | None = None


class Encoder:
    """Collects items into batches, runs their forward passes in threads (as many at once as
    the tuner allows) and files the vectors, in order, into the cache and the results."""

    def __init__(
        self,
        model: Any,
        fast: FastPreprocess | None,
        tuner: CpuTuner,
        store: EmbeddingCache | None,
        index: dict[bytes, np.ndarray],
        res: Results,
        ids: list[str],
        batch_size: int,
    ):
        self.model, self.fast, self.tuner = model, fast, tuner
        self.store, self.index, self.res, self.ids = store, index, res, ids
        self.batch_size = batch_size
        self.current = Flight([], [])
        self.flights: deque[Flight] = deque()
        self.by_digest: dict[bytes, Flight] = {}  # content of items not yet filed
        self._pool = ThreadPoolExecutor(max(1, tuner.cores), thread_name_prefix="clipviz-encode")

    def __enter__(self) -> Encoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def add(self, item: Item) -> None:
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
        flight, self.current = self.current, Flight([], [])
        while len(self.flights) >= self.tuner.forwarders:
            self._file(self.flights.popleft())
        flight.threads = self.tuner.threads_for_next_forward()
        job = (self.model, self.fast, [it.pixels for it in flight.items], flight.threads)
        flight.future = self._pool.submit(_forward, *job)
        self.flights.append(flight)

    def _file(self, flight: Flight) -> None:
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
            res.skip(self.ids[item.i], NAN_REASON, "non-finite vector from the model")
        for item in flight.items:
            if item.digest is not None and self.by_digest.get(item.digest) is flight:
                del self.by_digest[item.digest]
        for item in flight.waiting:  # same content as an item of this batch: its vector or fate
            if item.digest in self.index:
                res.hit(Item(item.i, item.digest, cached=self.index[item.digest]))
            else:
                res.skip(self.ids[item.i], NAN_REASON, "non-finite vector from the model")


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
    batch: list[Item],
    store: EmbeddingCache | None,
    index: dict[bytes, np.ndarray],
) -> tuple[list[Item], np.ndarray, list[Item]]:
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
