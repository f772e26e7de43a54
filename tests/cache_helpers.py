"""Shared by the embedding-cache tests (test_cache.py, test_cache_faults.py)."""

from __future__ import annotations

import clipviz.datasets
from clipviz.engine import embed_images


class Counting:
    """The real model, counting the images it encodes; can raise Ctrl-C at a chosen batch."""

    def __init__(self, model, interrupt_at: int | None = None):
        self.model, self.info, self.preprocess = model, model.info, model.preprocess
        self.encoded = 0
        self.batches = 0
        self.interrupt_at = interrupt_at

    def encode_images(self, pixels):
        if self.batches == self.interrupt_at:
            raise KeyboardInterrupt
        self.batches += 1
        self.encoded += len(pixels)
        return self.model.encode_images(pixels)


def shapes_folder(root):
    """24 shape PNGs (seed 5) in ``root``, named 00.png to 23.png."""
    for i, img in enumerate(clipviz.datasets.shapes(24, seed=5).images):
        img.save(root / f"{i:02d}.png")
    return root


def embed(model, images, cache, batch_size=4):
    """embed_images in small batches (several shards), no progress bar."""
    return embed_images(model, images, batch_size=batch_size, cache=cache, progress=False)
