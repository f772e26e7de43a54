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
    # the batch being encoded + the one being collected + window (2 batches + workers)
    assert max(ahead) <= 4 + 4 + 2 * 4 + 2


# ---- hostile inputs (issue 8): the corpus in tests/bad_inputs/engine -------------------------
def test_the_bad_input_corpus_is_skipped_and_the_good_images_embedded(
    shapes_model, shapes_data, tmp_path, monkeypatch
):
    from bad_inputs.engine.make import TEST_MAX_FILE_BYTES, make_corpus

    import clipviz.engine._decode as decode

    monkeypatch.setattr(decode, "MAX_FILE_BYTES", TEST_MAX_FILE_BYTES, raising=False)
    expected = make_corpus(tmp_path / "corpus", shapes_data.images[:3])
    emb = embed_images(shapes_model, tmp_path / "corpus", cache=tmp_path / "c", progress=False)
    assert sorted(emb.ids) == ["good_0.png", "good_1.png", "good_2.png"]
    bad = {name for name, kind in expected.items() if kind}
    assert {item for item, _ in emb.skipped} == bad  # the FIFO did not hang the run
    direct = shapes_model.encode_pil(shapes_data.images[:3])
    np.testing.assert_allclose(emb.vectors, direct, atol=2e-3)


def test_nan_weights_give_no_vectors_and_a_clear_error(shapes_data, tmp_path):
    import torch

    import clipviz.models
    from clipviz.engine.embed import NoImagesEmbeddedError

    broken = clipviz.models.load_model("clipviz-shapes", device="cpu")
    with torch.no_grad():
        next(broken.torch_model.visual.parameters()).fill_(float("nan"))
    with pytest.raises(NoImagesEmbeddedError, match="all 4 images were skipped.*non-finite"):
        embed_images(broken, shapes_data.images[:4], cache=tmp_path, progress=False)
    assert not list(tmp_path.rglob("*.npy"))  # nothing bad was cached


def test_an_all_bad_folder_says_how_many_and_why(shapes_model, tmp_path):
    from clipviz.engine.embed import NoImagesEmbeddedError

    for name in ("a.png", "b.png"):
        (tmp_path / name).write_text("not an image")
    (tmp_path / "c.jpg").write_bytes(b"")
    with pytest.raises(NoImagesEmbeddedError) as err:
        embed_images(shapes_model, tmp_path, cache=False, progress=False)
    text = str(err.value)
    assert "all 3 images were skipped" in text
    assert "2 not an image file" in text and "1 empty file" in text
    assert err.value.kinds == {
        "not an image file PIL can read (raster formats only)": 2,
        "empty file": 1,
    }


# ---- ImageEmbeddings from a user's own vectors (item 6) --------------------------------------
def test_user_vectors_are_normalised_and_bad_rows_named(shapes_model):
    from clipviz.compute.types import ImageEmbeddings

    raw = np.array([[3.0, 4.0], [0.0, 2.0], [1.0, 0.0]], np.float32)
    emb = ImageEmbeddings(["a", "b", "c"], raw, shapes_model.info)
    np.testing.assert_allclose(emb.vectors, [[0.6, 0.8], [0.0, 1.0], [1.0, 0.0]], atol=1e-7)
    np.testing.assert_array_equal(raw[0], [3.0, 4.0])  # the caller's array is not modified
    bad = np.array([[1.0, 0.0], [np.nan, 1.0], [0.0, 0.0], [np.inf, 0.0]], np.float32)
    with pytest.raises(ValueError, match=r"3 vector row\(s\).*\['y', 'z', 'w'\]"):
        ImageEmbeddings(["x", "y", "z", "w"], bad, shapes_model.info)
    with pytest.raises(ValueError, match=r"shape \(len\(ids\), D\)"):
        ImageEmbeddings(["x"], raw, shapes_model.info)


# ---- the CPU split (item 16) -----------------------------------------------------------------
def test_thread_plan_follows_measured_costs():
    from clipviz.engine._threads import choose_plan

    # ViT-B-32 on 2 cores: 70 ms forward, 5 ms decode per image -> torch keeps both cores
    vit = choose_plan(decode_s=0.005, forward_s=0.070, cores=2, torch_default=2)
    assert (vit.torch_threads, vit.decoders, vit.forwarders) == (2, 1, 1)
    # a tiny model on big JPEGs, 16 cores: decoding is the bottleneck -> most cores decode
    tiny = choose_plan(decode_s=0.004, forward_s=0.0005, cores=16, torch_default=16)
    assert tiny.decoders >= 4 and tiny.torch_threads + tiny.decoders <= 16
    assert tiny.predicted_s_per_image < 0.0005 + 0.004
    # decoding as costly as the forward pass on 2 cores: one core each
    even = choose_plan(decode_s=0.0015, forward_s=0.001, cores=2, torch_default=2)
    assert (even.torch_threads, even.decoders) == (1, 1)


def test_parallel_plan_when_one_thread_per_batch_is_cheaper():
    from clipviz.engine._threads import choose_plan

    # the bundled model on 2 cores (measured: 1.0 ms/img at 2 threads, 1.7 ms CPU at 1 thread,
    # 1.0 ms decode): two batches side by side at one thread each beat every split
    small = choose_plan(0.0010, 0.0010, cores=2, torch_default=2, forward_1_s=0.0017)
    assert (small.torch_threads, small.decoders, small.forwarders) == (1, 2, 2)
    assert small.predicted_s_per_image == pytest.approx((0.0017 + 0.0010) / 2)
    # a model whose threads scale well (1 thread: 2.4x the CPU time of 2 threads' wall time)
    # keeps torch's default threads and one pass at a time
    vit = choose_plan(0.005, 0.070, cores=2, torch_default=2, forward_1_s=0.170)
    assert (vit.torch_threads, vit.forwarders) == (2, 1)
    # one core: nothing to run side by side
    one = choose_plan(0.001, 0.001, cores=1, torch_default=1, forward_1_s=0.001)
    assert one.forwarders == 1


def test_tuner_probes_one_thread_then_default_threads_then_follows_the_plan(monkeypatch):
    from clipviz.engine import _threads

    monkeypatch.setattr(_threads, "cores", lambda: 2)
    tuner = _threads.CpuTuner("cpu", None, default_workers=1)
    with tuner:
        tuner._before = 2  # as on a 2-core machine, whatever this one has
        seen = []
        for wall_s, cpu_s in [(0.05, 0.06), (0.05, 0.05), (0.03, 0.05), (0.1, 0.1)]:
            forwarders = tuner.forwarders
            threads = tuner.threads_for_next_forward()
            seen.append((forwarders, threads))
            tuner.decoded(0.0009)
            tuner.forward_done(32, threads, wall_s, cpu_s)
        # two probes side by side at one thread, one alone at the default threads, then the plan
        assert seen == [(2, 1), (2, 1), (1, 2), (2, 1)]
        assert tuner.plan is not None and tuner.plan.forwarders == 2
        assert tuner.plan.predicted_s_per_image == pytest.approx((0.05 / 32 + 0.0009) / 2)
    fixed = _threads.CpuTuner("cpu", 1, default_workers=1)
    with fixed:
        assert (fixed.forwarders, fixed.threads_for_next_forward()) == (1, 1)
    gpu = _threads.CpuTuner("cuda", None, default_workers=4)
    assert (gpu.forwarders, gpu.threads_for_next_forward(), gpu.pool_size) == (1, None, 4)


def test_duplicates_of_images_still_being_encoded_are_encoded_once(shapes_model, tmp_path):
    """Copies arrive while their original's batch is in a forward pass running beside another."""
    data = clipviz.datasets.shapes(8, seed=5)
    for i, img in enumerate(data.images):  # all originals first: copies meet batches in flight
        img.save(tmp_path / f"a{i:02d}.png")
        (tmp_path / f"b{i:02d}.png").write_bytes((tmp_path / f"a{i:02d}.png").read_bytes())
    model = Counting(shapes_model)
    emb = embed_images(model, tmp_path, batch_size=2, cache=tmp_path / "c", progress=False)
    assert sum(model.batches) == 8 and len(emb) == 16
    assert (emb.counts.encoded, emb.counts.duplicates, emb.counts.from_cache) == (8, 8, 0)
    np.testing.assert_array_equal(emb.vectors[:8], emb.vectors[8:])


def test_embed_restores_torch_threads(shapes_model, shapes_data):
    import torch

    before = torch.get_num_threads()
    s = shapes_data.to_imageset()
    emb = embed_images(shapes_model, s, batch_size=8, cache=False, progress=False)
    assert len(emb) == 40 and emb.counts.encoded == 40
    assert torch.get_num_threads() == before


def test_non_utf8_names_survive_evaluate_and_save_html(shapes_model, shapes_data, tmp_path):
    """Folder and file names that are not UTF-8 (surrogate-escaped by Python)."""
    import os

    import clipviz
    from clipviz.app.snapshot import save_html

    root = tmp_path / "imgs"
    for i, img in enumerate(shapes_data.images[:6]):
        label = os.fsdecode(b"caf\xe9") if i % 2 else "ok"
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        img.save(os.path.join(folder, os.fsdecode(b"img\xff%d.png" % i)))
    images = ImageSet.from_folder(root)
    emb = embed_images(shapes_model, images, cache=False, progress=False)
    assert len(emb) == 6 and "caf\ufffd" in emb.labels
    prompts = clipviz.engine.embed_prompts(shapes_model, ["ok", "caf\ufffd"])
    metrics = clipviz.evaluate(clipviz.zero_shot(emb, prompts))
    assert 0.0 <= metrics.acc1 <= 1.0
    wb = clipviz.Workbench(
        images, model=shapes_model, embeddings=emb, classnames=["ok", "caf\ufffd"],
        projection="pca",
    )  # fmt: skip
    out = save_html(wb, tmp_path / "snap.html")
    text = out.read_text(encoding="utf-8")
    assert "caf\ufffd" in text and "img\ufffd1.png" in text
