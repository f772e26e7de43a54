"""load_model: any open_clip architecture and weights (tag, local file, hf-hub) or a bundled model.

The model is built by ``open_clip.create_model_and_transforms``; this module adds what clipviz
needs around it: name and tag checks with helpful errors (``_names``), refusal of silent random
weights, device and precision choice (``_device``), safe checkpoint loading, and a key that
identifies the vector space.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clipviz.models import _bundled, _manifest
from clipviz.models._build import create
from clipviz.models._clip_model import ClipModel
from clipviz.models._deferred import DeferredClipModel, manifest_of
from clipviz.models._device import can_defer, checked_device, resolve_device
from clipviz.models._errors import (
    BadWeightsError,
    ModelLoadError,
    RandomWeightsError,
    UnknownPretrainedError,
    WeightsUnavailableError,
)
from clipviz.models._names import (
    check_architecture,
    check_name,
    looks_like_file,
    offline_message,
    pretrained_tags,
    random_weights_message,
)

__all__ = ["load_model", "list_models", "resolve_device"]


def list_models() -> list[tuple[str, str | None]]:
    """``(name, pretrained)`` pairs :func:`load_model` accepts by name.

    The bundled models come first with ``pretrained=None`` (they work offline), then every
    ``open_clip.list_pretrained()`` pair (these download weights on first use).
    """
    import open_clip

    return [(n, None) for n in _bundled.bundled_names()] + list(open_clip.list_pretrained())


def load_model(
    name: str,
    pretrained: str | os.PathLike | None = None,
    *,
    device: str = "auto",
    precision: str = "fp32",
    allow_random: bool = False,
    cache_dir: str | None = None,
    defer: bool = True,
) -> ClipModel:
    """Load a CLIP model as a :class:`ClipModel`.

    Parameters
    ----------
    name : str
        A bundled model (``"clipviz-shapes"``, offline), an open_clip architecture
        (``"ViT-B-32"``, see ``open_clip.list_models()``), ``"hf-hub:org/repo"`` or
        ``"local-dir:/path"`` (a folder with ``open_clip_config.json`` and weights).
    pretrained : str or path, optional
        For an architecture name: a tag (``"openai"``, see ``clipviz.models.list_models()``) or
        a local checkpoint (``.safetensors``; ``.pt``/``.bin`` are loaded with
        ``weights_only=True``). Required unless ``allow_random=True``.
    device : str
        ``"auto"`` (CUDA, then MPS, then CPU) or any torch device string.
    precision : str
        ``"fp32"``, ``"fp16"`` (GPU only) or ``"bf16"``.
    allow_random : bool
        Build the architecture with (deterministic, seed 0) random weights when no weights are
        given. Its embeddings are meaningless; useful for speed tests only.
    cache_dir : str, optional
        Where open_clip downloads weights (default: the Hugging Face cache).
    defer : bool
        For a model in a local file (bundled, a checkpoint path, ``local-dir:``) on the CPU
        or ``device="auto"``: when this exact model (weights and config checksums, precision,
        library versions) was loaded before, return it at once, without importing torch, and
        build it on first use (see ``ClipModel.loaded``). A reopened notebook whose vectors are
        all cached then never builds it. ``False`` builds it now.

    Returns
    -------
    ClipModel
    """
    name = check_name(name)
    defer = defer and can_defer(device, precision)
    if name in _bundled.BUNDLED:
        return _load_bundled(name, pretrained, device, precision, defer)
    if name.startswith("local-dir:"):
        return _load_local_dir(name, device, precision, cache_dir, defer)
    if name.startswith("hf-hub:"):
        return _load_hub(name, checked_device(device, precision), precision, cache_dir)
    if pretrained is not None and looks_like_file(os.fspath(pretrained)):
        return _load_file(name, os.fspath(pretrained), device, precision, defer)
    import torch

    dev = checked_device(device, precision)
    arch = check_architecture(name)
    if pretrained is None:
        if not allow_random:
            raise RandomWeightsError(random_weights_message(arch))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # same "random" model in every process, so caches stay valid
            ident = f"random-init-seed0:{arch}"
            return create(arch, None, dev, precision, ident, cache_dir, source=None)
    return _load_tag(arch, os.fspath(pretrained), dev, precision, cache_dir)


def _deferred_or_built(
    build: Callable[[], ClipModel],
    parts: dict[str, Any],
    *,
    defer: bool,
    name: str,
    pretrained: str | None,
    precision: str,
    device: Any,
) -> ClipModel:
    """A DeferredClipModel when a manifest for ``parts`` exists, else the model built now (and
    its manifest saved, so that the next process may defer)."""
    key = _manifest.manifest_key(**parts, precision=precision)
    saved = _manifest.read(key) if defer else None
    if saved is not None:
        return DeferredClipModel(
            saved,
            build,
            manifest_key=key,
            name=name,
            pretrained=pretrained,
            precision=precision,
            device=str(device),
        )
    model = build()
    _manifest.write(key, manifest_of(model))
    return model


def _load_bundled(
    name: str, pretrained: Any, device: Any, precision: str, defer: bool
) -> ClipModel:
    config_path, weights = _bundled.bundled_files(name)
    if pretrained is not None and Path(os.fspath(pretrained)).resolve() != weights.resolve():
        raise UnknownPretrainedError(
            f"{name!r} is a bundled model with its own weights; call load_model({name!r}) "
            f"without pretrained (got pretrained={os.fspath(pretrained)!r})"
        )
    identity = f"file-sha256:{_file_sha256(weights)}"

    def build() -> ClipModel:
        dev = checked_device(device, precision)
        cfg = _bundled.register(name, config_path)
        pp = cfg.get("preprocess_cfg", {})
        extra = {
            "image_mean": pp.get("mean"),
            "image_std": pp.get("std"),
            "image_interpolation": pp.get("interpolation"),
            "image_resize_mode": pp.get("resize_mode"),
        }
        return create(
            name, str(weights), dev, precision, identity, None, source=str(weights), **extra
        )

    parts = {"kind": "bundled", "name": name, "weights": identity}
    parts["config"] = _file_sha256(config_path)
    return _deferred_or_built(
        build,
        parts,
        defer=defer,
        name=name,
        pretrained=str(weights),
        precision=precision,
        device=device,
    )


def _load_file(name: str, path: str, device: Any, precision: str, defer: bool) -> ClipModel:
    p = Path(path).expanduser()
    arch = name.replace("/", "-")  # open_clip accepts "ViT-B/32" this way
    if not p.is_file():
        arch = check_architecture(name)
        raise UnknownPretrainedError(
            f"pretrained={path!r} looks like a file path but no such file exists; pass an "
            f"existing checkpoint (.safetensors, .pt, .bin) or a tag such as "
            f"{pretrained_tags(arch)[:3] or ['openai']}"
        )
    identity = f"file-sha256:{_file_sha256(p)}"

    def build() -> ClipModel:
        dev = checked_device(device, precision)
        checked = check_architecture(name)
        return create(checked, str(p), dev, precision, identity, None, source=str(p))

    parts = {"kind": "file", "name": arch, "weights": identity}
    return _deferred_or_built(
        build, parts, defer=defer, name=arch, pretrained=str(p), precision=precision, device=device
    )


def _load_tag(arch: str, tag: str, dev: Any, precision: str, cache_dir: str | None) -> ClipModel:
    import open_clip

    if not open_clip.get_pretrained_cfg(arch, tag):
        tags = pretrained_tags(arch)
        shown = ", ".join(repr(t) for t in tags[:12]) + (
            f", ... ({len(tags)} in all)" if len(tags) > 12 else ""
        )
        have = f"its tags are {shown}" if tags else "open_clip has no pretrained weights for it"
        raise UnknownPretrainedError(
            f"unknown pretrained tag {tag!r} for {arch!r}: {have}. A local checkpoint file "
            "path also works as pretrained=."
        )
    try:
        return create(
            arch, tag, dev, precision, f"tag:{tag.lower()}", cache_dir, source=f"{arch}/{tag}"
        )
    except (RuntimeError, OSError) as err:
        if isinstance(err, ModelLoadError) and not isinstance(err, WeightsUnavailableError):
            raise
        raise WeightsUnavailableError(offline_message(arch, tag, err)) from err


def _load_local_dir(
    name: str, device: Any, precision: str, cache_dir: str | None, defer: bool
) -> ClipModel:
    folder = Path(name.split(":", 1)[1]).expanduser()
    ckpt = _local_checkpoint(folder)
    identity = f"file-sha256:{_file_sha256(ckpt)}"

    def build() -> ClipModel:
        dev = checked_device(device, precision)
        try:
            return create(name, None, dev, precision, identity, cache_dir, source=str(ckpt))
        except ValueError as err:  # open_clip: an unreadable open_clip_config.json
            if isinstance(err, ModelLoadError):
                raise
            raise BadWeightsError(f"cannot use {name!r}: {err}") from None

    parts = {"kind": "local-dir", "name": name, "weights": identity}
    parts["config"] = _file_sha256(folder / _bundled.CONFIG_FILE)
    return _deferred_or_built(
        build, parts, defer=defer, name=name, pretrained=None, precision=precision, device=device
    )


def _load_hub(name: str, dev: Any, precision: str, cache_dir: str | None) -> ClipModel:
    ident = name.split(":", 1)[1]
    try:
        identity = f"hf-hub:{ident}:{_hf_revision(ident, cache_dir)}"
        return create(name, None, dev, precision, identity, cache_dir, source=name)
    except (RuntimeError, OSError) as err:
        if isinstance(err, ModelLoadError) and not isinstance(err, WeightsUnavailableError):
            raise
        raise WeightsUnavailableError(offline_message(name, None, err)) from err


# open_clip's preference order for a folder's checkpoint (factory._find_checkpoint_in_dir):
# the file hashed for the key must be the file open_clip loads
_LOCAL_WEIGHTS = (
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.safetensors",
    "open_clip_pytorch_model.bin",
    "open_clip_pytorch_model.pth",
    "model.safetensors",
    "pytorch_model.bin",
    "pytorch_model.pth",
    "model.pth",
)


def _local_checkpoint(folder: Path) -> Path:
    if not (folder / _bundled.CONFIG_FILE).is_file():
        what = "no such folder" if not folder.is_dir() else f"no {_bundled.CONFIG_FILE} in it"
        raise UnknownPretrainedError(
            f"cannot use 'local-dir:{folder}': {what}; pass a folder holding "
            f"{_bundled.CONFIG_FILE} and the weights (as written by clipviz.train.export)"
        )
    ckpt = next((folder / f for f in _LOCAL_WEIGHTS if (folder / f).is_file()), None)
    if ckpt is None:
        raise UnknownPretrainedError(
            f"no weights in {str(folder)!r}: expected one of {list(_LOCAL_WEIGHTS)} next to "
            f"{_bundled.CONFIG_FILE}"
        )
    return ckpt


def _file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _hf_revision(repo: str, cache_dir: str | None) -> str:
    """The cached snapshot of a hub repo (a commit hash), so a new upload is a new key."""
    from open_clip.pretrained import download_pretrained_from_hf

    path = Path(
        download_pretrained_from_hf(repo, filename="open_clip_config.json", cache_dir=cache_dir)
    )
    return path.parent.name
