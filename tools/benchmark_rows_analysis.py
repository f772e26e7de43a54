"""Rows of the README's benchmark table for saliency and model comparison (issues 12 and 13).

Targets are the issues'; values are only ever read from the JSON in ``benchmarks/results/``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
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

POINTING = Target(">=", 0.95, "%", "issue 12")
POINTING_VIT = Target(">=", 0.90, "%", "issue 12")
MASS_RATIO = Target(">=", 3.0, "", "issue 12")
SALIENCY_MS = {
    "bundled_resnet": Target("<=", 30.0, "ms", "issue 12"),
    "vit_b32_random": Target("<=", 500.0, "ms", "issue 12"),
}
OVERLAY_S = Target("<=", 1.0, "s", "issue 12")
OVERLAP = (100_000, Target("<=", 10.0, "s", "issue 13"))
CALIBRATION = (1_000_000, Target("<=", 1.0, "s", "issue 13"))
TWO_MODEL = (10_000, Target("<=", 2.0, "x", "issue 13"))

# ---------------------------------------------------------------- store (issue 10)

# ---------------------------------------------------------------- saliency (issue 12)


def _methods(d: Any, *path: str) -> dict[str, dict[str, Any]]:
    methods = dig(d, *path, "methods")
    return (
        {k: v for k, v in methods.items() if isinstance(v, dict)}
        if isinstance(methods, dict)
        else {}
    )


def _best(methods: dict[str, dict[str, Any]], key: str, target: Target) -> tuple[str, Any]:
    scored = [(name, m[key]) for name, m in methods.items() if isinstance(m.get(key), (int, float))]
    if not scored:
        return "?", None
    pick = min if target.op == "<=" else max
    return pick(scored, key=lambda nv: nv[1])


def saliency_quality_rows(d: dict[str, Any], load: str) -> list[Row]:
    methods = _methods(d, "bundled_resnet", "quality")
    refs = dig(d, "bundled_resnet", "quality", "references") or {}
    n = dig(d, "bundled_resnet", "quality", "n_images")
    rows = []
    for key, target, unit, what in (
        ("pointing", POINTING, "%", "pointing game"),
        ("mass_ratio", MASS_RATIO, "", "mass in mask / mask area"),
    ):
        name, value = _best(methods, key, target)
        others = ", ".join(
            f"{k} {with_unit(m.get(key), unit)}" for k, m in methods.items() if k != name
        )
        refs_text = ", ".join(f"{k} {with_unit(dig(v, key), unit)}" for k, v in refs.items())
        rows.append(
            measured_row(
                "saliency",
                f"{what}, bundled ResNet, {n} images (`saliency_quality.py`)",
                value,
                target,
                unit=unit,
                detail=f"best: {name}; {others}",
                baseline=refs_text,
                load=load,
            )
        )
    return rows


def saliency_speed_rows(d: dict[str, Any], load: str) -> list[Row]:
    rows = []
    for tower, what in (
        ("bundled_resnet", "bundled ResNet"),
        ("vit_b32_random", "ViT-B-32, random weights"),
    ):
        methods = _methods(d, tower, "speed")
        target = SALIENCY_MS[tower]
        name, wall = _best(methods, "ms_per_image_prompt_wall", target)
        cpu = dig(methods, name, "ms_per_image_prompt_cpu")
        others = ", ".join(
            f"{k} {num(m.get('ms_per_image_prompt_wall'), 1)} ms"
            for k, m in methods.items()
            if k != name
        )
        rows.append(
            measured_row(
                "saliency",
                f"time per image and prompt, {what}, CPU (wall)",
                wall,
                target,
                unit="ms",
                detail=f"fastest: {name}, {num(cpu, 1)} ms CPU time",
                baseline=others,
                load=load,
            )
        )
    page = dig(d, "bundled_resnet", "page") or {}
    rows.append(
        measured_row(
            "saliency",
            f"grid overlay for a {page.get('images', '?')}-image page, bundled model, cold",
            page.get("cold_s_wall"),
            OVERLAY_S,
            unit="s",
            baseline=f"cached page {num(page.get('cached_s_wall'), 4)} s",
            load=load,
        )
    )
    return rows


def saliency_rows(results: Path) -> list[Row]:
    d = load_json(results, "saliency_quality")
    if d is None:
        return [
            missing_row("saliency", "saliency quality and speed (`saliency_quality.py`)", POINTING)
        ]
    load = load_text(d)
    vit = dig(d, "bundled_vit", "quality", "methods")
    vit_row = measured_row(
        "saliency",
        "pointing game, bundled ViT model",
        None
        if vit is None
        else _best(_methods(d, "bundled_vit", "quality"), "pointing", POINTING_VIT)[1],
        POINTING_VIT,
        unit="%",
        load=load if vit is not None else "",
    )
    return saliency_quality_rows(d, load) + [vit_row] + saliency_speed_rows(d, load)


# ---------------------------------------------------------------- comparison (issue 13)


def _part_row(
    d: dict[str, Any] | None,
    part: dict[str, Any],
    measure: str,
    sized: tuple[int, Target],
    value: Any,
    n: Any,
    **cells: str,
) -> Row:
    """A comparison row; its verdict holds only at the target's size, elsewhere it says so."""
    wanted, target = sized
    load = load_text(d, part) if d and part else ""
    row = measured_row("comparison", measure, value, target, load=load, **cells)
    if n == wanted or row.status == "not measured":
        return row
    return replace(row, status=f"not measured at {size(wanted)} (only {size(n)})")


def overlap_row(d: dict[str, Any] | None) -> Row:
    """The public call at 100k (IVF cells with a recall check); exact is the baseline."""
    part = dig(d, "neighbour_overlap_ann") or {}
    recall = min(part.get("recall_at_10_model_a", 0.0), part.get("recall_at_10_model_b", 0.0))
    detail = (
        f"method {part.get('method', '?')}, nprobe {part.get('nprobe_used_a_b', '?')}; "
        f"recall@10 {num(recall, 4)} on {part.get('query_subset', '?')} exact queries; "
        f"CPU {num(part.get('overlap_cpu_s'), 1)} s"
    )
    baseline = (
        f"exact search {num(part.get('exact_full_extrapolated_s'), 0)} s "
        f"(extrapolated from {part.get('query_subset', '?')} queries)"
    )
    measure = "`neighbour_overlap`, 100k x 512, k=10 (`compare_speed.py`)"
    return _part_row(
        d, part, measure, OVERLAP, part.get("overlap_s"), part.get("n"), unit="s",
        detail=detail, baseline=baseline,
    )  # fmt: skip


def calibration_row(d: dict[str, Any] | None) -> Row:
    part = dig(d, "calibration") or {}
    detail = f"at {size(part.get('n'))} x {part.get('classes', '?')}"
    baseline = f"scipy bounded minimise {num(part.get('baseline_scipy_bounded_nll_s'), 1)} s"
    measure = "`calibration` + `fit_temperature`, 1M predictions x 20 classes"
    value = part.get("calibration_plus_fit_s")
    return _part_row(
        d,
        part,
        measure,
        CALIBRATION,
        value,
        part.get("n"),
        unit="s",
        detail=detail,
        baseline=baseline,
    )


def two_model_row(d: dict[str, Any] | None) -> Row:
    part = dig(d, "two_model_update") or {}
    detail = f"{num(part.get('comparison_median_s'))} s at {size(part.get('n'))} images"
    baseline = f"one-model Workbench {num(part.get('workbench_median_s'))} s"
    measure = "two-model workbench prompt edit / one-model, 10k images"
    value = part.get("ratio")
    return _part_row(
        d,
        part,
        measure,
        TWO_MODEL,
        value,
        part.get("n"),
        unit="x",
        detail=detail,
        baseline=baseline,
    )


def comparison_rows(results: Path) -> list[Row]:
    d = load_json(results, "compare_speed")
    return [overlap_row(d), calibration_row(d), two_model_row(d)]


AREAS: list[Callable[[Path], list[Row]]] = [saliency_rows, comparison_rows]
