"""clipviz: an interactive Jupyter workbench for CLIP models.

Type prompts and see zero-shot predictions on an image grid, images and prompts in one joint
embedding map, and an images-by-prompts similarity heatmap, all linked::

    import clipviz
    model = clipviz.load_model("clipviz-shapes")          # bundled, offline
    images = clipviz.datasets.shapes(200).to_imageset()
    clipviz.Workbench(images, model=model, classnames=["circle", "square", "star"])

Heavy dependencies (torch, open_clip, umap, ipywidgets) are imported only when a name that needs
them is first used, so ``import clipviz`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it (resolved on first access, PEP 562)
_LAZY = {
    "load_model": "clipviz.models",
    "list_models": "clipviz.models",
    "ImageSet": "clipviz.engine",
    "embed_images": "clipviz.engine",
    "embed_prompts": "clipviz.engine",
    "search": "clipviz.engine",
    "open_store": "clipviz.engine.store",
    "ImageEmbeddings": "clipviz.compute",
    "PromptEmbeddings": "clipviz.compute",
    "Predictions": "clipviz.compute",
    "Metrics": "clipviz.compute",
    "Projection": "clipviz.compute",
    "zero_shot": "clipviz.compute",
    "similarity": "clipviz.compute",
    "evaluate": "clipviz.compute",
    "project": "clipviz.compute",
    "get_templates": "clipviz.compute",
    "Workbench": "clipviz.app",
    "saliency": "clipviz.models.saliency",
    **dict.fromkeys(("neighbour_overlap", "calibration", "fit_temperature"), "clipviz.compute"),
    **dict.fromkeys(("export_metrics", "export_predictions", "rescale"), "clipviz.compute"),
    "Comparison": "clipviz.app.compare",
}
_SUBMODULES = {"datasets", "compute", "engine", "models", "views", "app"}

__all__ = sorted([*_LAZY, *_SUBMODULES, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # cache: later lookups skip __getattr__
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"clipviz.{name}")
    raise AttributeError(f"module 'clipviz' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # names for type checkers and IDEs; never executed
    from clipviz.app import Workbench
    from clipviz.compute import (
        ImageEmbeddings,
        Metrics,
        Predictions,
        Projection,
        PromptEmbeddings,
        evaluate,
        get_templates,
        project,
        similarity,
        zero_shot,
    )
    from clipviz.engine import ImageSet, embed_images, embed_prompts, search
    from clipviz.models import list_models, load_model
