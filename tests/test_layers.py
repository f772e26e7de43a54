"""Layer rules, checked in a fresh process: every module of clipviz.compute and clipviz.views
imports without torch, views never import the engine, compute never imports higher layers.

Each module is imported explicitly (walking the package): ``clipviz.views`` resolves its names
lazily, so importing the package alone would import no view at all.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import clipviz.compute
import clipviz.views


def _modules(package) -> list[str]:
    names = [package.__name__]
    for info in pkgutil.walk_packages(package.__path__, prefix=package.__name__ + "."):
        names.append(info.name)
    return names


def _loaded_after(modules: list[str]) -> list[str]:
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _top(loaded: list[str]) -> set[str]:
    return {m.split(".")[0] for m in loaded}


def test_walk_finds_the_view_and_compute_modules():
    views, compute = _modules(clipviz.views), _modules(clipviz.compute)
    assert {"clipviz.views.grid", "clipviz.views.heatmap", "clipviz.views.embedding_map"} <= set(
        views
    )
    assert {"clipviz.compute.zeroshot", "clipviz.compute.projection"} <= set(compute)


def test_every_compute_module_imports_no_torch_widgets_or_umap():
    loaded = _loaded_after(_modules(clipviz.compute))
    bad = _top(loaded) & {"torch", "open_clip", "ipywidgets", "umap", "numba", "torchvision"}
    assert not bad
    higher = ("clipviz.engine", "clipviz.models", "clipviz.views", "clipviz.app")
    assert [m for m in loaded if m.startswith(higher)] == []


def test_every_view_module_imports_no_torch_and_no_engine():
    modules = _modules(clipviz.views)
    loaded = _loaded_after(modules)
    assert set(modules) <= set(loaded)  # really imported, not just the lazy package
    assert not _top(loaded) & {"torch", "open_clip", "torchvision"}
    higher = ("clipviz.engine", "clipviz.models", "clipviz.app")
    assert [m for m in loaded if m.startswith(higher)] == []
