"""A static, self-contained HTML snapshot of a Workbench, for slides and course pages.

One file: plotly.js inlined once, thumbnails as data URIs, no kernel and no network needed. It
shows the grid (thumbnails, top-k labels, correct/wrong), the joint map and the heatmap (the
views' own plotly figures, frozen) and the metrics. Every string from users or files goes through
``clipviz.views._html.escape``; plotly's JSON escapes ``<`` itself, so no label can end a script.
"""

from __future__ import annotations

import base64
import datetime as _dt
import os
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from clipviz._atomic import write_atomic
from clipviz.views._html import escape

#: Images shown in the snapshot grid by default (about 3 KB each as 96 px WebP).
DEFAULT_MAX_IMAGES = 1000

_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 16px 24px; color: #222; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 18px 0 6px; }
.cv-meta { color: #666; } .cv-prompts { margin: 4px 0; padding-left: 20px; }
.cv-plots { display: flex; flex-wrap: wrap; gap: 12px; }
.cv-plot { flex: 1 1 560px; min-width: 420px; }
table.cv-table { border-collapse: collapse; margin: 4px 0; }
.cv-table td, .cv-table th { border: 1px solid #ddd; padding: 2px 8px; text-align: right; }
.cv-table th:first-child, .cv-table td:first-child { text-align: left; }
#cv-mistakes:checked ~ .clipviz-grid .clipviz-correct { display: none; }
.clipviz-cell { cursor: default; }
"""


def save_html(
    workbench: Any,
    path: str | os.PathLike,
    *,
    title: str | None = None,
    max_images: int = DEFAULT_MAX_IMAGES,
    thumb_size: int = 96,
) -> Path:
    """Write a static HTML snapshot of ``workbench`` (grid, map, heatmap, metrics) to ``path``.

    Parameters
    ----------
    workbench : clipviz.Workbench
        A workbench with predictions (it has images and prompts).
    path : str or os.PathLike
        The ``.html`` file to write (its folder must exist); replaced atomically if present.
    title : str, optional
        Page title; defaults to "clipviz snapshot: <model name>".
    max_images : int
        At most this many images go into the grid (in input order); the plots keep all points.
    thumb_size : int
        Longest side of a grid thumbnail in pixels.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    parts = collect(workbench, thumb_size=thumb_size, max_images=max_images)
    text = render_html(**parts, title=title, max_images=max_images)
    return _write_page(Path(path), text)


def collect(
    workbench: Any, *, thumb_size: int = 96, max_images: int = DEFAULT_MAX_IMAGES
) -> dict[str, Any]:
    """Gather what a snapshot shows from a workbench through its public handles.

    Uses ``predictions``, ``metrics`` (and ``metrics_b``), ``prompts``, ``thumbnails`` (or the
    ImageSet ``images``) and ``views`` (the map's, heatmap's and metrics panel's ``figure``).
    """
    predictions = getattr(workbench, "predictions", None)
    if predictions is None:
        raise ValueError(
            "save_html: this workbench has no predictions yet (no prompts?); "
            "set workbench.prompts = ['class a', 'class b'] first"
        )
    shown = list(predictions.ids)[: max(0, int(max_images))]
    thumbnails, mime = _workbench_thumbnails(workbench, shown, thumb_size)
    from clipviz.app.saliency import snapshot_detail_html, snapshot_overlays

    thumbnails = snapshot_overlays(workbench, shown, thumbnails)  # the "where" overlays shown
    figures = {}
    for name in ("map", "heatmap", "metrics"):
        view = _view(workbench, name)
        fig = getattr(view, "figure", None) if view is not None else None
        if fig is not None and len(getattr(fig, "data", ())):
            figures[name] = fig
    prompts = getattr(workbench, "prompts", None)
    metrics = getattr(workbench, "metrics", None) or _metrics(predictions)
    return {
        "predictions": predictions,
        "thumbnails": thumbnails,
        "thumb_mime": mime,
        "figures": figures,
        "metrics": metrics,
        "metrics_b": getattr(workbench, "metrics_b", None),
        "prompts": list(prompts) if prompts is not None else list(predictions.classnames),
        "saliency_html": snapshot_detail_html(workbench),
    }


def render_html(
    predictions: Any,
    *,
    thumbnails: Sequence[bytes | None] | None = None,
    thumb_mime: str = "image/webp",
    figures: Mapping[str, Any] | None = None,
    metrics: Any = None,
    metrics_b: Any = None,
    prompts: Sequence[str] | None = None,
    title: str | None = None,
    max_images: int = DEFAULT_MAX_IMAGES,
    saliency_html: str = "",
) -> str:
    """Build the snapshot page from plain parts (what :func:`save_html` collects).

    Parameters
    ----------
    predictions : clipviz.compute.Predictions
        The zero-shot predictions shown in the grid.
    thumbnails : sequence of bytes, optional
        One encoded image per prediction row (None entries show an empty tile).
    thumb_mime : str
        MIME type of the thumbnails.
    figures : mapping of str to plotly figure, optional
        ``{"map": fig, "heatmap": fig}``; each is frozen into a static plot.
    metrics : clipviz.compute.Metrics, optional
        Shown as a table when the images carry labels.
    metrics_b : clipviz.compute.Metrics, optional
        Metrics of a second prompt set (B), compared per class with ``metrics``.
    prompts : sequence of str, optional
        The prompt lines, listed in the header.
    title : str, optional
        The page title.
    max_images : int
        Cap on grid cells.
    saliency_html : str
        Markup of the saliency detail view (escaped by the view), placed after the grid.

    Returns
    -------
    str
        A complete HTML document.
    """
    if not isinstance(max_images, int) or max_images < 1:
        raise ValueError(f"max_images must be a positive int, got {max_images!r}")
    model = getattr(getattr(predictions, "model", None), "name", None)
    title = title or f"clipviz snapshot{': ' + model if model else ''}"
    body = [
        f"<h1>{escape(title)}</h1>",
        _header(predictions, prompts, model),
        _metrics_html(metrics, metrics_b),
        _plots_html(figures or {}),
        _grid_html(predictions, thumbnails, thumb_mime, max_images),
        saliency_html,
    ]
    head = (
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width">'
        f"<title>{escape(title)}</title><style>{_CSS}{_grid_css()}</style>"
    )
    if figures:
        head += f"<script>{_plotlyjs()}</script>"
    return f"<!DOCTYPE html>\n<html><head>{head}</head>\n<body>{''.join(body)}</body></html>\n"


def notebook_html(workbench: Any, *, max_images: int = 24, thumb_size: int = 64) -> str:
    """A small static view of the workbench for a notebook output's ``text/html``.

    Shown where no kernel runs the widgets (GitHub, nbviewer, ``nbconvert --to html``, a
    reopened notebook): the status line, the selection, the metrics table and the first grid
    cells as data-URI images; no plotly.js (3.5 MB per output). Tens of KB.
    """
    predictions = getattr(workbench, "predictions", None)
    if predictions is None:
        return "<div class='clipviz-static'><i>clipviz Workbench: no predictions yet</i></div>"
    shown = list(predictions.ids)[:max_images]
    thumbnails, mime = _workbench_thumbnails(workbench, shown, thumb_size)
    from clipviz.app.saliency import snapshot_detail_html, snapshot_overlays

    thumbnails = snapshot_overlays(workbench, shown, thumbnails)
    status = escape(str(getattr(workbench, "status", "") or ""))
    selected = list(getattr(workbench, "selection", []) or [])
    chosen = escape(", ".join(selected[:5]) + (" …" if len(selected) > 5 else ""))
    selection = f"{len(selected)} selected: {chosen}" if selected else "nothing selected"
    metrics = getattr(workbench, "metrics", None)
    return (
        "<div class='clipviz-static clipviz-static-fallback'><style>"
        f"{_grid_css()}.clipviz-static .clipviz-thumb{{max-width:{thumb_size}px}}</style>"
        "<p><b>clipviz Workbench</b> (static snapshot of its last state; run the notebook "
        f"for the live views)</p><p class='cv-meta'>{status}<br>{selection}</p>"
        f"{_metrics_html(metrics, getattr(workbench, 'metrics_b', None))}"
        f"{_grid_html(predictions, thumbnails, mime, max_images)}"
        f"{snapshot_detail_html(workbench)}</div>"
    )


class NotebookSnapshot:
    """The static twin of a displayed workbench: a ``text/html`` output kept at the last state.

    A widget output's mime bundle is written once, at display time, and nbconvert, GitHub and
    nbviewer show its widget view (or an error) rather than any ``text/html`` beside it. So the
    snapshot is a second display output with a display id, rewritten with ``update_display``
    after each update and selection: the saved notebook holds the last state. Where the live
    widget renders, its stylesheet hides the snapshot (``.clipviz-static-fallback``).
    """

    def __init__(self) -> None:
        self._handle: Any = None
        self._last = ""

    def show(self, workbench: Any) -> None:
        """Display the snapshot below the widget (call from the workbench's display hook)."""
        from IPython.display import display

        self._last = notebook_html(workbench)
        self._handle = display(
            {"text/html": self._last, "text/plain": repr(workbench)}, raw=True, display_id=True
        )

    def refresh(self, workbench: Any) -> None:
        """Rewrite the displayed snapshot if the state it shows changed."""
        if self._handle is None:
            return
        text = notebook_html(workbench)
        if text != self._last:
            self._last = text
            self._handle.update({"text/html": text, "text/plain": repr(workbench)}, raw=True)


# ---------------------------------------------------------------------------- collecting
def _view(workbench: Any, name: str) -> Any:
    views = getattr(workbench, "views", None)
    if isinstance(views, Mapping):
        return views.get(name)
    return getattr(views, name, None)


def _workbench_thumbnails(
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


def _metrics(predictions: Any) -> Any:
    if predictions.labels is None:
        return None
    from clipviz.compute import evaluate

    try:
        return evaluate(predictions)
    except ValueError:  # no label is among the classnames: nothing to score
        return None


# ---------------------------------------------------------------------------- rendering
def _header(predictions: Any, prompts: Sequence[str] | None, model: str | None) -> str:
    when = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    from clipviz import __version__

    meta = f"{len(predictions.ids)} images, {len(predictions.classnames)} prompts"
    if model:
        meta += f", model {escape(model)}"
    meta += f"; made {escape(when)} with clipviz {escape(__version__)}"
    items = "".join(f"<li>{escape(p)}</li>" for p in (prompts or []))
    return f'<p class="cv-meta">{meta}</p><ol class="cv-prompts">{items}</ol>'


def _metrics_html(metrics: Any, metrics_b: Any = None) -> str:
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
    else:
        table = getattr(metrics, "per_class", None)
        cols = [("n", "images"), ("accuracy", "accuracy"), ("precision", "precision")]
    if table is None or not len(table):
        return out
    head = "<tr><th>class</th>" + "".join(f"<th>{title}</th>" for _, title in cols) + "</tr>"
    body = "".join(
        f"<tr><td>{escape(str(name))}</td>"
        + "".join(f"<td>{_cell_value(col, row[col])}</td>" for col, _ in cols)
        + "</tr>"
        for name, row in table.iterrows()
    )
    return out + f'<table class="cv-table cv-per-class">{head}{body}</table>'


def _cell_value(column: str, value: Any) -> str:
    if column == "n":
        return str(int(value))
    if column == "difference" and value is not None and np.isfinite(value):
        return f"{float(value) * 100:+.1f} pp"
    return _pct(value)


def _pct(x: Any) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{float(x):.1%}"


def _plots_html(figures: Mapping[str, Any]) -> str:
    if not figures:
        return ""
    import plotly.graph_objects as go
    import plotly.io as pio

    titles = {
        "map": "Joint embedding map",
        "heatmap": "Image x prompt similarity",
        "metrics": "Confusion matrix",
    }
    parts = []
    for name, fig in figures.items():
        static = go.Figure(fig.to_dict() if hasattr(fig, "to_dict") else fig)
        div = pio.to_html(
            static,
            full_html=False,
            include_plotlyjs=False,
            config={"responsive": True, "displaylogo": False},
            div_id=f"cv-{name}",
        )
        heading = escape(titles.get(name, name))
        parts.append(
            f'<section class="cv-plot" data-view="{escape(name)}"><h2>{heading}</h2>{div}</section>'
        )
    return f'<div class="cv-plots">{"".join(parts)}</div>'


def _grid_html(
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
        f'<div class="clipviz-cell-id" title="{escape(image_id)}">{escape(image_id)}</div>'
        f'<ol class="clipviz-topk">{rows}</ol>{truth}</div>'
    )


def _grid_css() -> str:
    # The live grid's stylesheet, so the snapshot looks like the widget.
    try:
        return resources.files("clipviz.views").joinpath("grid.css").read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError):
        return ""


def _plotlyjs() -> str:
    from plotly.offline import get_plotlyjs

    # Inside <script>: a "</script" in the bundle would end the element early.
    return get_plotlyjs().replace("</script", "<\\/script")


def _write_page(path: Path, text: str) -> Path:
    path = path.expanduser()
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"save_html: folder {str(path.parent)!r} does not exist; create it or pick another path"
        )
    return write_atomic(path, text)
