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
    "BadWeightsError",
    "DeviceError",
    "InvalidModelNameError",
    "PromptTruncatedWarning",
]


class ModelLoadError(Exception):
    """Base class of every clipviz model-loading error.

    Every mistake a user can make when naming or supplying a model (name, tag, file, folder,
    device, precision) raises a subclass; its message is one sentence saying what was wrong and
    what to do, fit to print as one line (the CLI does, with exit code 2).
    """


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


class BadWeightsError(ModelLoadError, ValueError):
    """A weights file that cannot be read, does not fit the architecture, or holds NaN/inf."""


class DeviceError(ModelLoadError, ValueError):
    """The device is unknown or not available on this machine."""


class InvalidModelNameError(ModelLoadError, TypeError):
    """``load_model`` was given something other than a model name (e.g. None)."""


class PromptTruncatedWarning(UserWarning):
    """A prompt had more tokens than the model's context and was cut."""
