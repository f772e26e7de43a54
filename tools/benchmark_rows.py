"""Rows of the README's benchmark table for embedding and the workbench, read from the JSON.

Targets are the issues' (8-13) where an issue names one; a script's own target is used, and
labelled "benchmark script", only where no issue does. Values are only ever read from the JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmark_cells import (
    Row,
    Target,
    load_json,
    load_text,
    measured_row,
    missing_row,
    num,
    size,
    with_unit,
)

EMBED_RATIO = Target(">=", 0.85, "x", "issue 8")
EDIT_MS = {
    100_000: Target("<=", 100.0, "ms", "issue 9"),
    1_000_000: Target("<=", 300.0, "ms", "issue 9"),
}
BUILD_1M = Target("<=", 10.0, "s", "issue 9")
RSS_1M = Target("<=", 2048.0, "MB", "issue 9")
LASSO_50K = Target("<=", 300.0, "ms", "issue 9")
MESSAGE_MB = Target("<=", 10.0, "MB", "issue 9")
REOPEN_50K = Target("<=", 10.0, "s", "issue 9")


def _list(d: Any, key: str) -> list[dict[str, Any]]:
    rows = d.get(key) if isinstance(d, dict) else None
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def _script_target(op: str, value: Any, unit: str) -> Target | None:
    return Target(op, value, unit, "benchmark script") if isinstance(value, (int, float)) else None


# ---------------------------------------------------------------- embedding (issue 8)


def embed_throughput_row(results: Path, name: str) -> Row:
    d = load_json(results, name)
    model = name.removeprefix("embed_throughput").lstrip("_") or "clipviz-shapes"
    measure = f"JPEG -> vector end to end / forward pass alone, {model} (`embed_throughput.py`)"
    if d is None:
        return missing_row("embedding", measure, EMBED_RATIO)
    ips = d.get("images_per_s", {})
    weights = f", {d['pretrained']} weights" if d.get("pretrained") else ""
    detail = (
        f"{num(ips.get('end_to_end'), 1)} vs {num(ips.get('raw'), 1)} img/s, {d.get('device', '?')}"
        f"{weights}, {d.get('n_images', '?')} images"
    )
    baseline = (
        f"forward pass alone at the default {d.get('torch_threads_default', '?')} torch threads; "
        f"{num(d.get('ratio_end_to_end_vs_naive'))}x the one-image-at-a-time loop "
        f"({num(ips.get('naive'), 1)} img/s)"
    )
    if isinstance(d.get("bound"), dict):  # what no CPU pipeline can beat, from 1-thread costs
        baseline += f"; bound for any pipeline {num(d['bound'].get('images_per_s'), 1)} img/s"
    return measured_row(
        "embedding",
        measure,
        d.get("ratio_end_to_end_vs_raw"),
        EMBED_RATIO,
        unit="x",
        detail=detail,
        baseline=baseline,
        load=load_text(d),
    )


def embedding_rows(results: Path) -> list[Row]:
    rows = [
        embed_throughput_row(results, n) for n in ("embed_throughput", "embed_throughput_ViT-B-32")
    ]
    measure = "second run over the same images, cache (`embed_cache.py`)"
    d = load_json(results, "embed_cache")
    if d is None:
        return [*rows, missing_row("embedding", measure, None)]
    same = "identical vectors" if d.get("identical_vectors") else "vectors DIFFER"
    detail = (
        f"{d.get('n_images', '?')} images, {same}; {num(d.get('speedup_unseen_files'), 1)}x "
        "when a new process re-hashes every file"
    )
    return [
        *rows,
        measured_row(
            "embedding",
            measure,
            d.get("speedup"),
            _script_target(">=", d.get("target_speedup"), "x"),
            unit="x",
            detail=detail,
            baseline=f"first run {num(d.get('first_run_s'), 3)} s",
            load=load_text(d),
        ),
    ]


# ---------------------------------------------------------------- workbench (issue 9)


def _by_images(d: dict[str, Any] | None) -> dict[int, dict[str, Any]]:
    return {r["images"]: r for r in _list(d, "results") if isinstance(r.get("images"), int)}


def _other_sizes(rows: dict[int, dict[str, Any]], key: str, unit: str, skip: int) -> str:
    parts = [
        f"{size(n)} {with_unit(r.get(key), unit, 1)}" for n, r in sorted(rows.items()) if n != skip
    ]
    return "other sizes: " + ", ".join(parts) if parts else ""


def prompt_edit_rows(d: dict[str, Any], load: str) -> list[Row]:
    rows = []
    for n, r in sorted(_by_images(d).items()):
        baseline = (
            f"recompute everything {num(r.get('naive_recompute_ms_median'), 1)} ms: whole update "
            f"{num(r.get('ratio_naive_over_whole_update'))}x faster, its compute part "
            f"{num(r.get('ratio_naive_over_update_compute'))}x"
        )
        detail = f"median of {len(r.get('prompt_edit_ms_all') or [])}, map: {r.get('map_during_edits', '?')}"
        rows.append(
            measured_row(
                "workbench",
                f"prompt edit -> every view updated, {size(n)} images (`workbench_update.py`)",
                r.get("prompt_edit_ms_median"),
                EDIT_MS.get(n),
                unit="ms",
                detail=detail,
                baseline=baseline,
                load=load,
            )
        )
    return rows


def workbench_1m_rows(d: dict[str, Any], load: str) -> list[Row]:
    by_n = _by_images(d)
    big = by_n.get(1_000_000, {})
    build = measured_row(
        "workbench",
        "Workbench build incl. widgets, 1M precomputed embeddings",
        big.get("build_s"),
        BUILD_1M,
        unit="s",
        detail=_other_sizes(by_n, "build_s", "s", 1_000_000),
        baseline=f"build without widgets {with_unit(big.get('build_without_widgets_s'), 's')}",
        load=load,
    )
    rss = measured_row(
        "workbench",
        "peak kernel RSS, 1M embeddings",
        big.get("peak_rss_mb"),
        RSS_1M,
        unit="MB",
        detail=_other_sizes(by_n, "peak_rss_mb", "MB", 1_000_000),
        baseline=f"{num(big.get('vectors_mb'))} MB of vectors; RSS after loading the data "
        f"{num(big.get('rss_after_data_mb'))} MB",
        load=load,
    )
    return [build, rss]


def lasso_and_message_rows(d: dict[str, Any], load: str) -> list[Row]:
    lasso = next((r["lasso"] for r in _list(d, "results") if isinstance(r.get("lasso"), dict)), {})
    detail = f"{lasso.get('selected', '?')} of {size(lasso.get('images'))} images selected, median"
    if lasso.get("ms_all"):
        detail += f"; first {num(lasso['ms_all'][0], 1)} ms"
    if lasso.get("python_by_id_ms_all"):
        by_id = lasso["python_by_id_ms_all"]
        detail += (
            f"; set from Python by id: median {num(lasso['python_by_id_ms_median'], 1)} ms,"
            f" first {num(by_id[0], 1)} ms (builds the id index)"
        )
    messages = [
        (b, n)
        for n, r in _by_images(d).items()
        for b in (r.get("bytes_per_prompt_edit") or {}).values()
        if isinstance(b, int)
    ]
    largest, at = max(messages) if messages else (None, None)
    return [
        measured_row(
            "workbench",
            "lasso -> grid and heatmap updated, 50k images",
            lasso.get("ms_median"),
            LASSO_50K,
            unit="ms",
            detail=detail,
            load=load,
        ),
        measured_row(
            "workbench",
            "largest widget message of a prompt edit, any size",
            None if largest is None else largest / 1e6,
            MESSAGE_MB,
            unit="MB",
            detail=f"at {size(at)} images",
            load=load,
        ),
    ]


def zero_shot_rows(results: Path) -> list[Row]:
    d = load_json(results, "zero_shot_speed")
    rows = _list(d, "results")
    if not rows:
        return [
            missing_row(
                "workbench", "zero-shot update, already embedded (`zero_shot_speed.py`)", None
            )
        ]
    return [
        measured_row(
            "workbench",
            f"zero-shot update, {size(r.get('images'))} images x {r.get('prompts', '?')} prompts "
            "(`zero_shot_speed.py`)",
            r.get("update_ms"),
            _script_target("<=", r.get("target_ms"), "ms"),
            unit="ms",
            baseline=f"naive version {num(r.get('naive_baseline_ms'), 1)} ms "
            f"({num(r.get('speedup_vs_naive'))}x)",
            load=load_text(d),
        )
        for r in rows
    ]


def projection_rows(results: Path) -> list[Row]:
    d = load_json(results, "projection_speed")
    rows = _list(d, "results")
    if not rows:
        return [missing_row("workbench", "projection (`projection_speed.py`)", None)]
    return [
        measured_row(
            "workbench",
            f"UMAP, warm, {size(r.get('points'))} points (`projection_speed.py`)",
            r.get("umap_warm_s"),
            None,
            unit="s",
            detail=f"PCA {num(r.get('pca_s'), 3)} s; cache hit {num(r.get('umap_cache_hit_s'), 4)} s",
            baseline=f"sklearn PCA {num(r.get('sklearn_pca_s'), 3)} s (ours "
            f"{num(r.get('pca_speedup_vs_sklearn'))}x its speed)",
            load=load_text(d),
        )
        for r in rows
    ]


def thumbnail_row(results: Path) -> Row:
    measure = "first grid page of thumbnails, cold (`thumbnail_pages.py`)"
    d = load_json(results, "thumbnail_pages")
    if d is None:
        return missing_row("workbench", measure, None)
    detail = (
        f"{d.get('page_size', '?')} of {d.get('n_images', '?')} images; warm disk cache "
        f"{num(d.get('first_page_warm_disk_cache_s'), 3)} s"
    )
    baseline = (
        f"every thumbnail at start {num(d.get('all_images_at_start_s'), 1)} s "
        f"({num(d.get('ratio_all_at_start_over_first_page_cold'), 1)}x the first page)"
    )
    return measured_row(
        "workbench",
        measure,
        d.get("first_page_cold_s"),
        None,
        unit="s",
        detail=detail,
        baseline=baseline,
        load=load_text(d),
    )


def workbench_rows(results: Path) -> list[Row]:
    d = load_json(results, "workbench_update")
    if not _by_images(d):
        rows = [
            missing_row("workbench", "prompt edit, build, RSS, lasso (`workbench_update.py`)", None)
        ]
    else:
        load = load_text(d)
        rows = (
            prompt_edit_rows(d, load) + workbench_1m_rows(d, load) + lasso_and_message_rows(d, load)
        )
    extra = [thumbnail_row(results), reopen_row(results)]
    return rows + zero_shot_rows(results) + projection_rows(results) + extra


def reopen_row(results: Path) -> Row:
    d = load_json(results, "workbench_reopen")
    measure = "reopen, cache warm, fresh kernel -> every pane drawn (`workbench_reopen.py`)"
    if d is None:
        return missing_row("workbench", measure, REOPEN_50K)
    warm = d.get("reopen_cache_warm") or {}
    first = d.get("first_open_cache_empty") or {}  # None: a --reopen-only run
    kernel = warm.get("kernel") or {}
    return measured_row(
        "workbench",
        measure.replace("reopen,", f"reopen {size(d.get('n_images'))} images,"),
        warm.get("all_views_visible_s"),
        REOPEN_50K,
        unit="s",
        detail=f"kernel: imports+model+folder {with_unit(kernel.get('imports_model_and_folder_s'), 's')}, "
        f"Workbench {with_unit(kernel.get('workbench_build_s'), 's')}",
        baseline=f"first open, cache empty {with_unit(first.get('all_views_visible_s'), 's')} "
        f"({num(d.get('ratio_first_over_reopen'))}x)",
        load=load_text(d),
    )


AREAS: list[Callable[[Path], list[Row]]] = [embedding_rows, workbench_rows]
