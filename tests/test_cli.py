"""``clipviz embed`` and ``clipviz demo`` run as a user runs them: ``python -m clipviz ...``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import clipviz

REPO = Path(__file__).resolve().parents[1]


def _clipviz(*args: str, timeout: float = 300, **env_extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", **env_extra)
    return subprocess.run(
        [sys.executable, "-m", "clipviz", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO,
    )


def _counts(stdout: str) -> dict[str, int]:
    out = {}
    for line in stdout.splitlines():
        key, _, value = line.partition(":")
        if key in ("embedded", "from cache", "same content as another image", "skipped"):
            out[key] = int(value)
    return out


@pytest.fixture(scope="module")
def shapes_folder(tmp_path_factory) -> Path:
    """8 shape PNGs in two labelled sub-folders, one broken file, one non-image file."""
    root = tmp_path_factory.mktemp("cli_images")
    data = clipviz.datasets.shapes(8, seed=5)
    for i, (image, shape) in enumerate(zip(data.images, data.labels["shape"], strict=True)):
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(exist_ok=True)
        image.save(folder / f"{shape}_{i}.png")
    (root / "a" / "broken.png").write_bytes(b"this is not a png")
    (root / "readme.txt").write_text("not an image, not even looked at")
    return root


@pytest.mark.slow
def test_embed_twice_second_run_all_from_cache(shapes_folder, tmp_path, shapes_model):
    cache = tmp_path / "cache"
    first = _clipviz("embed", str(shapes_folder), "--cache", str(cache), "--batch-size", "3")
    assert first.returncode == 0, first.stderr
    assert _counts(first.stdout) == {"embedded": 8, "from cache": 0, "skipped": 1}
    assert "a/broken.png:" in first.stdout  # the skipped file, with its reason
    assert "embedding (clipviz-shapes)" in first.stderr  # the progress bar
    from clipviz.engine import EmbeddingCache

    stored = EmbeddingCache(cache, shapes_model.info.key, shapes_model.info.dim).load()
    assert len(stored) == 8, "the 8 vectors were not written to the --cache folder"

    second = _clipviz("embed", str(shapes_folder), "--cache", str(cache), "--no-progress")
    assert second.returncode == 0, second.stderr
    assert _counts(second.stdout) == {"embedded": 0, "from cache": 8, "skipped": 1}
    assert "embedding (clipviz-shapes)" not in second.stderr


def test_embed_bad_folder_exits_2_with_a_clear_message(tmp_path):
    missing = tmp_path / "no_such_folder"
    res = _clipviz("embed", str(missing))
    assert res.returncode == 2
    assert "folder not found" in res.stderr and str(missing) in res.stderr
    assert "Traceback" not in res.stderr

    empty = tmp_path / "empty"
    empty.mkdir()
    res = _clipviz("embed", str(empty))
    assert res.returncode == 2 and "no image files under" in res.stderr

    res = _clipviz("embed")
    assert res.returncode == 2 and "give either a FOLDER or --sample" in res.stderr


def test_embed_unknown_model_exits_2_and_suggests(shapes_folder, tmp_path):
    res = _clipviz("embed", str(shapes_folder), "--model", "ViT-B-23", "--cache", str(tmp_path))
    assert res.returncode == 2
    assert "ViT-B-32" in res.stderr and "Traceback" not in res.stderr


def test_bad_option_value_is_a_usage_error():
    res = _clipviz("embed", "x", "--batch-size", "0")
    assert res.returncode == 2 and "expected a positive integer, got 0" in res.stderr


def test_help_shows_examples():
    res = _clipviz("embed", "--help")
    assert res.returncode == 0
    assert "examples:" in res.stdout and "--pretrained openai" in res.stdout
    res = _clipviz("--help")
    assert res.returncode == 0 and "embed" in res.stdout and "demo" in res.stdout
    assert _clipviz().returncode == 2  # no command: help, and a usage exit code


def test_demo_dry_run_prints_the_jupyterlab_command():
    res = _clipviz("demo", "--dry-run", "--port", "8899", "--no-browser")
    assert res.returncode == 0, res.stderr
    line = res.stdout.strip().splitlines()[-1]
    assert line.startswith("running: ")
    assert "-m jupyterlab" in line
    assert str(REPO / "notebooks" / "01_quickstart.ipynb") in line
    assert "--port=8899" in line and "--no-browser" in line
    assert f"--ServerApp.root_dir={REPO}" in line
    assert "--LabApp.default_url=/lab/tree/notebooks/01_quickstart.ipynb" in line


def test_demo_missing_notebook_exits_2(tmp_path):
    res = _clipviz("demo", "--dry-run", "--notebook", str(tmp_path / "nope.ipynb"))
    assert res.returncode == 2 and "notebook not found" in res.stderr


def test_embed_unwritable_cache_exits_2_with_one_line(shapes_folder, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("a file where the cache folder should go")
    res = _clipviz("embed", str(shapes_folder), "--cache", str(blocker / "cache"))
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert "cannot write to the cache folder" in res.stderr and str(blocker) in res.stderr


def test_embed_all_bad_folder_exits_2_saying_why(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    for name in ("a.png", "b.jpg"):
        (folder / name).write_text("not an image")
    os.mkfifo(folder / "pipe.jpg")  # would block a naive reader forever
    res = _clipviz("embed", str(folder), "--cache", str(tmp_path / "c"), "--no-progress")
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert "all 3 images were skipped" in res.stderr
    assert "2 not an image file" in res.stderr and "1 not a regular file" in res.stderr


def test_embed_counts_duplicates_honestly_and_honours_clipviz_cache_dir(shapes_folder, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    pngs = sorted(shapes_folder.rglob("*_*.png"))[:3]
    for p in pngs:
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "zz_copy.png").write_bytes(pngs[0].read_bytes())
    env_cache = tmp_path / "env_cache"
    res = _clipviz("embed", str(folder), "--no-progress", CLIPVIZ_CACHE_DIR=str(env_cache))
    assert res.returncode == 0, res.stderr
    assert f"cache: {env_cache}" in res.stdout
    counts = _counts(res.stdout)
    assert counts == {
        "embedded": 3,
        "from cache": 0,
        "same content as another image": 1,
        "skipped": 0,
    }
    assert list((env_cache / "embeddings").rglob("*.npy"))  # written where the variable says
