"""Rows of the README's benchmark table for the map (issue 9): clipviz against jupyter-scatter.

Both renderers are timed in the same browser by ``benchmarks/map_render.py``; the rows show our
time over theirs. Values are only ever read from the JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmark_cells import (
    Row,
    Target,
    dig,
    load_json,
    load_text,
    measured_row,
    missing_row,
    num,
    size,
    with_unit,
)
from benchmark_rows import MESSAGE_MB

FIRST_RENDER = {
    100_000: Target("<=", 1.0, "x", "issue 9"),
    1_000_000: Target("<=", 1.2, "x", "issue 9"),
}
ZOOM = Target("<=", 1.0, "x", "issue 9")
DRAG_GAP_100K = Target("<=", 0.3, "s", "issue 9")


def _map_sizes(d: dict[str, Any] | None) -> dict[int, dict[str, Any]]:
    results = d.get("results") if isinstance(d, dict) else None
    if not isinstance(results, dict):
        return {}
    return {int(k): v for k, v in results.items() if k.isdigit() and isinstance(v, dict)}


def _ratio_row(
    n: int, r: dict[str, Any], key: str, what: str, target: Target | None, load: str
) -> Row:
    ours, theirs = dig(r, "clipviz", key), dig(r, "jupyter_scatter", key)
    return measured_row(
        "map",
        f"{what} / jupyter-scatter, {size(n)} points (`map_render.py`)",
        dig(r, "ratio_clipviz_over_jupyter_scatter", key),
        target,
        unit="x",
        detail=f"{num(ours, 2)} s",
        baseline=f"jupyter-scatter {num(theirs, 2)} s, same browser",
        load=load,
    )


def _gap_row(sizes: dict[int, dict[str, Any]], load: str) -> Row:
    r = sizes.get(100_000, {})
    key = "drag_longest_frame_gap_s"
    return measured_row(
        "map",
        "longest frame gap in a drag-pan, 100k points, software GL",
        dig(r, "clipviz", key),
        DRAG_GAP_100K,
        unit="s",
        detail=f"whole drag-pan {num(dig(r, 'clipviz', 'drag_pan_s'), 1)} s",
        baseline=f"jupyter-scatter {num(dig(r, 'jupyter_scatter', key))} s (ratio "
        f"{num(dig(r, 'ratio_clipviz_over_jupyter_scatter', key))}x)",
        load=load,
    )


def _message_row(sizes: dict[int, dict[str, Any]], load: str) -> Row:
    ours = [
        (v, n)
        for n, r in sizes.items()
        if isinstance(v := dig(r, "clipviz", "largest_message_mb"), float)
    ]
    largest, at = max(ours) if ours else (None, None)
    theirs = dig(sizes.get(at, {}), "jupyter_scatter", "largest_message_mb")
    return measured_row(
        "map",
        "largest widget message of the map, any size",
        largest,
        MESSAGE_MB,
        unit="MB",
        detail=f"at {size(at)} points",
        baseline=f"jupyter-scatter {with_unit(theirs, 'MB')}",
        load=load,
    )


def map_rows(results: Path) -> list[Row]:
    d = load_json(results, "map_render")
    sizes = _map_sizes(d)
    if not sizes:
        return [missing_row("map", "map render vs jupyter-scatter (`map_render.py`)", None)]
    load = load_text(d)
    loads = dict.fromkeys(sizes, load)
    big = load_json(results, "map_render_1m")  # 1M runs alone (minutes of software GL)
    for n, r in _map_sizes(big).items():
        sizes.setdefault(n, r)
        loads.setdefault(n, load_text(big))
    first = [
        _ratio_row(n, r, "first_render_s", "first render", FIRST_RENDER.get(n), loads[n])
        for n, r in sorted(sizes.items())
    ]
    zoom = [
        _ratio_row(n, r, "zoom_redraw_s", "zoom redraw", ZOOM, loads[n])
        for n, r in sorted(sizes.items())
    ]
    return first + zoom + [_gap_row(sizes, load), _message_row(sizes, load)]


AREAS: list[Callable[[Path], list[Row]]] = [map_rows]
