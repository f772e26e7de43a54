"""Prompt embedding: class names x templates -> per-template and ensembled text vectors."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from clipviz.compute import ensemble, get_templates
from clipviz.compute.types import PromptEmbeddings

__all__ = ["check_prompt_names", "embed_prompts", "encode_text_query"]


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
    names = check_prompt_names(classnames, "classnames")
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


def check_prompt_names(values: Any, what: str = "prompts") -> list[str]:
    """Validate a list of class names or prompts: non-empty, strings, no blank, no repeat.

    Parameters
    ----------
    values : sequence of str
        The names, e.g. ``["circle", "square"]``.
    what : str
        How the caller calls them, for the error message.

    Returns
    -------
    list of str
        The names, stripped of surrounding whitespace.

    Raises
    ------
    TypeError
        One string instead of a list (it would become one prompt per letter), or an item that
        is not a string (``None`` must not become the prompt "None").
    ValueError
        An empty list, a blank name, or a name given twice (two identical columns split the
        probability of one class and corrupt its metrics).
    """
    if isinstance(values, str):
        raise TypeError(
            f"{what} must be a list of strings; got one string {values!r}: use [{values!r}]"
        )
    if values is None or not hasattr(values, "__iter__"):
        raise TypeError(f"{what} must be a list of strings, got {type(values).__name__} {values!r}")
    values = list(values)
    bad = [v for v in values if not isinstance(v, str)]
    if bad:
        raise TypeError(
            f"{what} must all be strings; got {bad[0]!r} ({type(bad[0]).__name__}) in {values!r}"
        )
    if not values:
        raise ValueError(f"{what} is empty; give at least one class name or prompt")
    names = [v.strip() for v in values]
    blank = [v for v, n in zip(values, names, strict=True) if not n]
    if blank:
        raise ValueError(f"{what} has a blank entry {blank[0]!r}; remove it or type a name")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{what}: {name!r} appears twice; each prompt must be unique")
        seen.add(name)
    return names


def encode_text_query(model: Any, text: str) -> np.ndarray:
    """One free-text query as a (D,) float32 unit vector (no template added)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    return model.encode_texts([text])[0]
