"""Reopening a workbench in a new process: with every vector cached, no torch and no model build;
a file rewritten in place is embedded again by a model built for it (no stale vector)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import clipviz.datasets

SESSION = """
import json, sys
import clipviz
model = clipviz.load_model("clipviz-shapes", device="cpu")
images = clipviz.ImageSet.from_folder(sys.argv[1])
wb = clipviz.Workbench(images, model=model, projection="pca", classnames=["circle", "square"])
wb._ipython_display_()  # displayed as a notebook does: every widget made, the static snapshot
wb.selection = wb.ids[:3]  # ids from Python: looked up by the Workbench and a view
wb.views["heatmap"].selection = wb.ids[3:5]
# the status line, the snapshot's tables and the id look-ups need no pandas (0.7 s to import)
pandas = "pandas" in sys.modules
per_class = wb.metrics.per_class  # read: made now, from the same counts
print(json.dumps({
    "torch": "torch" in sys.modules, "open_clip": "open_clip" in sys.modules, "pandas": pandas,
    "per_class_n": [int(x) for x in per_class["n"]], "acc1": wb.metrics.acc1,
    "built": model.loaded, "encoded": wb.embeddings.counts.encoded,
    "texts_encoded": wb.text_encodes,
    "top1": [int(x) for x in wb.predictions.topk_indices[:, 0]],
    "probs": [float(x) for x in wb.predictions.probs[:, 0]],
    "first": [float(x) for x in wb.embeddings.vectors[0, :4]],
}))
"""


def _session(folder, cache) -> dict:
    env = dict(os.environ, CLIPVIZ_CACHE_DIR=str(cache), HF_HUB_OFFLINE="1")
    out = subprocess.run(
        [sys.executable, "-c", SESSION, str(folder)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("reopen") / "images"
    data = clipviz.datasets.shapes(12, seed=3)
    for i, (image, shape) in enumerate(zip(data.images, data.labels["shape"], strict=True)):
        (root / shape).mkdir(parents=True, exist_ok=True)
        image.save(root / shape / f"{i:03d}.png")
    return root


def test_a_warm_reopen_builds_no_model_and_scores_the_same(folder, tmp_path):
    cache = tmp_path / "cache"
    first = _session(folder, cache)
    assert first["torch"] and first["built"] and first["encoded"] == 12
    again = _session(folder, cache)
    assert not again["torch"] and not again["open_clip"] and not again["built"]
    assert not again["pandas"]
    assert again["per_class_n"] == first["per_class_n"] and sum(again["per_class_n"]) > 0
    assert again["acc1"] == first["acc1"]
    assert again["encoded"] == 0 and again["texts_encoded"] == 0
    assert again["top1"] == first["top1"] and again["probs"] == first["probs"]
    assert again["first"] == first["first"]


def test_a_file_rewritten_in_place_is_embedded_again(folder, tmp_path):
    from PIL import Image

    cache = tmp_path / "cache"
    _session(folder, cache)
    target = sorted(folder.rglob("*.png"))[0]
    stat = target.stat()
    Image.new("RGB", (64, 64), (250, 250, 250)).save(target)  # other content, same name
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even with the old mtime
    again = _session(folder, cache)
    assert again["built"] and again["encoded"] == 1  # the model was built for that one file
    third = _session(folder, cache)
    assert not third["built"] and third["encoded"] == 0
