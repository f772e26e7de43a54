"""Layer rules: importing compute or views must not pull in torch (checked in a fresh process)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def _loaded_after(module: str) -> set[str]:
    code = (
        "import json, sys\n"
        f"import {module}\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_compute_imports_no_torch_widgets_or_umap():
    loaded = _loaded_after("clipviz.compute")
    assert not loaded & {"torch", "open_clip", "ipywidgets", "umap", "numba", "torchvision"}


def test_compute_does_not_import_engine_or_models():
    code = "import sys, clipviz.compute; print([m for m in sys.modules if m.startswith(('clipviz.engine', 'clipviz.models', 'clipviz.views', 'clipviz.app'))])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_views_import_no_torch():
    pytest.importorskip("clipviz.views")
    loaded = _loaded_after("clipviz.views")
    assert not loaded & {"torch", "open_clip", "torchvision"}
