"""layercam-fused: flipped views map back onto the image; stage fusion; quality on fresh shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import clipviz
from clipviz.compute.saliency_metrics import mask_mass_ratio
from clipviz.datasets import shapes
from clipviz.models.saliency import _targets, saliency_batch
from clipviz.models.saliency._tower import pixels_for
from clipviz.models.saliency.layercam_fused import _stages, fuse_stages, stage_maps


@pytest.fixture(scope="module")
def resnet():
    return clipviz.load_model("clipviz-shapes", device="cpu")


def _inputs(model, seed: int, n: int):
    data = shapes(n, seed=seed)
    prompts = [[f"a photo of a {s}."] for s in data.labels["shape"]]
    return data, pixels_for(model, data.images), torch.stack(_targets(model, prompts))


def test_two_stages_finer_first(resnet):
    stages, cells = _stages(resnet.torch_model.visual, 64)
    visual = resnet.torch_model.visual
    assert stages == [visual.layer1, visual.layer2] and cells == 16


def test_flipped_view_is_flipped_back(resnet):
    """The left-right view of an image is the original view of the mirrored image, mirrored."""
    _, pixels, targets = _inputs(resnet, 31, 3)
    with torch.enable_grad():
        via_view = stage_maps(resnet, pixels, targets, flips=((-1,),))
        mirrored = stage_maps(resnet, pixels.flip(-1), targets, flips=((),))
        original = stage_maps(resnet, pixels, targets, flips=((),))
    assert via_view.shape == (3, 1, 2, 64, 64)
    np.testing.assert_allclose(via_view, mirrored[..., ::-1], atol=1e-4)
    assert np.abs(via_view - original).max() > 0.1  # the view does differ from the original


def test_fuse_stages_weights_the_coarse_stage():
    rng = np.random.default_rng(0)
    maps = rng.random((2, 2, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(fuse_stages(maps, 0.0, 0.0), maps[:, 0])
    np.testing.assert_allclose(fuse_stages(maps, 0.5, 0.0), maps[:, 0] * np.sqrt(maps[:, 1]))


def test_fused_concentrates_more_mass_on_the_shape_than_layercam(resnet):
    data = shapes(30, seed=2031)
    prompts = [[f"a photo of a {s}."] for s in data.labels["shape"]]
    masks = np.stack([g.mask() for g in data.geometry])
    ratio = {
        m: mask_mass_ratio(
            np.concatenate(saliency_batch(resnet, data.images, prompts, method=m)), masks
        ).mean()
        for m in ("layercam", "layercam-fused")
    }
    assert ratio["layercam-fused"] > ratio["layercam"] + 0.2, ratio
