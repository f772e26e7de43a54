"""A static, self-contained HTML snapshot of a Workbench, for slides and course pages.

One file: plotly.js inlined once, thumbnails as data URIs, no kernel and no network needed. It
shows the grid (thumbnails, top-k labels, correct/wrong), the joint map and the heatmap (the
views' own plotly figures, frozen) and the metrics. Every string from users or files goes through
``clipviz.views._html.escape``; plotly's JSON escapes ``<`` itself, so no label can end a script.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from clipviz._atomic import write_atomic
from clipviz.app._snapshot_parts import grid_css, grid_html, metrics_html, workbench_thumbnails
from clipviz.app.notebook_snapshot import NotebookSnapshot, notebook_html
from clipviz.views._html import escape

__all__ = [
    "DEFAULT_MAX_IMAGES",
    "NotebookSnapshot",
    "collect",
    "notebook_html",
    "render_html",
    "save_html",
]

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
    thumbnails, mime = workbench_thumbnails(workbench, shown, thumb_size)
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
        metrics_html(metrics, metrics_b),
        _plots_html(figures or {}),
        grid_html(predictions, thumbnails, thumb_mime, max_images),
        saliency_html,
    ]
    head = (
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width">'
        f"<title>{escape(title)}</title><style>{_CSS}{grid_css()}</style>"
    )
    if figures:
        head += f"<script>{_plotlyjs()}</script>"
    return f"<!DOCTYPE html>\n<html><head>{head}</head>\n<body>{''.join(body)}</body></html>\n"


# ---------------------------------------------------------------------------- collecting
def _view(workbench: Any, name: str) -> Any:
    views = getattr(workbench, "views", None)
    if isinstance(views, Mapping):
        return views.get(name)
    return getattr(views, name, None)


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
    # Each plot is drawn as its div is parsed, when its section still has the row to itself;
    # the sections after it then share the row, and plotly's "responsive" follows only window
    # resizes: size every plot to its section once the page is laid out.
    refit = (
        '<script>window.addEventListener("load", () => document'
        '.querySelectorAll(".cv-plot .js-plotly-plot").forEach((g) => Plotly.Plots.resize(g)));'
        "</script>"
    )
    return f'<div class="cv-plots">{"".join(parts)}</div>{refit}'


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
