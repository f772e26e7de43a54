"""Saliency maps: shape, range and alignment for ResNet and ViT towers; quality on shapes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import clipviz
from clipviz.compute.saliency_metrics import centre_prior, mask_mass_ratio, pointing_hits
from clipviz.datasets import shapes
from clipviz.models.saliency import list_methods, saliency, saliency_batch
from clipviz.models.saliency._align import input_geometry

RESNET_METHODS = list_methods("resnet")
VIT_METHODS = list_methods("vit")


@pytest.fixture(scope="module")
def resnet():
    return clipviz.load_model("clipviz-shapes", device="cpu")


@pytest.fixture(scope="module")
def small_vit():
    """A small random-weight open_clip ViT (the bundled ViT does not exist yet)."""
    import open_clip
    import torch

    from clipviz.models import ClipModel

    torch.manual_seed(0)
    cfg = {
        "embed_dim": 32,
        "vision_cfg": {
            "image_size": 64,
            "layers": 2,
            "width": 64,
            "patch_size": 8,
            "head_width": 16,
        },
        "text_cfg": {
            "context_length": 16,
            "vocab_size": 49408,
            "width": 32,
            "heads": 2,
            "layers": 1,
        },
    }
    net = open_clip.CLIP(**cfg)
    preprocess = open_clip.image_transform(64, is_train=False)
    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=16)
    return ClipModel(
        net,
        preprocess,
        tokenizer,
        name="tiny-vit",
        pretrained=None,
        key="tiny-vit-test",
        device="cpu",
        precision="fp32",
    )


def test_methods_registered_per_tower():
    assert {"gradcam", "grad-x-input", "occlusion"} <= set(RESNET_METHODS)
    assert {"grad-eclip", "grad-x-input", "occlusion"} <= set(VIT_METHODS)
    assert "gradcam" not in VIT_METHODS and "grad-eclip" not in RESNET_METHODS


@pytest.mark.parametrize("method", ["auto", *RESNET_METHODS])
def test_resnet_maps_shape_dtype_range(resnet, method):
    image = Image.new("RGB", (90, 50), (30, 30, 30))  # not the model's 64 x 64
    maps = saliency(resnet, image, ["a red circle", "a blue star", "a square"], method=method)
    assert maps.shape == (3, 50, 90) and maps.dtype == np.float32
    assert maps.min() >= 0.0 and maps.max() <= 1.0


@pytest.mark.parametrize("method", ["auto", *VIT_METHODS])
def test_vit_maps_shape_dtype_range(small_vit, method):
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (40, 70, 3), dtype=np.uint8))
    maps = saliency(small_vit, image, ["one", "two"], method=method)
    assert maps.shape == (2, 40, 70) and maps.dtype == np.float32
    assert 0.0 <= maps.min() and maps.max() <= 1.0
    assert maps.max() > 0.5  # something raises the score (the peak may be cropped away)


def test_regions_cut_by_centre_crop_are_zero(resnet):
    # 64 x 128: the shortest-side resize keeps 64 rows, the centre crop drops 32 columns each side
    maps = saliency(resnet, Image.new("RGB", (128, 64), (200, 200, 200)), ["a star"])
    assert maps.shape == (1, 64, 128)
    assert np.all(maps[:, :, :31] == 0) and np.all(maps[:, :, 97:] == 0)


def test_alignment_follows_preprocess_for_a_planted_marker(resnet):
    """A marker found in the model input maps back onto where it was in the original image."""
    import torch

    from clipviz.models.saliency._align import to_original

    w, h = 150, 100
    arr = np.zeros((h, w, 3), np.uint8)
    arr[60:70, 80:90] = 255  # marker centre (65, 85)
    pixels = resnet.preprocess(Image.fromarray(arr))  # (3, 64, 64)
    seen = (pixels.mean(0) > pixels.mean()).float().numpy()
    back = to_original(seen[None], input_geometry(resnet.preprocess, h, w), h, w)[0]
    ys, xs = np.nonzero(back > 0.5)
    assert abs(ys.mean() - 65) < 2 and abs(xs.mean() - 85) < 2
    assert torch.is_tensor(pixels)


def test_occlusion_and_gradient_respond_to_a_planted_feature(small_vit):
    """Target = the direction a bright square adds to the embedding: maps peak on that square."""
    grey = np.full((64, 64, 3), 128, np.uint8)
    planted = grey.copy()
    planted[8:24, 40:56] = 255
    a, b = small_vit.encode_pil([Image.fromarray(planted), Image.fromarray(grey)])
    target = (a - b)[None]
    occl = saliency(small_vit, Image.fromarray(planted), target, method="occlusion")[0]
    assert occl[8:24, 40:56].mean() > 2 * occl.mean()
    assert pointing_hits(occl[None], [(40, 8, 55, 23)])[0]
    # random weights: the gradient is far less local, but still leans towards the square
    grad = saliency(small_vit, Image.fromarray(planted), target, method="grad-x-input")[0]
    assert grad[8:24, 40:56].mean() > grad.mean()


def test_file_path_and_bad_inputs(resnet, tmp_path):
    path = tmp_path / "shape.png"
    shapes(1, seed=2).images[0].save(path)
    assert saliency(resnet, path, ["a circle"]).shape == (1, 64, 64)
    assert saliency(resnet, str(path), ["a circle"]).shape == (1, 64, 64)
    with pytest.raises(ValueError, match="unknown saliency method 'nope'.*gradcam"):
        saliency(resnet, path, ["a circle"], method="nope")
    with pytest.raises(ValueError, match="supports \\['vit'\\]"):
        saliency(resnet, path, ["a circle"], method="grad-eclip")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        saliency(resnet, tmp_path / "missing.png", ["a circle"])
    with pytest.raises(TypeError, match="wrap a single prompt"):
        saliency(resnet, path, "a circle")
    with pytest.raises(ValueError, match="prompts is empty"):
        saliency(resnet, path, [])


def test_top_level_lazy_name():
    assert clipviz.saliency is saliency


def test_geometry_masks_match_drawn_pixels():
    from clipviz.datasets.shapes import _RGB

    data = shapes(30, seed=11)
    for img, geom, colour in zip(data.images, data.geometry, data.labels["colour"], strict=True):
        pix = np.asarray(img, dtype=np.float64)
        dist = np.sqrt(((pix - np.array(_RGB[colour])) ** 2).sum(-1))
        mask = geom.mask()
        # a pixel that is mostly shape sits nearer the fill colour than half the background's
        # distance from it (fill = nominal colour +-12; edges are anti-aliased blends)
        drawn = dist < 0.5 * np.median(dist[~mask])
        assert (drawn == mask).mean() > 0.98
        assert (dist[mask] < 40).mean() > 0.5  # and the interior is the fill itself
        x0, y0, x1, y1 = geom.box()
        assert x0 <= geom.cx <= x1 and y0 <= geom.cy <= y1


def _auto_maps(model, n: int, seed: int):
    """Maps for the true-shape prompt on fresh shapes images, with their boxes and masks."""
    data = shapes(n, seed=seed)
    prompts = [[f"a photo of a {s}."] for s in data.labels["shape"]]
    boxes = [g.box() for g in data.geometry]
    masks = np.stack([g.mask() for g in data.geometry])
    return np.concatenate(saliency_batch(model, data.images, prompts, method="auto")), boxes, masks


def test_pointing_game_beats_random_on_fresh_shapes(resnet):
    maps, boxes, masks = _auto_maps(resnet, 20, 2024)
    hits = pointing_hits(maps, boxes)
    # random pointing: the box's share of the image (about 0.3 here)
    chance = np.mean([(x1 - x0 + 1) * (y1 - y0 + 1) / 64**2 for x0, y0, x1, y1 in boxes])
    assert chance < 0.4
    assert hits.mean() >= chance + 0.2, (hits.mean(), chance)
    assert mask_mass_ratio(maps, masks).mean() > 1.2  # concentrates on the shape


def test_auto_beats_the_centre_prior_on_fresh_shapes(resnet):
    """The default must know more than "shapes sit near the middle" (grad-x-input did not)."""
    maps, boxes, masks = _auto_maps(resnet, 40, 2025)
    prior = centre_prior(len(maps), 64, 64)
    assert pointing_hits(maps, boxes).mean() >= pointing_hits(prior, boxes).mean() + 0.1
    assert mask_mass_ratio(maps, masks).mean() > mask_mass_ratio(prior, masks).mean()


def test_metrics_on_known_maps():
    m = np.zeros((2, 10, 10))
    m[0, 2, 3] = 1.0  # inside box (x 1..4, y 1..4)
    m[1, 9, 9] = 1.0
    assert pointing_hits(m, [(1, 1, 4, 4)] * 2).tolist() == [True, False]
    masks = np.zeros((2, 10, 10), bool)
    masks[:, :5, :] = True  # half the image
    assert mask_mass_ratio(m, masks).tolist() == [2.0, 0.0]
    with pytest.raises(ValueError, match="must both be"):
        mask_mass_ratio(m, masks[:1])
