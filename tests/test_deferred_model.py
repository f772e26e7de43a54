"""load_model(defer=True): a model loaded before comes back without torch, built on first use.

Each test has its own cache folder (``CLIPVIZ_CACHE_DIR``), where the manifests live.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import clipviz.models as M
from clipviz.models import _bundled, _manifest
from clipviz.models._deferred import DeferredClipModel

TEXTS = ["a red circle", "a blue star"]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPVIZ_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _local_dir(tmp_path: Path, name: str = "my-model") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for f in _bundled.bundled_files("clipviz-shapes"):
        shutil.copy(f, folder / f.name)
    return folder


def test_second_load_is_deferred_and_builds_the_same_model_on_first_use(cache):
    first = M.load_model("clipviz-shapes", device="cpu")
    assert not isinstance(first, DeferredClipModel) and first.loaded
    again = M.load_model("clipviz-shapes", device="cpu")
    assert isinstance(again, DeferredClipModel) and isinstance(again, M.ClipModel)
    assert not again.loaded and "not built yet" in repr(again)
    assert again.info == first.info and again.image_size == first.image_size
    assert again.tower == first.tower == ("ModifiedResNet", False)
    np.testing.assert_array_equal(again.encode_texts(TEXTS), first.encode_texts(TEXTS))
    assert again.loaded and again.context_length == first.context_length == 16
    assert M.load_model("clipviz-shapes", device="cpu", defer=False).loaded


def test_a_deferred_load_imports_no_torch(cache):
    M.load_model("clipviz-shapes", device="cpu")  # writes the manifest
    code = (
        "import sys, clipviz\n"
        "m = clipviz.load_model('clipviz-shapes')\n"
        "print(type(m).__name__, m.dim, 'torch' in sys.modules, 'open_clip' in sys.modules)\n"
    )
    env = dict(os.environ, CLIPVIZ_CACHE_DIR=str(cache))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.split() == ["DeferredClipModel", "128", "False", "False"]


def test_rewritten_weights_are_never_served_from_a_stale_manifest(cache, tmp_path):
    from safetensors.torch import load_file, save_file

    folder = _local_dir(tmp_path)
    name = f"local-dir:{folder}"
    before = M.load_model(name, device="cpu")
    weights = folder / _bundled.WEIGHTS_FILE
    state = load_file(weights)
    state["logit_scale"] = state["logit_scale"] + 0.5  # same size, other bytes
    save_file(state, weights)
    after = M.load_model(name, device="cpu")
    assert not isinstance(after, DeferredClipModel)  # no manifest for these bytes yet
    assert after.key != before.key
    assert after.logit_scale == pytest.approx(before.logit_scale * np.exp(0.5), rel=1e-5)
    deferred = M.load_model(name, device="cpu")
    assert isinstance(deferred, DeferredClipModel) and deferred.info == after.info


def test_precision_is_part_of_the_manifest(cache):
    fp32 = M.load_model("clipviz-shapes", device="cpu")
    bf16 = M.load_model("clipviz-shapes", device="cpu", precision="bf16")
    assert not isinstance(bf16, DeferredClipModel) and bf16.key != fp32.key
    again = M.load_model("clipviz-shapes", device="cpu", precision="bf16")
    assert isinstance(again, DeferredClipModel) and again.key == bf16.key


def test_a_damaged_manifest_is_ignored(cache):
    M.load_model("clipviz-shapes", device="cpu")
    (path,) = _manifest.folder().glob("*.json")
    path.write_text(path.read_text().replace('"dim": 128', '"dim": 64'))
    model = M.load_model("clipviz-shapes", device="cpu")
    assert not isinstance(model, DeferredClipModel) and model.dim == 128


def test_a_manifest_that_disagrees_with_the_built_model_is_an_error_and_removed(cache):
    real = M.load_model("clipviz-shapes", device="cpu")
    (path,) = _manifest.folder().glob("*.json")
    key = path.name.split("-")[0]
    saved = _manifest.read(key)
    wrong = _manifest.Manifest(
        saved.info.__class__(**{**saved.info.__dict__, "logit_scale": 1.0}),
        saved.image_size,
        saved.context_length,
        saved.tower,
    )
    _manifest.write(key, wrong)  # well formed, checksummed, but not this model
    model = M.load_model("clipviz-shapes", device="cpu")
    assert isinstance(model, DeferredClipModel) and model.logit_scale == 1.0
    with pytest.raises(M.ModelLoadError, match="not the one its saved manifest described"):
        model.encode_texts(TEXTS)
    assert _manifest.read(key) is None
    assert M.load_model("clipviz-shapes", device="cpu").logit_scale == real.logit_scale


def test_gpu_precisions_and_devices_are_checked_at_once(cache):
    M.load_model("clipviz-shapes", device="cpu")
    with pytest.raises(M.PrecisionError, match="needs a GPU"):
        M.load_model("clipviz-shapes", device="cpu", precision="fp16")
    with pytest.raises(M.DeviceError):
        M.load_model("clipviz-shapes", device="not-a-device")


def test_an_unwritable_cache_only_means_no_deferral(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CLIPVIZ_CACHE_DIR", str(blocker))
    assert M.load_model("clipviz-shapes", device="cpu").loaded
    assert M.load_model("clipviz-shapes", device="cpu").loaded
