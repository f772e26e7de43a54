"""Model loading: any open_clip model, local checkpoints, hf-hub names, and the bundled model.

``load_model`` returns a :class:`ClipModel`, the encoder interface the rest of clipviz uses.
Importing this package is cheap; torch and open_clip are imported when a model is loaded.
"""

from __future__ import annotations

from clipviz.models._bundled import bundled_names
from clipviz.models._clip_model import ClipModel
from clipviz.models._errors import (
    BadWeightsError,
    DeviceError,
    InvalidModelNameError,
    ModelLoadError,
    PrecisionError,
    PromptTruncatedWarning,
    RandomWeightsError,
    UnknownModelError,
    UnknownPretrainedError,
    UnsafeCheckpointError,
    WeightsUnavailableError,
)
from clipviz.models._loading import list_models, load_model, resolve_device

__all__ = [
    "BadWeightsError",
    "ClipModel",
    "DeviceError",
    "InvalidModelNameError",
    "ModelLoadError",
    "PrecisionError",
    "PromptTruncatedWarning",
    "RandomWeightsError",
    "UnknownModelError",
    "UnknownPretrainedError",
    "UnsafeCheckpointError",
    "WeightsUnavailableError",
    "bundled_names",
    "list_models",
    "load_model",
    "resolve_device",
]
