"""SigLIP scoring: a model with a logit_bias gets per-prompt sigmoid probabilities, not a softmax.

The compute tests build ModelInfo directly; the model test builds a real open_clip CLIP with a
learned logit_bias (open_clip's SigLIP head, ``init_logit_bias``) on the bundled architecture,
with seeded random weights (``allow_random=True``: only the scoring is under test).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from clipviz.compute.types import ImageEmbeddings, ModelInfo, PromptEmbeddings
from clipviz.compute.zeroshot import zero_shot

SIGLIP = ModelInfo("s", "siglip-like", logit_scale=10.0, dim=4, logit_bias=-5.0, scoring="sigmoid")
CLIP = ModelInfo("c", "clip-like", logit_scale=10.0, dim=4)


def _embeddings(info: ModelInfo):
    rng = np.random.default_rng(0)
    img = rng.normal(size=(6, 4)).astype(np.float32)
    img /= np.linalg.norm(img, axis=1, keepdims=True)
    txt = np.eye(4, dtype=np.float32)[:3]
    emb = ImageEmbeddings([f"i{i}" for i in range(6)], img, info)
    return emb, PromptEmbeddings(["a", "b", "c"], ["{}"], txt, info)


def test_siglip_probabilities_are_per_prompt_sigmoids():
    emb, prm = _embeddings(SIGLIP)
    pred = zero_shot(emb, prm, k=3)
    expected = 1.0 / (1.0 + np.exp(-(10.0 * (emb.vectors @ prm.vectors.T) - 5.0)))
    np.testing.assert_allclose(pred.probs, expected, rtol=1e-5)
    assert pred.scoring == "sigmoid" and pred.logit_bias == -5.0
    assert not np.allclose(pred.probs.sum(axis=1), 1.0)  # independent, not a distribution
    np.testing.assert_array_equal(pred.topk_indices, np.argsort(-pred.similarity, axis=1))


def test_clip_keeps_the_softmax():
    emb, prm = _embeddings(CLIP)
    pred = zero_shot(emb, prm, k=3)
    np.testing.assert_allclose(pred.probs.sum(axis=1), 1.0, rtol=1e-5)
    assert pred.scoring == "softmax" and pred.logit_bias is None


def test_sigmoid_scoring_needs_a_bias():
    with pytest.raises(ValueError, match="logit_bias"):
        ModelInfo("s", "x", 10.0, 4, scoring="sigmoid")
    with pytest.raises(ValueError, match="scoring"):
        ModelInfo("s", "x", 10.0, 4, scoring="tanh")


def test_open_clip_model_with_logit_bias_scores_with_a_sigmoid(tmp_path):
    import clipviz.models as M
    from clipviz.models import _bundled

    config = _bundled.bundled_files("clipviz-shapes")[0]
    cfg = json.loads(config.read_text())
    cfg["model_cfg"]["init_logit_bias"] = -10.0  # what open_clip's SigLIP configs set
    path = tmp_path / "siglip_cfg.json"
    path.write_text(json.dumps(cfg))
    # not named "*siglip*": open_clip would then pick the SigLIP tokenizer (a hub download)
    _bundled.register("clipviz-test-biased", path)
    model = M.load_model("clipviz-test-biased", allow_random=True, device="cpu")
    assert model.torch_model.logit_bias is not None
    assert model.info.scoring == "sigmoid" and model.info.logit_bias == pytest.approx(-10.0)
    vectors = model.encode_texts(["a red circle", "a blue star"])
    emb = ImageEmbeddings(["x"], vectors[:1], model.info)
    pred = zero_shot(emb, PromptEmbeddings(["p", "q"], ["{}"], vectors, model.info))
    sim = vectors[:1] @ vectors.T
    expected = 1 / (1 + np.exp(-(model.info.logit_scale * sim - 10.0)))
    np.testing.assert_allclose(pred.probs, expected, rtol=1e-4)
