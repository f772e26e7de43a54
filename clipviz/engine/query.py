"""search: find the images nearest to a text, an image id, a PIL image or a vector."""

from __future__ import annotations

from typing import Any

import numpy as np

from clipviz.compute.ann import nearest_auto
from clipviz.compute.types import ImageEmbeddings

__all__ = ["search", "query_vector"]


def search(
    emb: ImageEmbeddings,
    query: Any,
    model: Any = None,
    k: int = 20,
    *,
    by: str = "auto",
) -> Any:
    """Rank the embedded images by cosine similarity to a query.

    Parameters
    ----------
    emb : ImageEmbeddings
        The images to search (from :func:`clipviz.embed_images`).
    query : str, PIL.Image.Image or numpy.ndarray
        Free text (needs ``model``), the id of an image in ``emb`` (image -> images; the query
        image itself is left out), a PIL image (needs ``model``), or a (D,) vector.
    model : ClipModel, optional
        The model that made ``emb``; needed for text and PIL queries.
    k : int
        Number of results.
    by : {"auto", "text", "id"}
        How to read a string query: ``"auto"`` treats it as an image id when one matches,
        otherwise as text.

    Returns
    -------
    pandas.DataFrame
        Columns ``rank`` (1 = best), ``id``, ``score`` (cosine), ``label``, ``path``.
    """
    import pandas as pd

    vector, exclude = query_vector(emb, query, model, by=by)
    idx, scores = nearest_auto(emb, vector, k=k, exclude=exclude)  # ANN on large stores
    labels = emb.labels or [None] * len(emb)
    paths = emb.paths or [None] * len(emb)
    return pd.DataFrame(
        {
            "rank": np.arange(1, len(idx) + 1),
            "id": [emb.ids[i] for i in idx],
            "score": scores,
            "label": [labels[i] for i in idx],
            "path": [paths[i] for i in idx],
        }
    )


def query_vector(
    emb: ImageEmbeddings, query: Any, model: Any = None, *, by: str = "auto"
) -> tuple[np.ndarray, int | None]:
    """The (D,) query vector, and the row to exclude (the query image) if any."""
    if by not in ("auto", "text", "id"):
        raise ValueError(f"by must be 'auto', 'text' or 'id', got {by!r}")
    if isinstance(query, str):
        if by != "text" and query in emb.ids:
            i = emb.ids.index(query)
            return emb.vectors[i], i
        if by == "id":
            raise KeyError(f"no image with id {query!r} in these embeddings")
        return _need_model(model, emb, "a text query").encode_texts([query])[0], None
    if isinstance(query, np.ndarray):
        vec = np.asarray(query, dtype=np.float32).reshape(-1)
        if vec.shape[0] != emb.vectors.shape[1]:
            raise ValueError(
                f"query vector has {vec.shape[0]} dimensions, the embeddings have "
                f"{emb.vectors.shape[1]}; embed the query with the same model"
            )
        return vec, None
    from PIL import Image

    if isinstance(query, Image.Image):
        from clipviz.engine._decode import to_rgb

        model = _need_model(model, emb, "an image query")
        return model.encode_pil([to_rgb(query)])[0], None
    raise TypeError(
        f"cannot search with a {type(query).__name__}: pass text, an image id, a PIL image "
        "or a numpy vector"
    )


def _need_model(model: Any, emb: ImageEmbeddings, what: str) -> Any:
    if model is None:
        raise ValueError(
            f"{what} must be embedded first: pass model=, the model that embedded the images "
            f"({emb.model.name!r}), e.g. search(emb, query, model=model)"
        )
    if model.info.key != emb.model.key:
        raise ValueError(
            f"the model {model.info.name!r} is not the one that embedded these images "
            f"({emb.model.name!r}, a different vector space); pass that model"
        )
    return model
