"""Pure numpy compute on embeddings: templates, ensembling, zero-shot, similarity, search,
metrics, projection.

Never imports torch, ipywidgets, clipviz.engine or clipviz.models (a test checks it).
"""

from __future__ import annotations

from clipviz.compute import templates, types
from clipviz.compute.calibration import Calibration, calibration, fit_temperature, rescale
from clipviz.compute.ensemble import ensemble
from clipviz.compute.export import export_metrics, export_predictions, predictions_frame
from clipviz.compute.metrics import Metrics, evaluate
from clipviz.compute.neighbours import neighbour_overlap
from clipviz.compute.projection import Projection, center_modalities, project
from clipviz.compute.search import nearest
from clipviz.compute.templates import get_templates, list_template_sets
from clipviz.compute.types import ImageEmbeddings, ModelInfo, PromptEmbeddings
from clipviz.compute.zeroshot import Predictions, similarity, zero_shot

__all__ = [
    "Calibration",
    "calibration",
    "export_metrics",
    "export_predictions",
    "fit_temperature",
    "neighbour_overlap",
    "predictions_frame",
    "rescale",
    "ImageEmbeddings",
    "Metrics",
    "ModelInfo",
    "Predictions",
    "Projection",
    "PromptEmbeddings",
    "center_modalities",
    "ensemble",
    "evaluate",
    "get_templates",
    "list_template_sets",
    "nearest",
    "project",
    "similarity",
    "templates",
    "types",
    "zero_shot",
]
