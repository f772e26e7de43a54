"""Rows of the README's benchmark table for the store and the models (issues 10 and 11).

Targets are the issues'; values are only ever read from the JSON in ``benchmarks/results/``.
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
    num,
    size,
    with_unit,
)

ANN_RECALL = Target(">=", 0.95, "", "issue 10")
ANN_MS = Target("<=", 20.0, "ms", "issue 10")
OPEN_S = Target("<=", 2.0, "s", "issue 10")
OPEN_RSS_GB = Target("<=", 1.5, "GB", "issue 10")
MODEL = {
    "own": {"shape": 0.98, "colour": 0.99, "seen": 0.99, "heldout": 0.90},
    "redrawn": {"shape": 0.97, "colour": 0.98, "seen": 0.95, "heldout": 0.85},
}
VIT = {  # None: report only
    "own": {"shape": 0.97, "colour": 0.99, "seen": 0.97, "heldout": None},
    "redrawn": {"shape": 0.95, "colour": 0.98, "seen": 0.92, "heldout": None},
}


def _ann_setting(sweep: list[Any]) -> dict[str, Any]:
    """The fastest setting whose recall meets the target, else the one with the best recall."""
    points = [
        p for p in sweep if isinstance(p, dict) and isinstance(p.get("recall_at_10"), (int, float))
    ]
    good = [p for p in points if ANN_RECALL.verdict(p["recall_at_10"]) == "met"]
    if good:
        return min(good, key=lambda p: p.get("latency_ms", float("inf")))
    return max(points, key=lambda p: p["recall_at_10"], default={})


def ann_rows(d: dict[str, Any] | None) -> list[Row]:
    index = dig(d, "faiss_1m") or {}
    best = _ann_setting(index.get("sweep") or [])
    n = size(dig(d, "n"))
    setting = (
        f"{index.get('library', '?')}, {index.get('cells', '?')} cells, nprobe "
        f"{best.get('nprobe', '?')}, {dig(d, 'queries')} queries"
    )
    load = load_text(d) if d else ""
    exact = f"exact matmul {num(dig(d, 'exact_matmul_latency_ms'), 1)} ms per query"
    return [
        measured_row(
            "store",
            f"ANN recall@10 vs exact, {n} x {dig(d, 'dim')} (`store_ann.py`)",
            best.get("recall_at_10"),
            ANN_RECALL,
            detail=setting,
            load=load,
        ),
        measured_row(
            "store",
            f"ANN query latency, {n} x {dig(d, 'dim')}",
            best.get("latency_ms"),
            ANN_MS,
            unit="ms",
            detail=f"same setting; index build {num(index.get('build_s'), 1)} s",
            baseline=exact,
            load=load,
        ),
    ]


def ann_choice_row(d: dict[str, Any] | None) -> Row:
    sub = dig(d, "choice_subset") or {}
    libs = [sub[k] for k in ("faiss", "usearch") if isinstance(sub.get(k), dict)]
    fastest = [(_ann_setting(lib.get("sweep") or []), lib) for lib in libs]
    parts = [
        f"{lib.get('library')}: {num(p.get('latency_ms'))} ms at recall {num(p.get('recall_at_10'), 4)}, "
        f"build {num(lib.get('build_s'), 1)} s"
        for p, lib in fastest
    ]
    faiss_ms = fastest[0][0].get("latency_ms") if fastest else None
    return measured_row(
        "store",
        f"ANN library choice, {size(sub.get('n'))} subset (faiss query latency)",
        faiss_ms,
        None,
        unit="ms",
        detail="; ".join(parts[:1]),
        baseline="; ".join(parts[1:]),
        load=load_text(d) if d else "",
    )


def open_store_rows(d: dict[str, Any] | None) -> list[Row]:
    runs = [r for r in (dig(d, "open_store") or []) if isinstance(r, dict)]
    peak = max(
        (r["peak_rss_gb"] for r in runs if isinstance(r.get("peak_rss_gb"), float)), default=None
    )
    base = dig(d, "parquet_baseline") or {}
    what = f"{size(dig(d, 'n'))} x {dig(d, 'dim')} {dig(d, 'vector_dtype')}"
    load = load_text(d) if d else ""
    return [
        measured_row(
            "store",
            f"`open_store` of {what} (`store_open.py`)",
            dig(d, "open_store_best_s"),
            OPEN_S,
            unit="s",
            detail=f"best of {len(runs)}",
            baseline=f"pyarrow read of the Parquet shards {num(base.get('seconds'), 1)} s "
            f"({num(dig(d, 'speedup_vs_parquet'), 1)}x slower)",
            load=load,
        ),
        measured_row(
            "store",
            f"`open_store` peak RSS, {what}",
            peak,
            OPEN_RSS_GB,
            unit="GB",
            detail="worst of the runs; vectors memory-mapped",
            baseline=f"pyarrow read {with_unit(base.get('peak_rss_gb'), 'GB')}",
            load=load,
        ),
    ]


def store_rows(results: Path) -> list[Row]:
    ann = load_json(results, "store_ann")
    rows = ann_rows(ann) + [ann_choice_row(ann)] + open_store_rows(load_json(results, "store_open"))
    return rows + [ray_row(load_json(results, "store_engine"))]


def ray_row(d: dict[str, Any] | None) -> Row:
    baseline = f"local engine {num(dig(d, 'local_img_s'), 1)} img/s" if d else ""
    return measured_row(
        "store",
        "Ray engine (2 actors) / local engine, same images (`store_engine.py`)",
        dig(d, "ray_2_actors_over_local"),
        None,
        unit="x",
        detail=f"1 actor {num(dig(d, 'ray_1_actors_over_local'), 3)}x",
        baseline=baseline,
        load=load_text(d) if d else "",
    )


# ---------------------------------------------------------------- models (issue 11)

MODEL_MEASURES = {
    "shape": "shape",
    "colour": "colour",
    "seen": "colour x shape, seen",
    "heldout": "held-out combinations",
}


def model_rows(results: Path) -> list[Row]:
    d = load_json(results, "bundled_model_quality")
    load = load_text(d) if d else ""
    rows = _accuracy_rows("clipviz-shapes", d, d, MODEL, "issue 11 v2", load)
    rows.append(
        measured_row(
            "models", "loading `clipviz-shapes`", dig(d, "load_seconds"), None, unit="s", load=load
        )
    )
    vit = dig(d, "vit")
    vit_load = ""
    if isinstance(vit, dict) and vit.get("load_average_1min") is not None:
        vit_load = load_text({**d, "load_average_1min": vit["load_average_1min"]})
    return rows + _accuracy_rows("clipviz-shapes-vit", vit, d, VIT, "issue 11", vit_load)


def _accuracy_rows(
    model: str,
    section: Any,
    top: dict[str, Any],
    targets: dict[str, dict[str, float | None]],
    issue: str,
    load: str,
) -> list[Row]:
    """One row per renderer and task: single-template accuracy, the ensemble beside it."""
    sections = {"own": section, "redrawn": dig(section, "redrawn")}
    renderer = {"own": "own renderer", "redrawn": "second renderer"}
    rows = []
    for where, goals in targets.items():
        acc = dig(sections[where], "accuracy")
        for key, goal in goals.items():
            rows.append(
                measured_row(
                    "models",
                    f"{model}, {renderer[where]}, {MODEL_MEASURES[key]} "
                    f"(`bundled_model_quality.py`, {dig(top, 'images_per_set')} images)",
                    dig(acc, "single", key),
                    None if goal is None else Target(">=", goal, "%", issue),
                    unit="%",
                    detail=f"ensemble {with_unit(dig(acc, 'ensemble', key), '%')}",
                    baseline=f"chance {with_unit(dig(top, 'chance_baseline', key), '%')}",
                    load=load,
                )
            )
    return rows


AREAS: list[Callable[[Path], list[Row]]] = [store_rows, model_rows]
