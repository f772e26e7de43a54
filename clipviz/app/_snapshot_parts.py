"""What both snapshots are made of: the save_html page and the notebook's static twin.

The thumbnails of the cells shown, the metrics tables and the prediction grid (cells styled by the
live grid's own stylesheet). Every string from users or files goes through
``clipviz.views._html.escape`` here.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from importlib import resources
from typing import Any

import numpy as np

from clipviz.views._html import escape

__all__ = ["grid_css", "grid_html", "metrics_html", "workbench_thumbnails"]


def workbench_thumbnails(
    workbench: Any, ids: Sequence[str], size: int
) -> tuple[list[bytes | None] | None, str]:
    """Thumbnails of ``ids`` only (the cells shown), from the workbench's lazy store."""
    from clipviz.engine.thumbnails import ThumbnailStore, thumbnail_mime

    store = getattr(workbench, "thumbnails", None)  # the grid's store: made once, disk-cached
    own_ids = list(getattr(workbench, "ids", None) or [])
    if store is None or len(store) != len(own_ids):
        images = getattr(workbench, "images", None)
        if images is None or not hasattr(images, "load"):
            return None, "image/webp"
        store, own_ids = ThumbnailStore(images, size=size, cache=False), list(images.ids)
    index = {i: n for n, i in enumerate(own_ids)}
    wanted = [index[i] for i in ids if i in index]
    made = dict(zip(wanted, store.page(wanted), strict=True))
    return [made.get(index.get(i, -1)) for i in ids], thumbnail_mime("webp")


def metrics_html(metrics: Any, metrics_b: Any = None) -> str:
    if metrics is None:
        return ""
    runs = [("A", metrics)] + ([("B", metrics_b)] if metrics_b is not None else [])
    names = [
        ("top-1 accuracy", "acc1"),
        ("top-5 accuracy", "acc5"),
        ("mean per-class recall", "mean_per_class_recall"),
    ]
    head = "<tr><th></th>" + "".join(f"<th>{n}</th>" for n, _ in runs) + "</tr>"
    rows = "".join(
        f"<tr><td>{label}</td>"
        + "".join(f"<td>{_pct(getattr(m, attr))}</td>" for _, m in runs)
        + "</tr>"
        for label, attr in names
    )
    rows += "<tr><td>images scored</td>" + "".join(f"<td>{m.n}</td>" for _, m in runs) + "</tr>"
    out = f'<h2>Metrics</h2><table class="cv-table cv-metrics">{head}{rows}</table>'
    if metrics_b is not None:
        table = metrics.compare(metrics_b, names=("a", "b"))
        cols = [("accuracy_a", "accuracy A"), ("accuracy_b", "accuracy B"), ("difference", "B - A")]
        rows_of = [(name, [row[c] for c, _ in cols]) for name, row in table.iterrows()]
    else:
        cols = [("n", "images"), ("accuracy", "accuracy"), ("precision", "precision")]
        rows_of = _per_class_rows(metrics, [c for c, _ in cols])
    if not rows_of:
        return out
    head = "<tr><th>class</th>" + "".join(f"<th>{title}</th>" for _, title in cols) + "</tr>"
    body = "".join(
        f"<tr><td>{escape(str(name))}</td>"
        + "".join(f"<td>{_cell_value(col, v)}</td>" for (col, _), v in zip(cols, values, strict=True))
        + "</tr>"
        for name, values in rows_of
    )
    return out + f'<table class="cv-table cv-per-class">{head}{body}</table>'


def _per_class_rows(metrics: Any, columns: list[str]) -> list[tuple[Any, list[Any]]]:
    """(class, values) per class; a ``Metrics`` object's arrays need no pandas (the snapshot is
    written while a reopened workbench is first displayed, and pandas costs 0.7 s to import)."""
    arrays = getattr(metrics, "class_columns", None)
    if arrays is not None:
        picked = [arrays[c] for c in columns]
        return [(name, [a[i] for a in picked]) for i, name in enumerate(metrics.classnames)]
    table = getattr(metrics, "per_class", None)
    if table is None:
        return []
    return [(name, [row[c] for c in columns]) for name, row in table.iterrows()]


def _cell_value(column: str, value: Any) -> str:
    if column == "n":
        return str(int(value))
    if column == "difference" and value is not None and np.isfinite(value):
        return f"{float(value) * 100:+.1f} pp"
    return _pct(value)


def _pct(x: Any) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{float(x):.1%}"


def grid_html(
    predictions: Any, thumbnails: Sequence[bytes | None] | None, mime: str, max_images: int
) -> str:
    n = len(predictions.ids)
    shown = min(n, max_images)
    names = list(predictions.classnames)
    correct, judged = _judged(predictions)
    cells = []
    for i in range(shown):
        thumb = thumbnails[i] if thumbnails is not None else None
        ok = None if correct is None or not judged[i] else bool(correct[i])
        label = predictions.labels[i] if predictions.labels is not None else None
        topk = zip(predictions.topk_indices[i], predictions.topk_probs[i], strict=True)
        cells.append(_cell(predictions.ids[i], thumb, mime, names, topk, label, ok))
    note = f" (first {shown} of {n})" if shown < n else ""
    toggle = ""
    if correct is not None:
        wrong = int((~correct[:shown] & judged[:shown]).sum())
        toggle = (
            f'<input type="checkbox" id="cv-mistakes"><label for="cv-mistakes"> '
            f"mistakes only ({wrong} of {shown})</label>"
        )
    return (
        f"<h2>Predictions{note}</h2><div class='clipviz-grid-wrap'>{toggle}"
        f"<div class='clipviz-grid'>{''.join(cells)}</div></div>"
    )


def _judged(predictions: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Correct per image, and whether it can be judged at all: as in the live grid, an image
    whose true label no prompt names is neither right nor wrong."""
    correct = predictions.correct
    if correct is None or predictions.labels is None:
        return None, None
    names = set(predictions.classnames)
    judged = np.fromiter((label in names for label in predictions.labels), bool, len(correct))
    return np.asarray(correct, dtype=bool), judged


def _cell(
    image_id: str,
    thumb: bytes | None,
    mime: str,
    names: list[str],
    topk: Any,
    label: str | None,
    ok: bool | None,
) -> str:
    state = "" if ok is None else (" clipviz-correct" if ok else " clipviz-wrong")
    src = f"data:{mime};base64,{base64.b64encode(thumb).decode('ascii')}" if thumb else ""
    img = f'<img class="clipviz-thumb" src="{src}" alt="{escape(image_id)}">' if src else ""
    rows = "".join(
        f'<li class="clipviz-topk-row"><span class="clipviz-topk-bar" style="width:{p:.0%}"></span>'
        f'<span class="clipviz-topk-name">{escape(names[int(c)])}</span>'
        f'<span class="clipviz-topk-prob">{p:.0%}</span></li>'
        for c, p in topk
    )
    truth = ""
    if label is not None:
        mark = "" if ok is None else ("&#10003; " if ok else "&#10007; ")
        truth = f'<div class="clipviz-cell-true">{mark}true: {escape(label)}</div>'
    return (
        f'<div class="clipviz-cell{state}" data-id="{escape(image_id)}">{img}'
        f'<div class="clipviz-cell-id" title="{escape(image_id)}">'
        f'{escape(image_id).replace("/", "/<wbr>")}</div>'
        f'<ol class="clipviz-topk">{rows}</ol>{truth}</div>'
    )


def grid_css() -> str:
    # The live grid's stylesheet, so the snapshot looks like the widget.
    try:
        return resources.files("clipviz.views").joinpath("grid.css").read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError):
        return ""
