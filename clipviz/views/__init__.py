"""Views: one widget per file, each a traitlets state object with a lazily built ``.widget``.

Views receive numpy arrays and strings and report user actions through traits
(``selection``, ``hover``, ``click``). They never import torch or clipviz.engine.
Names are resolved lazily so ``import clipviz.views`` stays light (no plotly, no anywidget).
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    "PredictionGrid": "clipviz.views.grid",
    "PromptPanel": "clipviz.views.prompt_panel",
    "SearchBox": "clipviz.views.search_box",
    "EmbeddingMap": "clipviz.views.embedding_map",
    "SimilarityHeatmap": "clipviz.views.heatmap",
    "MetricsPanel": "clipviz.views.metrics_panel",
    "SaliencyView": "clipviz.views.saliency_view",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'clipviz.views' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NAMES))
