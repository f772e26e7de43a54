"""Model names and tags for load_model: checks with close-match hints, and the error messages
for random weights and weights that cannot be fetched."""

from __future__ import annotations

import difflib
import os
from typing import Any

from clipviz.models import _bundled
from clipviz.models._errors import InvalidModelNameError, UnknownModelError

__all__ = [
    "check_architecture",
    "check_name",
    "looks_like_file",
    "offline_message",
    "pretrained_tags",
    "random_weights_message",
]

_CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")


def check_name(name: Any) -> str:
    if isinstance(name, (str, os.PathLike)):
        text = os.fspath(name)
        if isinstance(text, str) and text.strip():
            return text
    raise InvalidModelNameError(
        f"load_model() needs a model name, got {name!r}: pass a bundled model "
        f"({_bundled.bundled_names()[0]!r}, offline), an open_clip architecture with "
        "pretrained= (e.g. load_model('ViT-B-32', pretrained='openai')), 'hf-hub:org/repo' "
        "or 'local-dir:/path/to/folder'."
    )


def check_architecture(name: str) -> str:
    import open_clip

    arch = name.replace("/", "-")  # open_clip accepts "ViT-B/32" this way
    known = open_clip.list_models()
    if arch in known:
        return arch
    candidates = [*_bundled.bundled_names(), *known]
    lower = {c.lower(): c for c in candidates}
    if arch.lower() in lower:  # a case slip: say which spelling exists
        close = [lower[arch.lower()]]
    else:
        close = [lower[c] for c in difflib.get_close_matches(arch.lower(), lower, n=5, cutoff=0.5)]
    hint = f" Did you mean: {', '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownModelError(
        f"unknown model {name!r}.{hint} See clipviz.models.list_models() for names with "
        f"weights; {_bundled.bundled_names()[0]!r} is bundled and works offline."
    )


def looks_like_file(pretrained: str) -> bool:
    return (
        os.path.exists(pretrained)
        or os.sep in pretrained
        or "/" in pretrained
        or pretrained.lower().endswith(_CHECKPOINT_SUFFIXES)
    )


def pretrained_tags(arch: str) -> list[str]:
    import open_clip

    return list(open_clip.list_pretrained_tags_by_model(arch))


def random_weights_message(arch: str) -> str:
    tags = pretrained_tags(arch)
    tag_hint = f"a tag ({', '.join(repr(t) for t in tags[:5])}{', ...' if len(tags) > 5 else ''})"
    return (
        f"load_model({arch!r}) was given no weights, and an untrained CLIP gives meaningless "
        f"results. Pass pretrained= {tag_hint if tags else 'a checkpoint'} or a local file path, "
        "use the bundled offline model load_model('clipviz-shapes'), or pass allow_random=True "
        "if you really want random weights (e.g. for speed tests)."
    )


def offline_message(name: str, tag: str | None, err: BaseException) -> str:
    what = f"{name!r} with pretrained={tag!r}" if tag else f"{name!r}"
    call = (
        f"open_clip.create_model({name!r}, pretrained={tag!r})"
        if tag
        else (f"open_clip.create_model({name!r})")
    )
    offline = " (HF_HUB_OFFLINE is set)" if os.environ.get("HF_HUB_OFFLINE") else ""
    return (
        f"could not fetch the weights for {what}: they are not in the local cache and could not "
        f"be downloaded{offline}. To use them offline, run once on a machine with internet "
        f'`python -c "import open_clip; {call}"` and copy the Hugging Face cache '
        "(~/.cache/huggingface, or set HF_HOME), or download the checkpoint file and pass its "
        "path as pretrained=. The bundled model needs no download: "
        f"clipviz.load_model('clipviz-shapes'). (open_clip said: {str(err)[:300]})"
    )
