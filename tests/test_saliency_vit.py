"""Attention saliency on the bundled ViT (clipviz-shapes-vit): chefer, rollout, chefer-rollout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import clipviz
from clipviz.compute.saliency_metrics import pointing_hits
from clipviz.datasets import shapes
from clipviz.models.saliency import AUTO, saliency, saliency_batch
from clipviz.models.saliency._tower import pixels_for
from clipviz.models.saliency._vit_attention import traced_forward
from clipviz.models.saliency.attention_relevancy import View, rollout

ATTENTION_METHODS = ["chefer-rollout", "chefer", "rollout"]
# a test seed, neither the benchmark's (777) nor a tuning one (555, 556)
SEED = 31


@pytest.fixture(scope="module")
def vit():
    return clipviz.load_model("clipviz-shapes-vit", device="cpu")


@pytest.fixture(scope="module")
def data():
    return shapes(12, seed=SEED)


def _prompts(data):
    return [[f"a photo of a {s}."] for s in data.labels["shape"]]


def test_traced_forward_matches_the_towers_own_forward(vit, data):
    visual = vit.torch_model.visual
    pixels = pixels_for(vit, data.images[:4])
    with torch.no_grad():
        plain = visual(pixels)
        traced, probs = traced_forward(visual, pixels)
    assert torch.allclose(plain, traced, atol=1e-4)
    n = visual.grid_size[0] * visual.grid_size[1] + 1
    assert len(probs) == len(visual.transformer.resblocks)
    assert probs[0].shape == (4, visual.transformer.resblocks[0].attn.num_heads, n, n)
    assert torch.allclose(probs[-1].sum(-1), torch.ones(()), atol=1e-5)


def test_auto_picks_chefer_rollout_for_vit_and_keeps_resnet():
    assert AUTO == {"resnet": "layercam-fused", "vit": "chefer-rollout"}


@pytest.mark.parametrize("method", ATTENTION_METHODS)
def test_maps_peak_on_the_shape(vit, data, method):
    maps = np.concatenate(saliency_batch(vit, data.images, _prompts(data), method=method))
    assert maps.shape == (12, 64, 64) and maps.dtype == np.float32
    assert maps.min() >= 0.0 and np.allclose(maps.reshape(12, -1).max(1), 1.0)
    hits = pointing_hits(maps, [g.box() for g in data.geometry])
    # Floors below what the shipped ViT scores on these 12 images (chefer-rollout 12, chefer 9,
    # rollout 10; seed 32: 12 / 11 / 10) and far above random pointing (about 2 of 12). chefer
    # alone misses more often (it also lights up background patches the class token reads);
    # rollout ignores the prompt.
    floor = {"chefer-rollout": 11, "chefer": 8, "rollout": 9}[method]
    assert hits.sum() >= floor, hits


def test_chefer_rollout_is_deterministic_and_at_the_images_size(vit, data):
    image = data.images[0].resize((96, 80))
    a = saliency(vit, image, ["a photo of a star.", "a photo of a circle."])
    b = saliency(vit, image, ["a photo of a star.", "a photo of a circle."])
    assert a.shape == (2, 80, 96)
    np.testing.assert_array_equal(a, b)


def test_chefer_maps_depend_on_the_prompt_and_rollout_does_not(vit, data):
    prompts = [f"a photo of a {s}." for s in ("circle", "star", "cross")]
    rel = saliency(vit, data.images[0], prompts, method="chefer")
    roll = saliency(vit, data.images[0], prompts, method="rollout")
    assert np.abs(rel[0] - rel[1]).max() > 0.05
    np.testing.assert_array_equal(roll[0], roll[1])


def test_rollout_of_uniform_attention_is_flat():
    # every token attending equally to all: the flow from the class token is the same to each patch
    n = 5
    probs = [torch.full((1, 2, n, n), 1.0 / n) for _ in range(3)]
    row = rollout(probs)
    assert row.shape == (1, n - 1)
    assert torch.allclose(row, row[0, 0].expand_as(row))


def test_a_shifted_view_is_undone_exactly():
    view = View(flip=(-1,), shift=(1, 1))
    x = torch.arange(2 * 16 * 16, dtype=torch.float32).reshape(1, 2, 16, 16)
    moved = view.pixels(x, (8, 8))
    # content moved 4 px down and right of the flipped input; undoing it restores the inside
    np.testing.assert_array_equal(moved[..., 4:, 4:], x.flip(-1)[..., :12, :12])
    back = view.undo(moved, (8, 8))
    # where the moved view still holds the input (all but the 4 px pushed off), undo is exact
    np.testing.assert_array_equal(back[..., :12, 4:], x[..., :12, 4:])
