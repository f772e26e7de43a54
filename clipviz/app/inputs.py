"""Turning what the user passes to ``Workbench(...)`` into aligned embeddings, labels, thumbnails."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from clipviz.compute.types import ImageEmbeddings


def resolve_images(
    images: Any, embeddings: ImageEmbeddings | None, model: Any, **embed_options: Any
) -> tuple[Any, ImageEmbeddings]:
    """Return ``(image_set_or_None, embeddings)``, embedding the images once when needed.

    ``images`` may be an ImageSet, or ImageEmbeddings (then there are no thumbnails); with both
    an ImageSet and ``embeddings=``, the embeddings are used as they are.
    """
    if isinstance(images, (str, os.PathLike)):  # a folder, e.g. the images of open_store(...)
        images = __import__("clipviz.engine", fromlist=["ImageSet"]).ImageSet.from_folder(images)
    if isinstance(images, ImageEmbeddings):
        if embeddings is not None:
            raise TypeError("pass the ImageEmbeddings either as images or as embeddings=, not both")
        return None, images
    if images is None and embeddings is None:
        raise TypeError("Workbench needs images: an ImageSet or ImageEmbeddings")
    if embeddings is not None:
        return images, embeddings
    if not (hasattr(images, "load") and hasattr(images, "ids")):
        raise TypeError(
            f"images must be a clipviz.ImageSet or ImageEmbeddings, got {type(images).__name__}; "
            "build one with clipviz.ImageSet.from_folder(...) or .from_pil(...)"
        )
    from clipviz.engine import embed_images  # torch lives behind this import

    return images, embed_images(model, images, **embed_options)


def resolve_labels(
    labels: Sequence[str] | None, emb: ImageEmbeddings, images: Any
) -> list[str] | None:
    """True labels aligned with ``emb.ids`` (from ``labels=``, the embeddings or the ImageSet).

    ``labels=`` may follow the embeddings' order, or the ImageSet's order (then they are
    matched by image id, so images skipped while embedding drop out).
    """
    if labels is None:
        if emb.labels is not None:
            return [str(x) for x in emb.labels]
        if images is not None and getattr(images, "labels", None) is not None:
            return _by_id(list(images.labels), list(images.ids), emb.ids)
        return None
    labels = [str(x) for x in labels]
    if len(labels) == len(emb):
        return labels
    if images is not None and len(labels) == len(images):
        return _by_id(labels, list(images.ids), emb.ids)
    raise ValueError(
        f"got {len(labels)} labels for {len(emb)} embedded images"
        + (f" ({len(images)} in the image set)" if images is not None else "")
        + "; give one label per image"
    )


def thumbnails_for(images: Any, ids: Sequence[str], size: int, *, cache: bool | str = True) -> Any:
    """A lazy ``ThumbnailStore`` in the order of the embedded ``ids``, or None without images.

    Nothing is decoded here: the views ask for a page (``store.page(indices)``) or one image
    (``store.thumbnail(index)``), and made thumbnails go to the disk cache under ``cache``.
    """
    if images is None:
        return None
    from clipviz.engine.thumbnails import ThumbnailStore

    index = {i: n for n, i in enumerate(images.ids)}
    missing = [i for i in ids if i not in index]
    if missing:
        raise ValueError(
            f"{len(missing)} embedded image ids are not in the image set, e.g. {missing[:3]}; "
            "pass the ImageSet the embeddings were made from"
        )
    order = [index[i] for i in ids]
    same = len(order) == len(images) and all(n == i for n, i in enumerate(order))
    return ThumbnailStore(images, order=None if same else order, size=size, cache=cache)


def _by_id(values: list[str], set_ids: list[str], ids: Sequence[str]) -> list[str]:
    index = dict(zip(set_ids, values, strict=True))
    return [str(index[i]) for i in ids]
