"""embed_images: correctness against the model, bad inputs skipped, bounded work in flight."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import clipviz.datasets
from clipviz.engine import ImageSet, embed_images


class Counting:
    """The real model, recording each forward pass (how many images it encoded)."""

    def __init__(self, model, on_batch=None):
        self.model, self.info, self.preprocess = model, model.info, model.preprocess
        self.batches: list[int] = []
        self.on_batch = on_batch

    def encode_images(self, pixels):
        if self.on_batch is not None:
            self.on_batch(len(self.batches))
        self.batches.append(len(pixels))
        return self.model.encode_images(pixels)


@pytest.fixture(scope="module")
def shapes_data():
    return clipviz.datasets.shapes(40, seed=3)


@pytest.fixture(scope="module")
def shapes_folder(tmp_path_factory, shapes_data):
    root = tmp_path_factory.mktemp("shapes")
    for i, (img, shape) in enumerate(
        zip(shapes_data.images, shapes_data.labels["shape"], strict=True)
    ):
        (root / shape).mkdir(exist_ok=True)
        img.save(root / shape / f"{i:03d}.png")
    return root


def test_vectors_match_the_model_and_keep_order(shapes_model, shapes_data):
    s = shapes_data.to_imageset(label="shape")
    emb = embed_images(shapes_model, s, batch_size=16, cache=False, progress=False)
    direct = shapes_model.encode_pil([s.load(i) for i in range(len(s))])
    assert emb.ids == s.ids and emb.labels == s.labels and emb.skipped == []
    assert emb.vectors.dtype == np.float32 and emb.vectors.flags.c_contiguous
    np.testing.assert_allclose(emb.vectors, direct, atol=1e-5)
    assert emb.model == shapes_model.info


def test_batch_size_and_workers_do_not_change_results(shapes_model, shapes_folder):
    a = embed_images(shapes_model, shapes_folder, batch_size=1, cache=False, progress=False)
    b = embed_images(
        shapes_model, shapes_folder, batch_size=64, cache=False, progress=False, num_workers=3
    )
    assert a.ids == b.ids and a.labels == b.labels
    np.testing.assert_allclose(a.vectors, b.vectors, atol=1e-5)


def test_bad_items_are_skipped_with_reasons_and_good_ones_embedded(
    shapes_model, shapes_folder, tmp_path, monkeypatch
):
    good = sorted(shapes_folder.rglob("*.png"))[:5]
    (tmp_path / "text.jpg").write_text("hello")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "cut.png").write_bytes(good[0].read_bytes()[:200])
    Image.new("RGB", (200, 200)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    bad = ["text.jpg", "empty.png", "cut.png", "bomb.png", "missing.png"]
    paths = [
        good[0],
        *(tmp_path / b for b in bad[:2]),
        *good[1:3],
        *(tmp_path / b for b in bad[2:]),
    ]
    paths += good[3:]
    s = ImageSet.from_paths(paths)
    emb = embed_images(shapes_model, s, batch_size=2, cache=tmp_path / "cache", progress=False)
    assert len(emb) == 5 and len(emb.skipped) == 5
    assert [sid for sid, _ in emb.skipped] == [s.ids[1], s.ids[2], *s.ids[5:8]]
    reasons = " | ".join(r for _, r in emb.skipped)
    for word in ("not an image", "empty", "truncated", "decompression bomb", "not found"):
        assert word in reasons
    direct = shapes_model.encode_pil([Image.open(p).convert("RGB") for p in good])
    np.testing.assert_allclose(emb.vectors, direct, atol=2e-3)  # fp16 through the cache


def test_inputs_other_than_imagesets(shapes_model, shapes_data, shapes_folder):
    emb = embed_images(shapes_model, shapes_data.images[:3], cache=False, progress=False)
    assert emb.ids == ["0", "1", "2"] and emb.labels is None
    files = [str(p) for p in sorted(shapes_folder.rglob("*.png"))[:2]]
    assert len(embed_images(shapes_model, files, cache=False, progress=False)) == 2
    with pytest.raises(TypeError, match="ImageSet, a folder path"):
        embed_images(shapes_model, [1, 2], cache=False)
    with pytest.raises(ValueError, match="batch_size"):
        embed_images(shapes_model, files, batch_size=0, cache=False)


def test_work_in_flight_is_bounded(shapes_model, shapes_data):
    """Never all images decoded at once: loads run at most a window ahead of the encoder."""
    s = shapes_data.to_imageset()
    loads: list[int] = []
    original = s.read_raw

    def counting_read(i):
        loads.append(i)
        return original(i)

    s.read_raw = counting_read
    ahead: list[int] = []
    model = Counting(shapes_model, on_batch=lambda b: ahead.append(len(loads) - 4 * b))
    embed_images(model, s, batch_size=4, cache=False, progress=False, num_workers=2)
    assert model.batches == [4] * 10
    assert max(ahead) <= 4 + 2 * 4 + 2  # the batch being encoded + window (2 batches + workers)
