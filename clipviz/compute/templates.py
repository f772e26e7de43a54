"""Prompt template sets, stored as plain data.

A template is a string with exactly one ``{}`` where the class name goes. The named sets are
copied verbatim from open_clip's ``zero_shot_metadata.py`` (which stores them as lambdas); a test
checks that formatting these strings reproduces open_clip's exactly.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# OpenAI's 80 ImageNet prompt templates (CLIP paper, notebooks/Prompt_Engineering_for_ImageNet.ipynb),
# in open_clip's order (OPENAI_IMAGENET_TEMPLATES).
OPENAI_IMAGENET_TEMPLATES: tuple[str, ...] = (
    "a bad photo of a {}.",
    "a photo of many {}.",
    "a sculpture of a {}.",
    "a photo of the hard to see {}.",
    "a low resolution photo of the {}.",
    "a rendering of a {}.",
    "graffiti of a {}.",
    "a bad photo of the {}.",
    "a cropped photo of the {}.",
    "a tattoo of a {}.",
    "the embroidered {}.",
    "a photo of a hard to see {}.",
    "a bright photo of a {}.",
    "a photo of a clean {}.",
    "a photo of a dirty {}.",
    "a dark photo of the {}.",
    "a drawing of a {}.",
    "a photo of my {}.",
    "the plastic {}.",
    "a photo of the cool {}.",
    "a close-up photo of a {}.",
    "a black and white photo of the {}.",
    "a painting of the {}.",
    "a painting of a {}.",
    "a pixelated photo of the {}.",
    "a sculpture of the {}.",
    "a bright photo of the {}.",
    "a cropped photo of a {}.",
    "a plastic {}.",
    "a photo of the dirty {}.",
    "a jpeg corrupted photo of a {}.",
    "a blurry photo of the {}.",
    "a photo of the {}.",
    "a good photo of the {}.",
    "a rendering of the {}.",
    "a {} in a video game.",
    "a photo of one {}.",
    "a doodle of a {}.",
    "a close-up photo of the {}.",
    "a photo of a {}.",
    "the origami {}.",
    "the {} in a video game.",
    "a sketch of a {}.",
    "a doodle of the {}.",
    "a origami {}.",
    "a low resolution photo of a {}.",
    "the toy {}.",
    "a rendition of the {}.",
    "a photo of the clean {}.",
    "a photo of a large {}.",
    "a rendition of a {}.",
    "a photo of a nice {}.",
    "a photo of a weird {}.",
    "a blurry photo of a {}.",
    "a cartoon {}.",
    "art of a {}.",
    "a sketch of the {}.",
    "a embroidered {}.",
    "a pixelated photo of a {}.",
    "itap of the {}.",
    "a jpeg corrupted photo of the {}.",
    "a good photo of a {}.",
    "a plushie {}.",
    "a photo of the nice {}.",
    "a photo of the small {}.",
    "a photo of the weird {}.",
    "the cartoon {}.",
    "art of the {}.",
    "a drawing of the {}.",
    "a photo of the large {}.",
    "a black and white photo of a {}.",
    "the plushie {}.",
    "a dark photo of a {}.",
    "itap of a {}.",
    "graffiti of the {}.",
    "a toy {}.",
    "itap of my {}.",
    "a photo of a cool {}.",
    "a photo of a small {}.",
    "a tattoo of the {}.",
)

# open_clip's short set (SIMPLE_IMAGENET_TEMPLATES), the subset the CLIP authors found best.
SIMPLE_IMAGENET_TEMPLATES: tuple[str, ...] = (
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
)

SINGLE_TEMPLATE: tuple[str, ...] = ("a photo of a {}.",)

_TEMPLATE_SETS: dict[str, tuple[str, ...]] = {
    "single": SINGLE_TEMPLATE,
    "simple": SIMPLE_IMAGENET_TEMPLATES,
    "openai_imagenet": OPENAI_IMAGENET_TEMPLATES,
}


def list_template_sets() -> list[str]:
    """Names accepted by :func:`get_templates`.

    Returns
    -------
    list of str
        ``["single", "simple", "openai_imagenet"]``.
    """
    return list(_TEMPLATE_SETS)


def get_templates(name_or_list: str | Iterable[str]) -> list[str]:
    """Resolve a template set name, or validate a user's own list of templates.

    Parameters
    ----------
    name_or_list : str or iterable of str
        A set name (see :func:`list_template_sets`), or templates such as
        ``["a photo of a {}.", "a drawing of a {}."]``, each with exactly one ``{}``.
        A single string that contains ``{}`` is taken as a one-template list.

    Returns
    -------
    list of str
        A fresh list (safe to modify).

    Raises
    ------
    ValueError
        Unknown set name, an empty list, or a template without exactly one ``{}``.
    TypeError
        A template that is not a string.
    """
    if isinstance(name_or_list, str):
        if name_or_list in _TEMPLATE_SETS:
            return list(_TEMPLATE_SETS[name_or_list])
        if "{}" not in name_or_list:
            close = difflib.get_close_matches(name_or_list, list(_TEMPLATE_SETS), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"Unknown template set {name_or_list!r}.{hint} Known sets: {', '.join(_TEMPLATE_SETS)}; "
                "or pass your own templates, each with one '{}' for the class name, "
                "e.g. ['a photo of a {}.']."
            )
        name_or_list = [name_or_list]
    templates = list(name_or_list)
    if not templates:
        raise ValueError(
            "The template list is empty. Pass at least one template such as 'a photo of a {}.', "
            f"or a set name: {', '.join(_TEMPLATE_SETS)}."
        )
    for i, template in enumerate(templates):
        if not isinstance(template, str):
            raise TypeError(
                f"Template {i} is {type(template).__name__} ({template!r}); templates must be "
                "strings with one '{}' for the class name."
            )
        _check_template(template, i)
    return templates


def _check_template(template: str, index: int) -> None:
    count = template.count("{}")
    if count != 1:
        raise ValueError(
            f"Template {index} ({template!r}) contains {count} '{{}}' placeholders; it needs exactly "
            "one, where the class name goes, e.g. 'a photo of a {}.'."
        )
    try:
        template.format("x")
    except (IndexError, KeyError, ValueError) as err:
        # other braces such as '{0}' or '{name}' would break str.format on the class name
        raise ValueError(
            f"Template {index} ({template!r}) cannot be formatted: {err}. Use only one "
            "'{}' and write a literal brace as '{{' or '}}'."
        ) from err
