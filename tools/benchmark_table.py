"""Regenerate the README's benchmark table from ``benchmarks/results/*.json``.

Every number in the table is read from a JSON file written by a script in ``benchmarks/``; the
table sits between ``<!-- benchmarks:start -->`` and ``<!-- benchmarks:end -->`` in README.md.

    python tools/benchmark_table.py            # rewrite the table in README.md
    python tools/benchmark_table.py --check    # exit 1 when README.md is out of date
    python tools/benchmark_table.py --print    # print the table only

A missing or unreadable result file gives rows saying "not measured" instead of old numbers.
Each row states the value the JSON holds, the issue's target, a verdict computed from the two, the
baseline measured in the same run and the load average the run recorded. The rows are built in
``benchmark_rows.py`` (embedding, workbench), ``benchmark_rows_map.py`` (map),
``benchmark_rows_research.py`` (store, models) and ``benchmark_rows_analysis.py`` (saliency,
comparison); ``benchmark_cells.py`` formats and compares.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import benchmark_rows
import benchmark_rows_analysis
import benchmark_rows_map
import benchmark_rows_research
from benchmark_cells import Row

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
START, END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"
COLUMNS = (
    "area",
    "measure",
    "measured",
    "target",
    "target met?",
    "baseline / ratio, same run",
    "load during the run",
)
HEADER = "| " + " | ".join(COLUMNS) + " |\n" + "|" + " --- |" * len(COLUMNS)
AREAS = (
    benchmark_rows.AREAS
    + benchmark_rows_map.AREAS
    + benchmark_rows_research.AREAS
    + benchmark_rows_analysis.AREAS
)


def rows(results: Path = RESULTS) -> list[Row]:
    """Every row of the table, area by area, from the JSON in ``results``."""
    return [row for area in AREAS for row in area(results)]


def render(results: Path = RESULTS) -> str:
    """The markdown table (header and one row per measure) from the JSON in ``results``."""
    lines = [HEADER]
    for row in rows(results):
        cells = [c.replace("|", "\\|") for c in row.cells()]
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
