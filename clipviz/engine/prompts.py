"""Prompt embedding: class names x templates -> per-template and ensembled text vectors."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from clipviz.compute import ensemble, get_templates
from clipviz.compute.types import PromptEmbeddings

__all__ = ["embed_prompts", "encode_text_query"]


def embed_prompts(
    model: Any,
    classnames: Sequence[str],
    templates: str | Iterable[str] = "openai_imagenet",
) -> PromptEmbeddings:
    """Embed every class name in every template and ensemble them per class.

    Parameters
    ----------
    model : ClipModel
        From :func:`clipviz.load_model`.
    classnames : sequence of str
        Class names (or short phrases) that fill the ``{}`` of each template.
    templates : str or list of str
        A set name (``"openai_imagenet"`` (80), ``"simple"``, ``"single"``) or your own
        templates, each with one ``{}``. Use ``["{}"]`` to embed prompts exactly as written.

    Returns
    -------
    PromptEmbeddings
        ``per_template`` (C, T, D) normalised, ``vectors`` (C, D) their normalised mean (as in
        open_clip's ``build_zero_shot_classifier``), ``texts[c]`` the strings encoded.
    """
    if isinstance(classnames, str):
        raise TypeError(f"classnames must be a list of strings; got one string {classnames!r}")
    names = [str(c) for c in classnames]
    if not names:
        raise ValueError("classnames is empty; give at least one class name")
    tmpl = get_templates(templates)
    texts = [[t.format(c) for t in tmpl] for c in names]
    flat = model.encode_texts([s for row in texts for s in row])
    per_template = flat.reshape(len(names), len(tmpl), -1)
    return PromptEmbeddings(
        classnames=names,
        templates=tmpl,
        vectors=ensemble(per_template),
        model=model.info,
        per_template=per_template,
        texts=texts,
    )


def encode_text_query(model: Any, text: str) -> np.ndarray:
    """One free-text query as a (D,) float32 unit vector (no template added)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    return model.encode_texts([text])[0]
