"""The notebook's static twin of a workbench: a ``text/html`` output kept at the last state.

Shown where no kernel runs the widgets (GitHub, nbviewer, ``nbconvert --to html``); the full
page with plots is :func:`clipviz.app.snapshot.save_html`.
"""

from __future__ import annotations

from typing import Any

from clipviz.app._snapshot_parts import grid_css, grid_html, metrics_html, workbench_thumbnails
from clipviz.views._html import escape

__all__ = ["NotebookSnapshot", "notebook_html"]


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
    thumbnails, mime = workbench_thumbnails(workbench, shown, thumb_size)
    from clipviz.app.saliency import snapshot_detail_html, snapshot_overlays

    thumbnails = snapshot_overlays(workbench, shown, thumbnails)
    status = escape(str(getattr(workbench, "status", "") or ""))
    selected = list(getattr(workbench, "selection", []) or [])
    chosen = escape(", ".join(selected[:5]) + (" …" if len(selected) > 5 else ""))
    selection = f"{len(selected)} selected: {chosen}" if selected else "nothing selected"
    metrics = getattr(workbench, "metrics", None)
    return (
        "<div class='clipviz-static clipviz-static-fallback'><style>"
        f"{grid_css()}.clipviz-static .clipviz-thumb{{max-width:{thumb_size}px}}</style>"
        "<p><b>clipviz Workbench</b> (static snapshot of its last state; run the notebook "
        f"for the live views)</p><p class='cv-meta'>{status}<br>{selection}</p>"
        f"{metrics_html(metrics, getattr(workbench, 'metrics_b', None))}"
        f"{grid_html(predictions, thumbnails, mime, max_images)}"
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
