"""embed_images: ImageSet -> ImageEmbeddings, batched, overlapped, cached, resumable.

A small thread pool reads, hashes, decodes and preprocesses the next images while the main
thread runs the forward pass (PIL decoding and resizing release the GIL). At most a couple
of batches of decoded images are in flight, so memory stays bounded for any set size. Each
finished batch goes straight into the disk cache, so an interrupted run keeps its work.
"""

from __future__ import annotations

import os
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

__all__ = ["embed_images", "as_imageset"]


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
        Decoding threads (default: a few, one less than the CPUs).

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

    with _progress(n, progress, model) as bar:
        for item in _prepared(
            imageset, model, index, num_workers, int(batch_size), store is not None
        ):
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
    num_workers: int | None,
    batch_size: int,
    hashing: bool,
) -> Iterator[_Item]:
    """Items in set order, prepared by a thread pool that stays a bounded window ahead."""
    workers = num_workers or max(1, min(8, (os.cpu_count() or 2) - 1))
    window = 2 * batch_size + workers
    n = len(imageset)
    with ThreadPoolExecutor(workers, thread_name_prefix="clipviz-decode") as pool:
        pending: deque[Future[_Item]] = deque()
        nxt = 0
        try:
            while nxt < n or pending:
                while nxt < n and len(pending) < window:
                    job = (imageset, nxt, model.preprocess, index, hashing)
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
        raw = imageset.read_raw(i)
        digest = bytes.fromhex(hash_raw(raw)) if hashing else None  # no cache: no hashing
        if digest is not None and digest in index:
            return _Item(i, digest, cached=index[digest])
        return _Item(i, digest, pixels=preprocess(imageset.decode_raw(i, raw)))
    except ImageSkipped as err:
        return _Item(i, skipped=err.reason)
    except (OSError, ValueError) as err:  # preprocessing of an odd image (e.g. 0-sized)
        return _Item(i, skipped=f"cannot preprocess {imageset.ids[i]!r}: {err}")


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
