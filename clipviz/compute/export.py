"""Writing results where other tools read them: CLIP_benchmark JSON, Parquet predictions.

``export_metrics`` writes the JSON that ``clip_benchmark eval`` writes for
``zeroshot_classification`` (keys ``dataset``, ``model``, ``pretrained``, ``task``,
``metrics`` = {acc1, acc5, mean_per_class_recall}, ``language``, optionally ``classnames`` and
``templates``), so ``clip_benchmark build`` can put clipviz runs in the same table.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

import numpy as np

from clipviz._atomic import write_atomic
from clipviz.compute.metrics import Metrics, evaluate
from clipviz.compute.zeroshot import Predictions

_CLIP_BENCHMARK_METRICS = ("acc1", "acc5", "mean_per_class_recall")


def export_metrics(
    result: Metrics | Predictions,
    path: str | os.PathLike[str] | None = None,
    *,
    dataset: str = "clipviz",
    model: str | None = None,
    pretrained: str = "",
    language: str = "en",
    classnames: list[str] | None = None,
    templates: list[str] | None = None,
) -> dict[str, Any]:
    """Metrics in CLIP_benchmark's JSON layout, optionally written to ``path``.

    Parameters
    ----------
    result : Metrics or Predictions
        Metrics from ``clipviz.evaluate``, or labelled predictions (evaluated here).
    path : str or PathLike, optional
        JSON file to write (parent folders are created; written to a temp file, then renamed).
    dataset, model, pretrained, language : str
        CLIP_benchmark's run identifiers. ``model`` defaults to the predictions' model name.
    classnames, templates : list of str, optional
        Dumped like ``--dump_classnames`` / ``--dump_templates`` (classnames default to the
        predictions' when given Predictions).

    Returns
    -------
    dict
        The JSON document. acc5 is NaN with fewer than 5 classes and is written as ``NaN``,
        exactly as CLIP_benchmark's ``json.dump`` does.
    """
    if isinstance(result, Predictions):
        metrics = evaluate(result)
        model = model or (result.model.name if result.model is not None else "")
        classnames = classnames if classnames is not None else list(result.classnames)
    elif isinstance(result, Metrics):
        metrics = result
    else:
        raise TypeError(
            f"export_metrics needs clipviz Metrics or Predictions, got {type(result).__name__}."
        )
    scalars = metrics.as_dict()
    doc: dict[str, Any] = {
        "dataset": str(dataset),
        "model": str(model or ""),
        "pretrained": str(pretrained),
        "task": "zeroshot_classification",
        "metrics": {name: float(scalars[name]) for name in _CLIP_BENCHMARK_METRICS},
        "language": str(language),
    }
    if classnames is not None:
        doc["classnames"] = [str(c) for c in classnames]
    if templates is not None:
        doc["templates"] = [str(t) for t in templates]
    if path is not None:
        write_atomic(pathlib.Path(path), json.dumps(doc))
    return doc


def predictions_frame(pred: Predictions, *, probs: bool = False) -> Any:
    """Predictions as a DataFrame: ``Predictions.to_pandas()`` plus, optionally, every prob.

    Parameters
    ----------
    pred : Predictions
    probs : bool
        Add one ``prob:<classname>`` column per class (N x C floats).

    Returns
    -------
    pandas.DataFrame
        Columns id, label, predicted, confidence, correct, top1.., top1_prob.., logit_scale,
        model.
    """
    frame = pred.to_pandas()
    frame["logit_scale"] = np.float32(pred.logit_scale)
    frame["model"] = pred.model.name if pred.model is not None else None
    if probs:
        import pandas as pd

        cols = pd.DataFrame(pred.probs, columns=[f"prob:{c}" for c in pred.classnames])
        frame = pd.concat([frame, cols], axis=1)
    return frame


def export_predictions(
    pred: Predictions, path: str | os.PathLike[str], *, probs: bool = False
) -> pathlib.Path:
    """Write :func:`predictions_frame` to a Parquet file (temp file, then rename).

    Returns
    -------
    pathlib.Path
        The file written.
    """
    target = pathlib.Path(path)
    if target.suffix.lower() not in (".parquet", ".pq"):
        raise ValueError(
            f"export_predictions writes Parquet; give a .parquet path, got {str(target)!r}."
        )
    frame = predictions_frame(pred, probs=probs)
    return write_atomic(target, lambda f: frame.to_parquet(f, index=False))
