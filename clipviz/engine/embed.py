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
from typing import Any

import numpy as np

from clipviz.compute.types import ImageEmbeddings
from clipviz.engine import _filememo, _filememo_disk
from clipviz.engine._decode import ImageSkipped
from clipviz.engine._embed_batches import Encoder, Item, Results
from clipviz.engine._fast_preprocess import recognise
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
    res = Results(n, model.info.dim)
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


def _memo_hits(imageset: ImageSet, index: dict[bytes, np.ndarray], res: Results) -> list[int]:
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
    res: Results,
    bar: Any,
    batch_size: int,
    num_workers: int | None,
) -> None:
    """Read and hash the rows ``todo``; decode and encode those not in the cache."""
    device = getattr(model, "device", "cpu")  # duck-typed: may not say
    tuner = CpuTuner(device, num_workers, default_workers(device))
    fast = recognise(getattr(model, "preprocess", None))
    encoder = Encoder(model, fast, tuner, store, index, res, imageset.ids, int(batch_size))
    prep = fast.pixels if fast is not None else model.preprocess
    with tuner, encoder:
        for item in _prepared(imageset, todo, model, prep, index, tuner, int(batch_size), store):
            if item.skipped is not None:
                res.skip(imageset.ids[item.i], item.skipped, item.skip_kind)
            elif item.cached is not None:
                res.hit(item)  # normalised below
            elif item.digest is not None and item.digest in index:  # encoded since it was read
                res.hit(Item(item.i, item.digest, cached=index[item.digest]))
            elif item.digest is not None and item.digest in encoder.by_digest:
                encoder.by_digest[item.digest].waiting.append(item)  # same content, in flight
            else:
                encoder.add(item)
            bar.update(1)
        encoder.finish()




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
) -> Iterator[Item]:
    """The items ``todo`` in set order, prepared a few at a time by a thread pool that stays a
    bounded window ahead (a task per few images: fewer hand-offs than one per image)."""
    hashing = store is not None
    per_task = max(1, min(16, batch_size // 4))
    tasks = [todo[k : k + per_task] for k in range(0, len(todo), per_task)]
    window = max(2, -(-(2 * batch_size + tuner.pool_size) // per_task))
    size = getattr(model, "image_size", None)
    min_side = max(size) if isinstance(size, tuple) and size else None
    with ThreadPoolExecutor(tuner.pool_size, thread_name_prefix="clipviz-decode") as pool:
        pending: deque[Future[list[Item]]] = deque()
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
) -> list[Item]:
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
) -> Item:
    """Read item i once; on a cache hit stop there, otherwise decode and preprocess it."""
    try:
        stat_key = _filememo.stat_key(imageset.paths[i]) if hashing else None
        raw = imageset.read_raw(i)
        digest = bytes.fromhex(hash_raw(raw)) if hashing else None  # no cache: no hashing
        if stat_key is not None and digest is not None:
            _filememo.remember(stat_key, digest)
        if digest is not None and digest in index:
            return Item(i, digest, cached=index[digest])
        return Item(i, digest, pixels=preprocess(imageset.decode_raw(i, raw, min_side)))
    except ImageSkipped as err:
        return Item(i, skipped=err.reason, skip_kind=err.kind)
    except (OSError, ValueError) as err:  # preprocessing of an odd image (e.g. 0-sized)
        reason = f"cannot preprocess {imageset.ids[i]!r}: {err}"
        return Item(i, skipped=reason, skip_kind="cannot preprocess")
    except MemoryError:
        reason = f"out of memory decoding or preprocessing {imageset.ids[i]!r}"
        return Item(i, skipped=reason, skip_kind="out of memory")


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
