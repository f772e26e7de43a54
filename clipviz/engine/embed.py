"""embed_images: ImageSet -> ImageEmbeddings, batched, overlapped, cached, resumable.

A small thread pool reads, hashes, decodes and preprocesses the next images while the main
thread runs the forward pass (PIL decoding and resizing release the GIL). At most a couple
of batches of decoded images are in flight, so memory stays bounded for any set size. Each
finished batch goes straight into the disk cache, so an interrupted run keeps its work.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from clipviz.compute.types import ImageEmbeddings
from clipviz.engine._decode import ImageSkipped
from clipviz.engine.cache import EmbeddingCache, resolve_cache_dir
from clipviz.engine.imageset import ImageSet, hash_raw

__all__ = ["embed_images", "as_imageset", "cpu_threads", "default_workers"]


@dataclass
class _Item:
    """What a worker hands back for image ``i``: a cached vector, pixels to encode, or a reason."""

    i: int
    digest: bytes | None = None
    cached: np.ndarray | None = None
    pixels: Any = None
    skipped: str | None = None


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
        ``True``: the platform cache folder; a path: that folder; ``False``: no cache. Cached
        vectors are keyed by model and image content (a renamed file is found again, an edited
        one is re-embedded) and stored as fp16.
    progress : bool
        Show a progress bar (``tqdm.auto``).
    num_workers : int, optional
        Decoding threads. Default: on a GPU, up to 8 (one less than the CPUs); on the CPU a
        quarter of the cores (at least 1), and torch's own threads are lowered for the run so
        that decoding and the forward pass together do not oversubscribe the cores.

    Returns
    -------
    ImageEmbeddings
        Vectors (float32, L2-normalised) for every image that could be read, in set order;
        ``skipped`` lists ``(id, reason)`` for the others. With a cache, every vector goes
        through fp16 (also on the first run), so reruns return identical arrays; they agree
        with uncached float32 vectors to about 1e-3.
    """
    imageset = as_imageset(images)
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    root = resolve_cache_dir(cache)
    store = EmbeddingCache(root, model.info.key, model.info.dim) if root is not None else None
    index = store.load() if store is not None else {}
    n = len(imageset)
    vectors = np.zeros((n, model.info.dim), np.float32)
    done = np.zeros(n, bool)
    skipped: list[tuple[str, str]] = []
    batch: list[_Item] = []

    def flush() -> None:
        out = _encode_batch(model, batch, store, index)
        for item, vec in zip(batch, out, strict=True):
            vectors[item.i], done[item.i] = vec, True
        batch.clear()

    device = getattr(model, "device", "cpu")  # a duck-typed encoder may not say
    workers = num_workers or default_workers(device)
    with _progress(n, progress, model) as bar, cpu_threads(device, workers):
        for item in _prepared(imageset, model, index, workers, int(batch_size), store is not None):
            if item.skipped is not None:
                skipped.append((imageset.ids[item.i], item.skipped))
            elif item.cached is not None:
                vectors[item.i], done[item.i] = item.cached, True  # normalised below
            else:
                batch.append(item)
                if len(batch) == batch_size:
                    flush()
            bar.update(1)
        if batch:
            flush()
    keep = np.flatnonzero(done)
    if store is not None:  # fresh and cached rows alike: fp16 values, renormalised in fp32
        vectors[keep] = _unit(vectors[keep])
    return ImageEmbeddings(
        ids=[imageset.ids[i] for i in keep],
        vectors=np.ascontiguousarray(vectors[keep]),
        model=model.info,
        labels=None if imageset.labels is None else [imageset.labels[i] for i in keep],
        paths=[imageset.paths[i] for i in keep],
        skipped=skipped,
    )


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
    model: Any,
    index: dict[bytes, np.ndarray],
    workers: int,
    batch_size: int,
    hashing: bool,
) -> Iterator[_Item]:
    """Cache hits of unchanged files first (no thread hand-off: a stat each), then every other
    item in set order, prepared by a thread pool that stays a bounded window ahead."""
    todo = []
    for i in range(len(imageset)):
        known = _DIGESTS.get(_stat_key(imageset.paths[i])) if hashing and index else None
        if known is not None and known in index:
            yield _Item(i, known, cached=index[known])
        else:
            todo.append(i)
    window = 2 * batch_size + workers
    with ThreadPoolExecutor(workers, thread_name_prefix="clipviz-decode") as pool:
        pending: deque[Future[_Item]] = deque()
        nxt = 0
        try:
            while nxt < len(todo) or pending:
                while nxt < len(todo) and len(pending) < window:
                    job = (imageset, todo[nxt], model.preprocess, index, hashing)
                    pending.append(pool.submit(_prepare, *job))
                    nxt += 1
                yield pending.popleft().result()
        finally:  # Ctrl-C or an error: drop queued work instead of finishing it
            for f in pending:
                f.cancel()


def _prepare(
    imageset: ImageSet, i: int, preprocess: Any, index: dict[bytes, np.ndarray], hashing: bool
) -> _Item:
    """Read item i once; on a cache hit stop there, otherwise decode and preprocess it."""
    try:
        stat_key = _stat_key(imageset.paths[i]) if hashing else None
        raw = imageset.read_raw(i)
        digest = bytes.fromhex(hash_raw(raw)) if hashing else None  # no cache: no hashing
        if stat_key is not None and time.time() - stat_key[-1] / 1e9 > _RACY_S:
            _DIGESTS[stat_key] = digest
        if digest is not None and digest in index:
            return _Item(i, digest, cached=index[digest])
        return _Item(i, digest, pixels=preprocess(imageset.decode_raw(i, raw)))
    except ImageSkipped as err:
        return _Item(i, skipped=err.reason)
    except (OSError, ValueError) as err:  # preprocessing of an odd image (e.g. 0-sized)
        return _Item(i, skipped=f"cannot preprocess {imageset.ids[i]!r}: {err}")


# Content digests of files already hashed in this process, keyed by what os.stat says about
# them: an edited file changes size or mtime and is hashed again. Like git's index, only files
# whose mtime is a few seconds old are remembered, so an edit within the same clock tick
# cannot hide behind an unchanged stat.
_DIGESTS: dict[tuple[str, int, int, int, int], bytes] = {}
_RACY_S = 2.0
_MAX_DIGESTS = 1_000_000


def _stat_key(path: str | None) -> tuple[str, int, int, int, int] | None:
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None  # read_raw reports it properly
    if len(_DIGESTS) > _MAX_DIGESTS:
        _DIGESTS.clear()
    return (os.path.abspath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _encode_batch(
    model: Any, batch: list[_Item], store: EmbeddingCache | None, index: dict[bytes, np.ndarray]
) -> np.ndarray:
    import torch

    out = model.encode_images(torch.stack([it.pixels for it in batch]))
    if store is None:
        return out
    half = out.astype(np.float16)
    digests = [it.digest for it in batch]
    store.write(digests, half)
    for d, v in zip(digests, half, strict=True):
        index[d] = v  # duplicates later in this run are hits
    return half


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
