"""Build notebooks/*.ipynb from their sources in tools/notebooks_src/ (the source of truth).

Each source is a Python file in the "percent" format that jupytext and VS Code also read::

    # %% [markdown]
    # # A title
    # Some text.

    # %%
    code = "a code cell"

Lines before the first ``# %%`` marker (a docstring, ruff directives) are not part of the
notebook. The .ipynb files are written without outputs and with stable cell ids, so that the
committed notebooks are stripped and a re-run produces no diff.

Usage::

    python tools/make_notebooks.py            # (re)write every notebook
    python tools/make_notebooks.py --check    # exit 1 if a notebook is stale or has outputs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "tools" / "notebooks_src"
NOTEBOOKS = ROOT / "notebooks"
MARKER = "# %%"

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LANGUAGE_INFO = {"name": "python", "pygments_lexer": "ipython3"}


def _split_cells(text: str) -> list[tuple[str, list[str]]]:
    """Return ``(kind, lines)`` per cell, kind being "markdown" or "code"."""
    cells: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith(MARKER):
            rest = line[len(MARKER) :].strip()
            if rest not in ("", "[markdown]"):
                raise ValueError(f"unknown cell marker {line!r}: use '# %%' or '# %% [markdown]'")
            cells.append(("markdown" if rest else "code", []))
        elif cells:
            cells[-1][1].append(line)
    return cells


def _markdown_text(lines: list[str]) -> str:
    out = []
    for line in lines:
        if line.strip() == "":
            out.append("")
        elif line == "#" or line.startswith("# "):
            out.append(line[2:])
        else:
            raise ValueError(f"markdown cell line must start with '# ': {line!r}")
    return "\n".join(out).strip("\n")


def build(source: Path) -> nbformat.NotebookNode:
    """Build the stripped notebook for one percent-format source file.

    Parameters
    ----------
    source : Path
        A ``tools/notebooks_src/NN_name.py`` file.

    Returns
    -------
    nbformat.NotebookNode
        A v4 notebook with no outputs, no execution counts and ids ``cell-00``, ``cell-01``, ...
    """
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": dict(LANGUAGE_INFO)}
    for index, (kind, lines) in enumerate(_split_cells(source.read_text(encoding="utf-8"))):
        cell_id = f"cell-{index:02d}"
        if kind == "markdown":
            nb.cells.append(nbformat.v4.new_markdown_cell(_markdown_text(lines), id=cell_id))
        else:
            code = "\n".join(lines).strip("\n")
            nb.cells.append(nbformat.v4.new_code_cell(code, id=cell_id))
    if not nb.cells:
        raise ValueError(f"{source} has no '# %%' cells")
    nbformat.validate(nb)
    return nb


def render(nb: nbformat.NotebookNode) -> str:
    """The exact text written to disk (nbformat's layout, trailing newline)."""
    return nbformat.writes(nb) + "\n"


def target_for(source: Path) -> Path:
    return NOTEBOOKS / f"{source.stem}.ipynb"


def sources() -> list[Path]:
    return sorted(SOURCES.glob("[0-9][0-9]_*.py"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify instead of writing")
    args = parser.parse_args(argv)
    stale = []
    for source in sources():
        target, text = target_for(source), render(build(source))
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(target)
        else:
            target.write_text(text, encoding="utf-8")
            print(f"wrote {target.relative_to(ROOT)}")
    if stale:
        names = ", ".join(str(p.relative_to(ROOT)) for p in stale)
        print(
            f"stale or unstripped: {names}. The notebooks are built from tools/notebooks_src/*.py:"
            " edit the source (not the .ipynb, whose edits the build overwrites), then run"
            " python tools/make_notebooks.py",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
