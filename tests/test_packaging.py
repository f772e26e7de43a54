"""Packaging: extras that make each feature work for users, shipped notebooks, `clipviz demo`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import tomllib
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _names(reqs: list[str]) -> dict[str, Requirement]:
    return {Requirement(r).name.lower(): Requirement(r) for r in reqs}


def test_jupyterlab_is_an_extra_not_a_dependency():
    deps = _names(PROJECT["project"]["dependencies"])
    extras = PROJECT["project"]["optional-dependencies"]
    assert "jupyterlab" not in deps
    assert {"jupyterlab", "nbclient", "ipykernel"} <= set(_names(extras["lab"]))
    assert "jupyterlab" in _names(extras["test"])  # .ci/run installs the test extra


def test_photos_extra_and_binder_install_it():
    extras = PROJECT["project"]["optional-dependencies"]
    assert "scikit-image" in _names(extras["photos"])
    lines = (REPO / "binder" / "requirements.txt").read_text().splitlines()
    assert "-e .[lab,photos]" in [ln.strip() for ln in lines]


def test_open_clip_minimum_has_the_arguments_clipviz_passes():
    # pretrained_text / require_pretrained for hub repos / local-dir: first in open_clip v3.0.0
    spec = _names(PROJECT["project"]["dependencies"])["open_clip_torch"].specifier
    assert Version("3.0.0") in spec and Version("2.32.0") not in spec


def test_package_list_covers_every_subpackage_and_ships_the_notebooks():
    import setuptools

    listed = set(PROJECT["tool"]["setuptools"]["packages"])
    found = set(setuptools.find_packages(where=str(REPO), include=["clipviz*"]))
    assert listed == found | {"clipviz.notebooks"}
    assert PROJECT["tool"]["setuptools"]["package-dir"]["clipviz.notebooks"] == "notebooks"
    assert "*.ipynb" in PROJECT["tool"]["setuptools"]["package-data"]["clipviz.notebooks"]
    assert (REPO / "notebooks" / "01_quickstart.ipynb").is_file()


def test_photos_without_scikit_image_names_the_extra():
    code = (
        "import sys; sys.modules['skimage'] = None  # as if scikit-image were not installed\n"
        "from clipviz.datasets import photos\n"
        "try:\n    photos()\nexcept ImportError as err:\n    print(err)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert 'pip install "clipviz[photos]"' in out.stdout
    assert len(photos_sklearn_only()) == 2


def photos_sklearn_only():
    from clipviz.datasets import photos

    return photos(sources=["sklearn"])


def test_demo_from_an_installed_package_works_on_a_copy(tmp_path):
    from clipviz.cli import _working_copy

    shipped = tmp_path / "site-packages" / "clipviz" / "notebooks" / "01_quickstart.ipynb"
    shipped.parent.mkdir(parents=True)
    shipped.write_text("{}")
    copy = _working_copy(shipped, tmp_path / "clipviz-demo")
    assert copy == tmp_path / "clipviz-demo" / "01_quickstart.ipynb" and copy.read_text() == "{}"
    copy.write_text('{"edited": 1}')
    assert _working_copy(shipped, tmp_path / "clipviz-demo").read_text() == '{"edited": 1}'


def test_demo_headless_executes_and_prints_what_to_open(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("from pathlib import Path\nPath('snap.html').write_text('<p>')"),
        nbformat.v4.new_code_cell("print(6 * 7)"),
    ]
    src = tmp_path / "demo.ipynb"
    nbformat.write(nb, src)
    out_dir = tmp_path / "out"
    run = subprocess.run(
        [sys.executable, "-m", "clipviz", "demo", "--notebook", str(src), "--headless",
         str(out_dir)],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    executed = nbformat.read(out_dir / "demo.ipynb", as_version=4)
    assert executed.cells[1].outputs[0]["text"].strip() == "42"
    assert f"executed notebook: {out_dir / 'demo.ipynb'}" in run.stdout
    assert f"snapshot (open in a browser): {out_dir / 'snap.html'}" in run.stdout


def test_demo_headless_failure_is_one_line_exit_2(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("raise ValueError('boom')")]
    src = tmp_path / "bad.ipynb"
    nbformat.write(nb, src)
    run = subprocess.run(
        [sys.executable, "-m", "clipviz", "demo", "--notebook", str(src), "--headless",
         str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert "bad.ipynb failed" in run.stderr and json.loads((tmp_path / "out" / "bad.ipynb").read_text())
