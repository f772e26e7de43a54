"""Regenerate the README's benchmark table from ``benchmarks/results/*.json``.

Every number in the table is read from a JSON file written by a script in ``benchmarks/``; the
table sits between ``<!-- benchmarks:start -->`` and ``<!-- benchmarks:end -->`` in README.md.

    python tools/benchmark_table.py            # rewrite the table in README.md
    python tools/benchmark_table.py --check    # exit 1 when README.md is out of date
    python tools/benchmark_table.py --print    # print the table only

A missing or unreadable result file gives a row saying "not measured" instead of old numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
START, END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"
HEADER = (
    "| benchmark | measured | target | baseline in the same run |\n"
    "| --- | --- | --- | --- |"
)
Row = tuple[str, str, str, str]


def _num(x: Any, digits: int = 2) -> str:
    """A number as the JSON holds it, without trailing zeros; "?" when absent."""
    if x is None:
        return "?"
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    return f"{x:.{digits}f}".rstrip("0").rstrip(".") if isinstance(x, float) else str(x)


def _load(results: Path, name: str) -> dict[str, Any] | None:
    try:
        return json.loads((results / f"{name}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _load_text(d: dict[str, Any]) -> str:
    """The load average the JSON recorded, whatever its key."""
    for key in ("load_avg_1min", "load_average_1min", "load_average_1min_at_end"):
        if isinstance(d.get(key), (int, float)):
            return f"load {_num(d[key], 1)}"
    la = d.get("load_average")
    if isinstance(la, list) and la:
        return f"load {_num(la[0], 1)}"
    return "load not recorded"


def _size(n: Any) -> str:
    return f"{n // 1000}k" if isinstance(n, int) and n >= 1000 and n % 1000 == 0 else str(n)


def _results(d: dict[str, Any]) -> list[dict[str, Any]]:
    rows = d.get("results")
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def row_embed(results: Path) -> Row:
    title = (
        "1. embedding, JPEG files -> vectors, end to end / raw forward on pre-made tensors "
        "(`embed_throughput.py`)"
    )
    parts, targets, bases = [], [], []
    for name in ("embed_throughput", "embed_throughput_ViT-B-32"):
        d = _load(results, name)
        if d is None:
            continue
        ips = d.get("images_per_s", {})
        model = d.get("model", "?") + (
            f" ({d['pretrained']} weights)" if d.get("pretrained") not in (None, "None") else ""
        )
        parts.append(
            f"{model}: {_num(d.get('ratio_end_to_end_vs_raw'))} ({_num(ips.get('end_to_end'), 1)}"
            f" vs {_num(ips.get('raw'), 1)} img/s, {d.get('device', '?')}, {_load_text(d)})"
        )
        met = "met" if d.get("meets_target") else "not met"
        targets.append(f">= {_num(d.get('target_ratio_vs_raw'))} ({met})")
        threads = d.get("raw_torch_threads", d.get("torch_threads"))
        bases.append(
            f"raw forward at {threads if threads is not None else 'default'} torch threads; "
            f"{_num(d.get('ratio_end_to_end_vs_naive'))}x the one-image-at-a-time loop"
        )
    if not parts:
        return (title, "not measured", "", "")
    return (title, "; ".join(parts), "; ".join(targets), "; ".join(bases))


def row_cache(results: Path) -> Row:
    title = "2. second run over the same images with the cache (`embed_cache.py`)"
    d = _load(results, "embed_cache")
    if d is None:
        return (title, "not measured", "", "")
    same = "identical vectors" if d.get("identical_vectors") else "vectors DIFFER"
    measured = (
        f"{_num(d.get('speedup'), 1)}x faster on {d.get('n_images', '?')} images, {same} "
        f"({_num(d.get('speedup_unseen_files'), 1)}x when a new process re-hashes every file; "
        f"{_load_text(d)})"
    )
    return (title, measured, f">= {_num(d.get('target_speedup'))}x", "first run")


def row_zero_shot(results: Path) -> Row:
    d = _load(results, "zero_shot_speed")
    rows = _results(d) if d else []
    prompts = rows[0].get("prompts", "?") if rows else "?"
    title = f"3. zero-shot update, {prompts} prompts, already embedded (`zero_shot_speed.py`)"
    if not rows:
        return (title, "not measured", "", "")
    sizes = ", ".join(f"{_size(r.get('images'))}: {_num(r.get('update_ms'), 1)} ms" for r in rows)
    targets = "; ".join(f"{_num(r.get('target_ms'))} ms" for r in rows)
    base = "; ".join(
        f"{_num(r.get('naive_baseline_ms'), 1)} ms ({_num(r.get('speedup_vs_naive'))}x)"
        for r in rows
    )
    return (
        title,
        f"{sizes} ({_load_text(d)})",
        targets,
        f"naive version: {base}",
    )


def row_projection(results: Path) -> Row:
    title = "4. projection (`projection_speed.py`)"
    d = _load(results, "projection_speed")
    rows = _results(d) if d else []
    if not rows:
        return (title, "not measured", "", "")
    sizes = " / ".join(_size(r.get("points")) for r in rows)

    def col(key: str, digits: int = 2) -> str:
        return " / ".join(_num(r.get(key), digits) for r in rows)

    measured = (
        f"{sizes} points: PCA {col('pca_s')} s; UMAP warm {col('umap_warm_s', 1)} s; cache hit "
        f"{col('umap_cache_hit_s', 3)} s ({_load_text(d)})"
    )
    first = rows[0].get("umap_first_call_s")
    if first is not None:
        measured += f"; first UMAP call in a process {_num(first, 1)} s"
    return (title, measured, "report", f"sklearn PCA {col('sklearn_pca_s')} s")


def row_workbench(results: Path) -> Row:
    title = "5. prompt edit -> every view updated, server side (`workbench_update.py`)"
    d = _load(results, "workbench_update")
    rows = _results(d) if d else []
    if not rows:
        return (title, "not measured", "", "")
    measured = "; ".join(
        f"{_size(r.get('images'))}: {_num(r.get('prompt_edit_ms_median'), 1)} ms" for r in rows
    )
    base = "; ".join(
        f"{_num(r.get('naive_recompute_ms_median'), 1)} ms (whole update "
        f"{_num(r.get('speedup_vs_naive'))}x)"
        for r in rows
    )
    return (
        title,
        f"{measured} (map: {d.get('projection', '?')}; {_load_text(d)})",
        "; ".join(f"{_num(r.get('target_ms'))} ms" for r in rows),
        f"recompute everything: {base}",
    )


def row_map_bytes(results: Path) -> Row:
    title = "bytes per map update, all points moving (`workbench_update.py`)"
    d = _load(results, "workbench_update")
    rows = _results(d) if d else []
    if not rows:
        return (title, "not measured", "", "")
    last = rows[-1]
    measured = (
        f"{_num(last.get('map_bytes_per_point_all_move'), 1)} bytes/point at "
        f"{_size(last.get('images'))} points"
    )
    return (title, measured, f"< {_num(d.get('bytes_target_per_point'))}", "")


def row_load(results: Path) -> Row:
    title = "loading `clipviz-shapes` (`bundled_model_quality.py`)"
    d = _load(results, "bundled_model_quality")
    if d is None or d.get("load_seconds") is None:
        return (title, "not measured", "", "")
    return (title, f"{_num(d['load_seconds'])} s (torch already imported)", "< 2 s", "")


ROWS: list[Callable[[Path], Row]] = [
    row_embed,
    row_cache,
    row_zero_shot,
    row_projection,
    row_workbench,
    row_map_bytes,
    row_load,
]


def render(results: Path = RESULTS) -> str:
    """The markdown table (header and one row per benchmark) from the JSON in ``results``."""
    lines = [HEADER]
    for make in ROWS:
        cells = [c.replace("|", "\\|") for c in make(results)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def replace_table(text: str, table: str) -> str:
    """``text`` with everything between the markers replaced by ``table``."""
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        raise ValueError(f"README must hold exactly one {START} ... {END} pair, in that order")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", type=Path, default=README)
    parser.add_argument("--results", type=Path, default=RESULTS)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 if README is out of date")
    mode.add_argument("--print", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    table = render(args.results)
    if args.print:
        print(table)
        return 0
    text = args.readme.read_text(encoding="utf-8")
    try:
        new = replace_table(text, table)
    except ValueError as err:
        print(f"benchmark_table: {args.readme}: {err}", file=sys.stderr)
        return 2
    if args.check:
        if new != text:
            print(f"{args.readme} is out of date: run python tools/benchmark_table.py")
            return 1
        return 0
    args.readme.write_text(new, encoding="utf-8")
    print(f"wrote the benchmark table into {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
