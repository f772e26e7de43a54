"""Cells of the README's benchmark table: rows, targets, verdicts, numbers and load averages.

Only formatting and comparison live here; every value comes from a JSON file in
``benchmarks/results/`` (see ``benchmark_rows.py``), every verdict is computed from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MET, NOT_MET, NOT_MEASURED, NO_TARGET = "met", "not met", "not measured", "no target"
# 1-min load per CPU above which the load column says the machine was heavily loaded
HEAVY_LOAD_PER_CPU = 2.0


@dataclass(frozen=True)
class Target:
    """``op value`` in ``unit``, with where it comes from ("issue 9", "benchmark script")."""

    op: str
    value: float
    unit: str
    source: str

    def text(self) -> str:
        return f"{self.op} {with_unit(self.value, self.unit)} ({self.source})"

    def verdict(self, measured: float | None) -> str:
        if not isinstance(measured, (int, float)) or isinstance(measured, bool):
            return NOT_MEASURED
        ok = measured <= self.value if self.op == "<=" else measured >= self.value
        return MET if ok else NOT_MET


@dataclass(frozen=True)
class Row:
    area: str
    measure: str
    measured: str
    target: str
    status: str
    baseline: str
    load: str

    def cells(self) -> list[str]:
        return [
            self.area,
            self.measure,
            self.measured,
            self.target,
            self.status,
            self.baseline,
            self.load,
        ]


def num(x: Any, digits: int = 2) -> str:
    """A number as the JSON holds it, rounded, without trailing zeros; "?" when absent."""
    if x is None:
        return "?"
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, int):
        return str(x)
    text = f"{x:.{digits}f}"
    if "." in text:  # only a fraction's zeros are trailing: 500 stays 500
        text = text.rstrip("0").rstrip(".")
    return text if text not in ("0", "-0") or x == 0 else f"{x:.{digits}g}"


def with_unit(x: Any, unit: str, digits: int | None = None) -> str:
    """``x`` followed by its unit; fractions with unit "%" are shown as percentages."""
    digits = digits if digits is not None else 3 if unit in ("", "x") else 2
    if unit == "%" and isinstance(x, (int, float)) and not isinstance(x, bool):
        return f"{num(100 * x, 1)}%"
    sep = "" if unit in ("", "x") else " "
    return f"{num(x, digits)}{sep}{unit}"


def size(n: Any) -> str:
    """1000 -> "1k", 1000000 -> "1M"."""
    if isinstance(n, int) and n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    return f"{n // 1000}k" if isinstance(n, int) and n >= 1000 and n % 1000 == 0 else str(n)


def load_json(results: Path, name: str) -> dict[str, Any] | None:
    """The parsed ``results/name.json``, or None when missing or unreadable."""
    try:
        data = json.loads((results / f"{name}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def dig(d: Any, *keys: Any) -> Any:
    """``d[k1][k2]...``, or None where a level is missing."""
    for key in keys:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def measured_row(
    area: str,
    measure: str,
    value: Any,
    target: Target | None,
    *,
    unit: str = "",
    detail: str = "",
    baseline: str = "",
    load: str = "",
) -> Row:
    """One measure: its value (with ``detail``), target, computed verdict, baseline and load."""
    target_text = target.text() if target else "report"
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return Row(area, measure, NOT_MEASURED, target_text, NOT_MEASURED, "", "")
    measured = with_unit(value, unit) + (f" ({detail})" if detail else "")
    status = target.verdict(value) if target else NO_TARGET
    return Row(area, measure, measured, target_text, status, baseline, load)


def missing_row(area: str, measure: str, target: Target | None) -> Row:
    """A measure whose result file (or section) is not there."""
    return measured_row(area, measure, None, target)


# (key, label) of the load averages the benchmark scripts record, in time order
LOAD_KEYS = (
    ("load_avg_before", "before"),
    ("load_average_before", "before"),
    ("loadavg_before", "before"),
    ("loadavg_start", "start"),
    ("loadavg", ""),
    ("load_average", ""),
    ("load_avg_1min", ""),
    ("load_average_1min", ""),
    ("load_average_1min_at_end", "at end"),
    ("load_avg_after", "after"),
    ("load_average_after", "after"),
    ("loadavg_after", "after"),
    ("loadavg_end", "end"),
)


def _one_minute(v: Any) -> float | None:
    if isinstance(v, list) and v:
        v = v[0]
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def load_values(*dicts: dict[str, Any]) -> list[float]:
    """Every 1-min load average recorded in ``dicts`` (top level and ``machine``), in order."""
    values = []
    for d in dicts:
        for scope in (d, d.get("machine") if isinstance(d.get("machine"), dict) else {}):
            values += [v for key, _ in LOAD_KEYS if (v := _one_minute(scope.get(key))) is not None]
    return values


def cpu_count(d: dict[str, Any]) -> int | None:
    for value in (
        d.get("cpu_count"),
        d.get("cpus"),
        dig(d, "machine", "cpus"),
        dig(d, "machine", "cpu_count"),
    ):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def load_text(d: dict[str, Any], *more: dict[str, Any]) -> str:
    """The 1-min load averages the run recorded and what they mean for its CPU count."""
    values = load_values(d, *more)
    if not values:
        return "load not recorded"
    span = " -> ".join(num(v, 1) for v in values)
    cpus = cpu_count(d)
    if cpus is None:
        return f"1-min load {span} (CPU count not recorded)"
    heavy = max(values) >= HEAVY_LOAD_PER_CPU * cpus
    level = "heavily loaded" if heavy else "loaded" if max(values) >= cpus else "lightly loaded"
    return f"1-min load {span} on {cpus} CPUs: {level}"
