"""The file memo saved beside the cache: a new process does not re-read unchanged files, and
never trusts a changed file or a damaged memo."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

import clipviz.datasets
from clipviz.engine import ImageSet, _filememo, embed_images
from clipviz.engine._filememo_disk import memo_dir


@pytest.fixture
def old_folder(tmp_path, monkeypatch):
    """Six PNGs written an hour ago (past the racy window: their stats can be trusted)."""
    monkeypatch.setattr(_filememo, "_RACY_S", 0.05)  # the ctime is now: wait 0.1 s, not 2 s
    work = tmp_path / "imgs"
    work.mkdir()
    hour_ago = time.time() - 3600
    for i, img in enumerate(clipviz.datasets.shapes(6, seed=11).images):
        img.save(work / f"{i}.png")
        os.utime(work / f"{i}.png", (hour_ago, hour_ago))
    time.sleep(0.1)
    _filememo.clear()
    yield work
    _filememo.clear()


def _counting_reads(folder) -> tuple[ImageSet, list[int]]:
    s = ImageSet.from_folder(folder)
    reads: list[int] = []
    original = s.read_raw
    s.read_raw = lambda i: reads.append(i) or original(i)
    return s, reads


def _embed(model, images, cache):
    return embed_images(model, images, batch_size=4, cache=cache, progress=False)


def test_a_new_process_reads_no_unchanged_file(shapes_model, old_folder, tmp_path):
    first = _embed(shapes_model, old_folder, tmp_path / "c")
    assert list(memo_dir(tmp_path / "c").glob("*.npy"))
    _filememo.clear()  # what a new kernel starts with
    s, reads = _counting_reads(old_folder)
    second = _embed(shapes_model, s, tmp_path / "c")
    assert reads == []  # a stat each, from the saved memo
    np.testing.assert_array_equal(first.vectors, second.vectors)
    assert second.counts.from_cache == 6


def test_a_file_changed_between_processes_is_read_again(shapes_model, old_folder, tmp_path):
    _embed(shapes_model, old_folder, tmp_path / "c")
    _filememo.clear()
    target = old_folder / "2.png"
    before = target.stat()
    other = clipviz.datasets.shapes(9, seed=12).images[8]
    other.save(target)  # new content; mtime put back: only the ctime (and size) tell
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    s, reads = _counting_reads(old_folder)
    got = _embed(shapes_model, s, tmp_path / "c")
    assert reads == [s.ids.index("2.png")]
    truth = _embed(shapes_model, [target], False).vectors[0]
    assert float(got.vectors[s.ids.index("2.png")] @ truth) > 0.999


def test_a_damaged_memo_is_ignored(shapes_model, old_folder, tmp_path):
    first = _embed(shapes_model, old_folder, tmp_path / "c")
    (memo,) = memo_dir(tmp_path / "c").glob("*.npy")
    data = bytearray(memo.read_bytes())
    data[-40] ^= 0xFF  # a flipped bit in a digest: it would point at another image's vector
    memo.write_bytes(bytes(data))
    _filememo.clear()
    s, reads = _counting_reads(old_folder)
    second = _embed(shapes_model, s, tmp_path / "c")
    assert sorted(reads) == list(range(6))  # every file hashed again
    np.testing.assert_array_equal(first.vectors, second.vectors)


def test_no_memo_is_written_without_a_cache(shapes_model, old_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPVIZ_CACHE_DIR", str(tmp_path / "default"))
    _embed(shapes_model, old_folder, False)
    assert not (tmp_path / "default").exists()
