"""The ``clipviz`` command line: precompute embeddings before a class, open the quickstart.

``clipviz embed`` fills the embedding cache for a folder of images (or a bundled sample), so a
notebook later finds every vector already computed. ``clipviz demo`` starts JupyterLab on the
quickstart notebook. Exit codes: 0 success, 2 bad input (folder, model or weights, option),
130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clipviz import _cli_store

EXIT_OK, EXIT_USAGE, EXIT_INTERRUPTED = 0, 2, 130
QUICKSTART = "01_quickstart.ipynb"
#: The quickstart's images (``shapes(300, seed=1)``); ``--sample shapes`` embeds exactly these.
SHAPES_N, SHAPES_SEED = 300, 1
_MAX_SKIP_LINES = 10

_EPILOG_EMBED = """examples:
  clipviz embed ~/photos                                  # bundled clipviz-shapes model
  clipviz embed ~/photos --model ViT-B-32 --pretrained openai --batch-size 128
  clipviz embed ~/photos --model ViT-B-32 --pretrained ./weights.safetensors --cache ./cache
  clipviz embed --sample shapes                           # the quickstart's images
"""
_EPILOG_DEMO = """examples:
  clipviz demo                     # JupyterLab on the quickstart notebook
  clipviz demo --headless out      # run it without a browser: out/01_quickstart.ipynb + .html
  clipviz demo --port 8899 --no-browser
  clipviz demo --dry-run           # print the command, start nothing
"""


class UsageError(Exception):
    """Bad input from the command line: printed without a traceback, exit code 2."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the ``clipviz`` entry point)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    from clipviz.models._errors import ModelLoadError

    try:
        return int(args.run(args))
    except (UsageError, ModelLoadError) as err:  # a model error raised after loading, too
        print(f"clipviz {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"clipviz {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clipviz",
        description="clipviz: an interactive Jupyter workbench for CLIP models.",
        epilog="run 'clipviz embed --help' or 'clipviz demo --help' for examples",
    )
    from clipviz import __version__

    parser.add_argument("--version", action="version", version=f"clipviz {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    fmt = argparse.RawDescriptionHelpFormatter

    embed = sub.add_parser(
        "embed",
        help="precompute image embeddings into the cache",
        description="Embed every image under FOLDER (recursively) and store the vectors in "
        "clipviz's disk cache, so notebooks and the Workbench find them ready.",
        epilog=_EPILOG_EMBED,
        formatter_class=fmt,
    )
    embed.add_argument("folder", nargs="?", help="folder of images (sub-folder names = labels)")
    embed.add_argument(
        "--sample",
        choices=["shapes", "photos"],
        help=f"embed a bundled sample instead of a folder (shapes: the quickstart's "
        f"{SHAPES_N} images)",
    )
    embed.add_argument(
        "--model", default="clipviz-shapes", help="model name (default: %(default)s)"
    )
    embed.add_argument("--pretrained", help="pretrained tag (e.g. openai) or a weights file")
    embed.add_argument(
        "--cache",
        help="cache folder (default: $CLIPVIZ_CACHE_DIR, else the platform's user cache dir)",
    )
    embed.add_argument("--batch-size", type=_positive_int, default=64, help="default: %(default)s")
    embed.add_argument("--device", default="auto", help="cpu, cuda, mps or auto (default)")
    embed.add_argument("--no-progress", action="store_true", help="no progress bar")
    embed.set_defaults(run=run_embed)
    _cli_store.add_store_options(embed)

    demo = sub.add_parser(
        "demo",
        help="open JupyterLab on the quickstart notebook",
        description="Start JupyterLab on the quickstart notebook (stop it with Ctrl-C).",
        epilog=_EPILOG_DEMO,
        formatter_class=fmt,
    )
    demo.add_argument("--notebook", help=f"notebook to open (default: notebooks/{QUICKSTART})")
    demo.add_argument("--port", type=_positive_int, help="port for JupyterLab")
    demo.add_argument("--no-browser", action="store_true", help="do not open a browser")
    demo.add_argument("--dry-run", action="store_true", help="print the command and exit")
    demo.add_argument(
        "--headless",
        metavar="OUT",
        help="execute the notebook into folder OUT (executed notebook + HTML snapshot) instead "
        "of starting JupyterLab",
    )
    demo.set_defaults(run=run_demo)
    _cli_store.add_index_parser(sub, fmt)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


# ------------------------------------------------------------------------------- embed
def run_embed(args: argparse.Namespace) -> int:
    """``clipviz embed``: load the images and the model, embed through the cache, report."""
    if args.store:
        return _cli_store.run_store_embed(args)
    images, what = _embed_source(args)
    root = _writable_cache(args.cache)
    model = _load_model(args)
    from clipviz.engine import embed_images
    from clipviz.engine.embed import NoImagesEmbeddedError

    print(f"embedding {len(images)} images from {what} with {args.model}", flush=True)
    print(f"cache: {root}", flush=True)
    try:
        emb = embed_images(
            model, images, batch_size=args.batch_size, cache=root, progress=not args.no_progress
        )
    except NoImagesEmbeddedError as err:
        raise UsageError(str(err)) from None
    _report(emb)
    return EXIT_OK


def _writable_cache(cache: str | None) -> Path:
    """The cache folder, created and checked writable: filling it is this command's job."""
    from clipviz.engine.cache import CACHE_ENV, resolve_cache_dir

    root = resolve_cache_dir(cache if cache else True)
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".clipviz-probe-"):
            pass
    except OSError as err:
        hint = "--cache FOLDER" if cache else f"--cache FOLDER or set {CACHE_ENV}"
        raise UsageError(
            f"cannot write to the cache folder {str(root)!r} ({err.strerror or err}); "
            f"pass a writable {hint}"
        ) from None
    return root


def _embed_source(args: argparse.Namespace) -> tuple[Any, str]:
    if (args.folder is None) == (args.sample is None):
        raise UsageError("give either a FOLDER or --sample shapes|photos (exactly one)")
    if args.sample == "shapes":
        from clipviz.datasets import shapes

        data = shapes(SHAPES_N, seed=SHAPES_SEED)
        return data.to_imageset(label="shape"), f"the shapes sample (n={SHAPES_N})"
    if args.sample == "photos":
        from clipviz.datasets import photos

        return photos(), "the bundled photos"
    from clipviz.engine import ImageSet

    try:
        return ImageSet.from_folder(args.folder), repr(str(args.folder))
    except (OSError, ValueError) as err:  # missing, a file, or no images in it
        raise UsageError(str(err)) from None


def _load_model(args: argparse.Namespace) -> Any:
    from clipviz.models import load_model
    from clipviz.models._errors import ModelLoadError

    try:
        return load_model(args.model, args.pretrained, device=args.device)
    except (ModelLoadError, OSError) as err:  # unknown name/tag, weights not downloadable
        raise UsageError(f"cannot load model {args.model!r}: {err}") from None


def _report(emb: Any) -> None:
    counts = emb.counts
    skipped = list(emb.skipped)
    print(f"embedded: {counts.encoded}")
    print(f"from cache: {counts.from_cache}")
    if counts.duplicates:
        print(f"same content as another image: {counts.duplicates}")
    print(f"skipped: {len(skipped)}")
    for item, reason in skipped[:_MAX_SKIP_LINES]:
        print(f"  {item}: {reason}")
    if len(skipped) > _MAX_SKIP_LINES:
        print(f"  ... and {len(skipped) - _MAX_SKIP_LINES} more")


# -------------------------------------------------------------------------------- demo
def run_demo(args: argparse.Namespace) -> int:
    """``clipviz demo``: JupyterLab on the quickstart (or ``--notebook``), or ``--headless``."""
    notebook = Path(args.notebook).expanduser() if args.notebook else find_quickstart()
    if not notebook.is_file():
        raise UsageError(f"notebook not found: {str(notebook)!r}")
    notebook = notebook.resolve()
    if args.headless:
        return run_headless(notebook, Path(args.headless).expanduser())
    _require("jupyterlab", "clipviz demo")
    if _inside_package(notebook):  # site-packages: open a working copy the user may edit
        notebook = _working_copy(notebook, Path.cwd() / "clipviz-demo")
    root = notebook.parent.parent if notebook.parent.name == "notebooks" else notebook.parent
    rel = notebook.relative_to(root).as_posix()
    cmd = [sys.executable, "-m", "jupyterlab", str(notebook), f"--ServerApp.root_dir={root}"]
    cmd.append(f"--LabApp.default_url=/lab/tree/{rel}")  # the printed URL opens it too
    if args.port:
        cmd.append(f"--port={args.port}")
    if args.no_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers often run as root; Jupyter refuses without it
    print("running: " + " ".join(cmd), flush=True)
    if args.dry_run:
        return EXIT_OK
    return subprocess.call(cmd)


def run_headless(notebook: Path, out: Path) -> int:
    """Execute ``notebook`` inside ``out`` (its outputs land there) and print what to open."""
    _require("nbclient", "clipviz demo --headless")
    _require("ipykernel", "clipviz demo --headless")
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create the output folder {str(out)!r}: {err}") from None
    target = out.resolve() / notebook.name
    nb = nbformat.read(notebook, as_version=4)
    print(f"running {notebook.name} in {out.resolve()} (no browser)", flush=True)
    client = NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(out)}}
    )
    try:
        client.execute()
    except CellExecutionError as err:
        nbformat.write(nb, target)
        first = str(err).strip().splitlines()[-1] if str(err).strip() else "a cell failed"
        raise UsageError(f"{notebook.name} failed ({first}); see {target}") from None
    nbformat.write(nb, target)
    print(f"executed notebook: {target}")
    for html in sorted(out.resolve().glob("*.html")):
        print(f"snapshot (open in a browser): {html}")
    return EXIT_OK


def _require(module: str, what: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise UsageError(f'{what} needs {module}: pip install "clipviz[lab]"')


def _inside_package(path: Path) -> bool:
    import clipviz

    return Path(clipviz.__file__).resolve().parent in path.parents


def _working_copy(notebook: Path, folder: Path) -> Path:
    """Copy a shipped notebook into ``folder`` once (an existing copy, maybe edited, is kept)."""
    import shutil

    target = folder / notebook.name
    if not target.exists():
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(notebook, target)
        print(f"copied {notebook.name} to {folder}", flush=True)
    return target


def _shipped_notebooks() -> list[Path]:
    """The quickstart as package data (clipviz.notebooks maps to the repository's notebooks/)."""
    from importlib import resources

    try:
        path = resources.files("clipviz.notebooks") / QUICKSTART
    except ModuleNotFoundError:  # a source checkout on PYTHONPATH, not installed
        return []
    return [Path(str(path))]


def find_quickstart() -> Path:
    """The quickstart notebook: next to the package (a source checkout) or under the cwd."""
    import clipviz

    candidates = [
        *_shipped_notebooks(),  # package data: an installed clipviz
        Path(clipviz.__file__).resolve().parent / "notebooks" / QUICKSTART,  # shipped copy
        Path(clipviz.__file__).resolve().parents[1] / "notebooks" / QUICKSTART,  # checkout
        Path(os.getcwd()) / "notebooks" / QUICKSTART,
        Path(os.getcwd()) / QUICKSTART,
    ]
    for path in candidates:
        if path.is_file():
            return path
    looked = "\n  ".join(str(p) for p in candidates)
    raise UsageError(
        f"cannot find {QUICKSTART}; looked in:\n  {looked}\n"
        "run from a clipviz checkout (git clone ...; cd clipviz) or pass --notebook PATH"
    )


if __name__ == "__main__":
    sys.exit(main())
