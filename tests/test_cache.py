"""The embedding disk cache: hits, misses, renames, edits, atomic shards, two writers, kill -9.

Damaged, unreadable and read-only caches: test_cache_faults.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from cache_helpers import Counting, embed, shapes_folder
from PIL import Image

import clipviz.datasets
from clipviz.engine import EmbeddingCache, ImageSet
from clipviz.engine.cache import resolve_cache_dir


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return shapes_folder(tmp_path_factory.mktemp("imgs"))


def test_second_run_hits_and_is_identical(shapes_model, folder, tmp_path):
    m = Counting(shapes_model)
    first = embed(m, folder, tmp_path)
    assert m.encoded == 24
    second = embed(m, folder, tmp_path)
    assert m.encoded == 24  # nothing re-encoded
    np.testing.assert_array_equal(first.vectors, second.vectors)
    assert first.ids == second.ids
    fresh = embed(shapes_model, folder, False)
    diff = np.abs(fresh.vectors - first.vectors).max()
    assert 0 < diff < 2e-3  # cached vectors are fp16: equal to fp32 up to fp16 precision
    np.testing.assert_allclose(np.linalg.norm(first.vectors, axis=1), 1.0, atol=1e-6)


def test_rename_is_a_hit_and_edit_is_a_miss(shapes_model, folder, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    for p in sorted(folder.glob("*.png"))[:6]:
        (work / p.name).write_bytes(p.read_bytes())
    m = Counting(shapes_model)
    before = embed(m, work, tmp_path / "c")
    os.rename(work / "00.png", work / "renamed.png")
    Image.new("RGB", (64, 64), "purple").save(work / "01.png")  # edited in place
    after = embed(m, work, tmp_path / "c")
    assert m.encoded == 6 + 1  # only the edited file
    i_old, i_new = before.ids.index("00.png"), after.ids.index("renamed.png")
    np.testing.assert_array_equal(before.vectors[i_old], after.vectors[i_new])
    assert not np.allclose(before.vectors[1], after.vectors[after.ids.index("01.png")])


def test_models_do_not_share_vectors(shapes_model, folder, tmp_path):
    embed(shapes_model, folder, tmp_path)
    other = EmbeddingCache(tmp_path, "0" * 64, shapes_model.dim)
    assert other.load() == {}
    assert len(EmbeddingCache(tmp_path, shapes_model.key, shapes_model.dim).load()) == 24


def test_shards_are_atomic_npy_without_pickles(shapes_model, folder, tmp_path):
    embed(shapes_model, folder, tmp_path, batch_size=10)
    store = EmbeddingCache(tmp_path, shapes_model.key, shapes_model.dim)
    shards = sorted(store.dir.glob("*.npy"))
    assert len(shards) == 3 and not list(store.dir.glob(".*"))  # no temp files left
    records = np.load(shards[0], allow_pickle=False)
    assert records["vector"].dtype == np.float16 and records["key"].shape[1] == 32
    assert records["vector"].shape[1] == shapes_model.dim and len(records) in (4, 10)
    # a damaged shard (e.g. disk full) is ignored with a warning; its images are re-embedded
    shards[0].write_bytes(b"\x93NUMPY garbage")
    m = Counting(shapes_model)
    with pytest.warns(UserWarning, match="is damaged"):
        embed(m, folder, tmp_path, batch_size=10)
    assert 0 < m.encoded <= 10
    newest = max(store.dir.glob("*.npy"), key=os.path.getmtime)
    assert len(np.load(newest, allow_pickle=False)) == m.encoded


def test_many_shards_are_compacted(shapes_model, folder, tmp_path, monkeypatch):
    import clipviz.engine.cache as cache_mod

    monkeypatch.setattr(cache_mod, "_COMPACT_OVER", 3)
    first = embed(shapes_model, folder, tmp_path, batch_size=2)  # 12 shards
    store = EmbeddingCache(tmp_path, shapes_model.key, shapes_model.dim)
    assert len(store.load()) == 24
    assert len(list(store.dir.glob("*.npy"))) == 1
    np.testing.assert_array_equal(embed(shapes_model, folder, tmp_path).vectors, first.vectors)


def test_ctrl_c_keeps_finished_batches(shapes_model, folder, tmp_path):
    m = Counting(shapes_model, interrupt_at=3)
    with pytest.raises(KeyboardInterrupt):
        embed(m, folder, tmp_path)
    assert m.encoded == 12
    rest = Counting(shapes_model)
    emb = embed(rest, folder, tmp_path)
    assert rest.encoded == 12 and len(emb) == 24


def test_cache_argument_forms(tmp_path):
    assert resolve_cache_dir(False) is None and resolve_cache_dir(None) is None
    assert resolve_cache_dir(str(tmp_path)) == tmp_path
    assert "clipviz" in str(resolve_cache_dir(True))
    with pytest.raises(TypeError, match="folder path"):
        resolve_cache_dir(3)


_CHILD = textwrap.dedent(
    """
    import sys, time
    import clipviz.models, clipviz.engine
    model = clipviz.models.load_model("clipviz-shapes", device="cpu")
    encode = model.encode_images
    delay = float(sys.argv[3])
    def slow(pixels):
        time.sleep(delay)  # makes the run long enough to kill it in the middle
        return encode(pixels)
    model.encode_images = slow
    print("loaded", flush=True)
    clipviz.engine.embed_images(model, sys.argv[1], batch_size=2, cache=sys.argv[2], progress=False)
    print("done", flush=True)
    """
)


def _child(folder, cache, delay):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    args = [sys.executable, "-c", _CHILD, str(folder), str(cache), str(delay)]
    return subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
    )


@pytest.mark.slow
def test_kill_9_mid_run_then_resume(shapes_model, folder, tmp_path):
    proc = _child(folder, tmp_path, 0.3)
    store = EmbeddingCache(tmp_path, shapes_model.key, shapes_model.dim)
    deadline = time.time() + 120
    while len(list(store.dir.glob("*.npy"))) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = len(store.load())
    assert 6 <= kept < 24, proc.stderr.read()
    m = Counting(shapes_model)
    emb = embed(m, folder, tmp_path)
    assert m.encoded == 24 - kept and len(emb) == 24
    fresh = embed(shapes_model, folder, False)
    np.testing.assert_allclose(emb.vectors, fresh.vectors, atol=2e-3)


@pytest.mark.slow
def test_two_processes_share_one_cache(shapes_model, folder, tmp_path):
    procs = [_child(folder, tmp_path, 0.02) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0 and "done" in out, err
    m = Counting(shapes_model)
    emb = embed(m, folder, tmp_path)
    assert m.encoded == 0 and len(emb) == 24
    ImageSet.from_folder(folder)  # the folder is untouched
    np.testing.assert_allclose(emb.vectors, embed(shapes_model, folder, False).vectors, atol=2e-3)


def test_unchanged_old_files_are_not_even_read_again(shapes_model, folder, tmp_path, monkeypatch):
    import clipviz.engine._filememo as memo_mod

    monkeypatch.setattr(memo_mod, "_RACY_S", 0.05)  # instead of waiting 2 s for the ctime
    work = tmp_path / "old"
    work.mkdir()
    hour_ago = time.time() - 3600
    for p in sorted(folder.glob("*.png"))[:4]:
        (work / p.name).write_bytes(p.read_bytes())
        os.utime(work / p.name, (hour_ago, hour_ago))
    time.sleep(0.1)
    s = ImageSet.from_folder(work)
    reads: list[int] = []
    original = s.read_raw
    s.read_raw = lambda i: reads.append(i) or original(i)
    m = Counting(shapes_model)
    first = embed(m, s, tmp_path / "c")
    assert len(reads) == 4
    second = embed(m, s, tmp_path / "c")
    assert len(reads) == 4 and m.encoded == 4  # stat says unchanged: no read, no encode
    np.testing.assert_array_equal(first.vectors, second.vectors)
    Image.new("RGB", (64, 64), "orange").save(work / s.ids[2])  # edited: new mtime
    third = embed(m, s, tmp_path / "c")
    assert reads[4:] == [2] and m.encoded == 5
    assert not np.allclose(third.vectors[2], first.vectors[2])


# ---- the in-process file memo (item 4) and honest counts (item 8) ---------------------------
def test_rewrite_in_place_with_restored_mtime_is_a_miss(shapes_model, tmp_path, monkeypatch):
    """Same path, inode, size and mtime, other content (what cp -p / rsync -t leave)."""
    import io

    import clipviz.engine._filememo as memo_mod

    monkeypatch.setattr(memo_mod, "_RACY_S", 0.05)
    encoded = []
    for img in clipviz.datasets.shapes(2, seed=8).images:
        buf = io.BytesIO()
        img.save(buf, "PNG")
        encoded.append(buf.getvalue())
    size = max(map(len, encoded)) + 16
    old, new = (data + b"\0" * (size - len(data)) for data in encoded)  # PIL stops at IEND
    path = tmp_path / "img.png"
    path.write_bytes(old)
    hour_ago = time.time() - 3600
    os.utime(path, (hour_ago, hour_ago))
    time.sleep(0.1)  # past the racy window (the ctime is now)
    m = Counting(shapes_model)
    first = embed(m, [path], tmp_path / "c")
    before = path.stat()
    with open(path, "r+b") as f:  # rewritten in place: same inode
        f.write(new)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )
    again = embed(m, [path], tmp_path / "c")
    assert m.encoded == 2
    truth = shapes_model.encode_pil([Image.open(io.BytesIO(new)).convert("RGB")])
    np.testing.assert_allclose(again.vectors, truth, atol=2e-3)
    assert not np.allclose(again.vectors, first.vectors, atol=1e-2)


def test_counts_are_honest_about_duplicates(shapes_model, folder, tmp_path):
    work = tmp_path / "dup"
    work.mkdir()
    for p in sorted(folder.glob("*.png"))[:4]:
        (work / p.name).write_bytes(p.read_bytes())
    (work / "copy.png").write_bytes((work / "00.png").read_bytes())  # same content
    m = Counting(shapes_model)
    first = embed(m, work, tmp_path / "c", batch_size=2)
    assert first.counts.encoded == m.encoded == 4
    assert (first.counts.from_cache, first.counts.duplicates) == (0, 1)
    second = embed(m, work, tmp_path / "c", batch_size=2)
    assert (second.counts.encoded, second.counts.from_cache, second.counts.duplicates) == (0, 5, 0)


def test_default_cache_dir_honours_clipviz_cache_dir(tmp_path, monkeypatch):
    from clipviz.engine import default_cache_dir

    monkeypatch.setenv("CLIPVIZ_CACHE_DIR", str(tmp_path / "env"))
    assert default_cache_dir() == tmp_path / "env" == resolve_cache_dir(True)
    monkeypatch.setenv("CLIPVIZ_CACHE_DIR", "")
    assert "clipviz" in str(default_cache_dir()) and str(tmp_path) not in str(default_cache_dir())
