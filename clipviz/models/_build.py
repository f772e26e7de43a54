"""Build a ClipModel through open_clip, turning what open_clip logs or raises into clipviz errors.

open_clip reports several user mistakes only as a log line (weights that could not be found:
the model is then initialised randomly) or as an internal exception (``AssertionError: text
pos_embed width changed!``, a raw ``SafetensorError``, torch's ``weights_only`` advice). Here
each becomes one :class:`~clipviz.models.ModelLoadError` subclass with one clear sentence.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import pickle
from collections.abc import Iterator
from typing import Any

from clipviz.models._clip_model import ClipModel
from clipviz.models._errors import BadWeightsError, UnsafeCheckpointError, WeightsUnavailableError

__all__ = ["create", "model_key", "unsafe_message"]

# RuntimeError texts of torch / open_clip that mean "these weights do not fit or are damaged"
_MISFIT_MARKERS = ("state_dict", "size mismatch", "PytorchStreamReader", "zip archive")


def create(
    name: str,
    pretrained: str | None,
    dev: Any,
    precision: str,
    identity: str,
    cache_dir: str | None,
    *,
    source: str | None,
    **extra: Any,
) -> ClipModel:
    """Build the model; ``source`` (a file, folder or hub repo) is None only for random init.

    With a source, weights are required (open_clip's ``require_pretrained``): missing weights
    raise instead of giving a randomly initialised model.
    """
    import open_clip

    extra = {k: v for k, v in extra.items() if v is not None}
    expect_weights = source is not None
    with _open_clip_log() as said:
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                name,
                pretrained=pretrained,
                device=dev,
                precision=precision,
                cache_dir=cache_dir,
                weights_only=True,
                pretrained_text=expect_weights,  # no hub downloads for random init
                require_pretrained=expect_weights,
                **extra,
            )
        except Exception as err:  # noqa: BLE001 - mapped by type below, anything else re-raised
            if not expect_weights:
                raise
            _raise_as_clipviz_error(err, name, source, said)
            raise
    if expect_weights:
        _check_finite(model, source)
    pp_cfg = dict(getattr(model.visual, "preprocess_cfg", {}))
    return ClipModel(
        model,
        preprocess,
        open_clip.get_tokenizer(name, cache_dir=cache_dir),
        name=name,
        pretrained=pretrained,
        key=model_key(name, identity, pp_cfg, precision),
        device=dev,
        precision=precision,
    )


def _raise_as_clipviz_error(err: Exception, name: str, source: str, said: list[str]) -> None:
    """Raise the clipviz error for an exception open_clip raised while loading weights."""
    from safetensors import SafetensorError

    if isinstance(err, pickle.UnpicklingError):
        # `from None`: torch's message advises weights_only=False, which would run the payload
        raise UnsafeCheckpointError(unsafe_message(source)) from None
    if isinstance(err, SafetensorError):
        raise BadWeightsError(
            f"{source!r} is not a readable safetensors file ({err}): it is truncated, "
            "corrupted or not a weights file; download or export it again."
        ) from None
    misfit = isinstance(err, (AssertionError, KeyError, StopIteration, IndexError, EOFError))
    if misfit or (
        isinstance(err, RuntimeError) and any(m in str(err) for m in _MISFIT_MARKERS)
    ):
        detail = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise BadWeightsError(
            f"the weights in {source!r} do not fit the {name!r} architecture or are damaged "
            f"({detail}); pass the checkpoint that was saved for this model."
        ) from None
    if isinstance(err, RuntimeError) and (
        "Required pretrained weights" in str(err) or "download" in str(err).lower()
    ):
        reason = "; ".join(said)[:400] or str(err)[:400]
        raise WeightsUnavailableError(
            f"no weights could be loaded for {source!r}, and clipviz does not fall back to "
            f"random weights (open_clip said: {reason})"
        ) from err


def _check_finite(model: Any, source: str) -> None:
    """Refuse weights with NaN or inf values: every embedding would be NaN (or meaningless)."""
    import torch

    # parameters only: buffers such as the causal attn_mask hold -inf by design
    bad = [
        name
        for name, t in model.named_parameters()
        if t.is_floating_point() and not bool(torch.isfinite(t).all())
    ]
    if bad:
        raise BadWeightsError(
            f"the weights in {source!r} hold NaN or infinite values in {len(bad)} tensor(s), "
            f"e.g. {bad[0]!r}; the file is damaged or training diverged, use another checkpoint."
        )


def unsafe_message(source: str) -> str:
    return (
        f"{source!r} contains pickled Python objects besides tensors, so it was not loaded "
        "(unpickling can run arbitrary code). Re-save it as a plain state dict or, better, "
        "as .safetensors (safetensors.torch.save_file(state_dict, 'model.safetensors'))."
    )


@contextlib.contextmanager
def _open_clip_log() -> Iterator[list[str]]:
    """Collect open_clip's root-logger warnings while it builds a model, instead of printing.

    They are not thrown away: when loading fails they become part of the clipviz error, and
    every failure they describe (no weights found) is also made an error by require_pretrained.
    """
    said: list[str] = []

    def keep(record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING and "open_clip" in record.pathname:
            said.append(record.getMessage())
            return False
        return True

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield said
    finally:
        root.removeFilter(keep)


def model_key(name: str, identity: str, preprocess_cfg: dict[str, Any], precision: str) -> str:
    """sha256 over a typed preamble, the name, the weights, the preprocessing and the precision.

    Precision is part of the identity: bf16 vectors differ from fp32 ones by ~1e-3, so a cache
    shared between them would hand one precision the other's vectors.
    """
    payload = json.dumps(
        {
            "v": 2,
            "name": name,
            "weights": identity,
            "preprocess": preprocess_cfg,
            "precision": precision,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()
