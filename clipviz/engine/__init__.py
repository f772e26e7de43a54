"""Image sources, safe decoding, batched embedding with a disk cache, prompt embedding.

Importing this package does not import torch; the encoding functions import it when called.
"""

from __future__ import annotations

from clipviz.engine._decode import ImageSkipped
from clipviz.engine.cache import EmbeddingCache, default_cache_dir
from clipviz.engine.embed import embed_images
from clipviz.engine.imageset import IMAGE_EXTENSIONS, ImageSet
from clipviz.engine.prompts import embed_prompts, encode_text_query
from clipviz.engine.query import search

__all__ = [
    "IMAGE_EXTENSIONS",
    "EmbeddingCache",
    "ImageSet",
    "ImageSkipped",
    "default_cache_dir",
    "embed_images",
    "embed_prompts",
    "encode_text_query",
    "search",
]
