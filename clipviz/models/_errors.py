"""Errors raised while loading models; each says what was wrong and what to do instead."""

from __future__ import annotations

__all__ = [
    "ModelLoadError",
    "UnknownModelError",
    "UnknownPretrainedError",
    "WeightsUnavailableError",
    "RandomWeightsError",
    "UnsafeCheckpointError",
    "PrecisionError",
    "PromptTruncatedWarning",
]


class ModelLoadError(Exception):
    """Base class of every clipviz model-loading error."""


class UnknownModelError(ModelLoadError, ValueError):
    """The model name is not an open_clip architecture nor a bundled clipviz model."""


class UnknownPretrainedError(ModelLoadError, ValueError):
    """``pretrained`` is neither a known tag for the model nor an existing file."""


class WeightsUnavailableError(ModelLoadError, RuntimeError):
    """Known weights that cannot be fetched (typically: offline and not in the local cache)."""


class RandomWeightsError(ModelLoadError, ValueError):
    """No weights were asked for; clipviz refuses to show an untrained model silently."""


class UnsafeCheckpointError(ModelLoadError, ValueError):
    """A checkpoint holds pickled Python objects besides tensors and was not unpickled."""


class PrecisionError(ModelLoadError, ValueError):
    """The precision is unknown or the device cannot run it."""


class PromptTruncatedWarning(UserWarning):
    """A prompt had more tokens than the model's context and was cut."""
