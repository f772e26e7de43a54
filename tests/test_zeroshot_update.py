"""zero_shot(previous=...): columns reused and top-k updated equal a fresh computation."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

from clipviz.compute import (
    ImageEmbeddings,
    ModelInfo,
    PromptEmbeddings,
    _scores,
    evaluate,
    zero_shot,
)
from clipviz.compute import zeroshot as zs

INFO = ModelInfo(key="m1", name="tiny", logit_scale=50.0, dim=8)
SIGLIP = ModelInfo(
    key="m1", name="tiny", logit_scale=10.0, dim=8, scoring="sigmoid", logit_bias=-3.0
)


def _unit(rng, *shape):
    x = rng.standard_normal(shape).astype(np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _images(n=400, seed=0, info=INFO):
    rng = np.random.default_rng(seed)
    labels = [f"c{i % 6}" for i in range(n)]
    return ImageEmbeddings([f"img{i}" for i in range(n)], _unit(rng, n, 8), info, labels=labels)


def _prompts(names, seed=1, info=INFO):
    # one fixed vector per name, so an unchanged name keeps its vector bit for bit
    vecs = [_unit(np.random.default_rng([seed, sum(map(ord, n)), len(n)]), 8) for n in names]
    return PromptEmbeddings(list(names), ["{}"], np.stack(vecs), info)


def _same(update, fresh):
    """The updated predictions equal a fresh zero_shot (and are consistent in themselves)."""
    np.testing.assert_allclose(update.similarity, fresh.similarity, atol=1e-6)
    np.testing.assert_array_equal(update.topk_indices, fresh.topk_indices)
    np.testing.assert_allclose(update.topk_probs, fresh.topk_probs, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(update.probs, fresh.probs, rtol=1e-5, atol=1e-7)
    own = np.argsort(-update.similarity, axis=1, kind="stable")[:, : update.k]
    np.testing.assert_array_equal(update.topk_indices, own)
    np.testing.assert_array_equal(
        update.topk_similarity, np.take_along_axis(update.similarity, own, axis=1)
    )


EDITS = {
    "add one": (["c0", "c1", "c2", "c3", "c4"], ["c0", "c1", "c2", "c3", "c4", "c5"]),
    "add two": (["c0", "c1", "c2", "c3", "c4"], ["c0", "c1", "new a", "c2", "c3", "c4", "c5"]),
    "edit one": (["c0", "c1", "c2", "c3", "c4", "c5"], ["c0", "c1", "c2 edited", "c3", "c4", "c5"]),
    "remove one": (["c0", "c1", "c2", "c3", "c4", "c5"], ["c0", "c2", "c3", "c4", "c5"]),
    "reorder": (["c0", "c1", "c2", "c3", "c4", "c5"], ["c5", "c1", "c2", "c3", "c4", "c0"]),
    "grow past k": (["c0", "c1", "c2"], ["c0", "c1", "c2", "c3", "c4", "c5"]),
    "shrink below k": (["c0", "c1", "c2", "c3", "c4", "c5"], ["c0", "c3", "c5"]),
    "all new": (["c0", "c1", "c2"], ["c3", "c4", "c5", "x"]),
    # rows whose top-k loses one or two columns refill them from the kept columns
    "replace two": (["c0", "c1", "c2", "c3", "c4", "c5"], ["c0", "x1", "c2", "c3", "x4", "c5"]),
    "remove three": (["c0", "c1", "c2", "c3", "c4", "c5", "x"], ["c1", "c4", "x"]),
    "grow past k, one removed": (["c0", "c1", "c2"], ["c0", "c2", "c3", "c4", "c5"]),
    "replace below k": (["c0", "c1", "c2", "c3", "c4"], ["c0", "x", "y", "c3"]),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
@pytest.mark.parametrize("info", [INFO, SIGLIP], ids=["softmax", "sigmoid"])
def test_an_edited_prompt_set_equals_a_fresh_zero_shot(edit, info, monkeypatch):
    monkeypatch.setattr(zs, "_CHUNK", 37)  # chunk edges inside the data
    before, after = EDITS[edit]
    emb = _images(info=info)
    old = zero_shot(emb, _prompts(before, info=info), k=5)
    update = zero_shot(emb, _prompts(after, info=info), k=5, previous=old)
    _same(update, zero_shot(emb, _prompts(after, info=info), k=5))
    fresh = zero_shot(emb, _prompts(after, info=info), k=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # labels left out when prompts do not name them
        np.testing.assert_equal(evaluate(update).as_dict(), evaluate(fresh).as_dict())


def test_kept_columns_are_copied_and_only_new_ones_scored(monkeypatch):
    emb = _images()
    old = zero_shot(emb, _prompts(["c0", "c1", "c2"]), k=2)
    old.similarity[:, 1] = 0.5  # a marker: a copied column carries it, a recomputed one not
    scored = []
    real = _scores.score

    def spy(img, txt, old_sim, old_of_new, chunk):
        scored.append(int((old_of_new < 0).sum()))
        return real(img, txt, old_sim, old_of_new, chunk)

    monkeypatch.setattr(_scores, "score", spy)
    update = zero_shot(emb, _prompts(["c0", "c1", "c2", "c3"]), k=2, previous=old)
    assert scored == [1]
    assert (update.similarity[:, 1] == 0.5).all()


def test_a_stale_previous_is_not_reused():
    emb = _images()
    prompts = _prompts(["c0", "c1", "c2", "c3"])
    old = zero_shot(emb, prompts, k=3)
    # other image vectors under the same ids: nothing of `old` may be reused
    moved = dataclasses.replace(emb, vectors=_unit(np.random.default_rng(9), len(emb), 8))
    _same(zero_shot(moved, prompts, k=3, previous=old), zero_shot(moved, prompts, k=3))
    # a template change gives other vectors for the same names: all columns are new
    other = PromptEmbeddings(
        prompts.classnames, ["a {}"], _prompts(["x", "y", "z", "w"]).vectors, INFO
    )
    _same(zero_shot(emb, other, k=3, previous=old), zero_shot(emb, other, k=3))


def test_a_new_temperature_recomputes_the_probabilities():
    emb = _images()
    prompts = _prompts(["c0", "c1", "c2", "c3"])
    old = zero_shot(emb, prompts, k=3)
    hot = zero_shot(emb, prompts, k=3, logit_scale=5.0, previous=old)
    _same(hot, zero_shot(emb, prompts, k=3, logit_scale=5.0))
    assert not np.allclose(hot.topk_probs, old.topk_probs)


def test_ties_rank_the_lower_column_first_in_both_paths():
    emb = _images(n=50)
    prompts = _prompts(["c0", "c1", "c2"])
    old = zero_shot(emb, prompts, k=3)
    twin = PromptEmbeddings(
        ["c0", "c1", "c2", "twin of c1"],
        ["{}"],
        np.vstack([prompts.vectors, prompts.vectors[1]]),
        INFO,
    )
    update = zero_shot(emb, twin, k=3, previous=old)
    fresh = zero_shot(emb, twin, k=3)
    _same(update, fresh)
    both = np.isin(update.topk_indices, [1, 3]).sum(axis=1) == 2
    assert both.any()
    pos1 = np.argmax(update.topk_indices == 1, axis=1)[both]
    pos3 = np.argmax(update.topk_indices == 3, axis=1)[both]
    assert (pos1 < pos3).all()


def test_a_refilled_top_k_ranks_tied_columns_lower_first():
    """Removing the top columns refills the top-k from tied columns: the lower column must
    come first, as from scratch, and no column may appear twice."""
    rng = np.random.default_rng(3)
    img = _unit(rng, 300, 8)
    img[:, 7] = 0  # images without the last dimension: c and its mirror tie exactly
    img /= np.linalg.norm(img, axis=1, keepdims=True)
    emb = ImageEmbeddings([f"i{i}" for i in range(300)], img, INFO, labels=None)
    u = _unit(rng, 4, 8)
    u[:, 7] = 0
    c, mirror = u[2].copy(), u[2].copy()
    c[7], mirror[7] = 0.5, -0.5  # different vectors (not one column reused twice)
    vectors = np.vstack([u[0], u[1], c, mirror, u[3]])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    names = ["a", "b", "c", "mirror of c", "e"]
    old = zero_shot(emb, PromptEmbeddings(names, ["{}"], vectors, INFO), k=3)
    np.testing.assert_array_equal(old.similarity[:, 2], old.similarity[:, 3])
    refill_both = np.isin(old.topk_indices, [0, 1]).sum(axis=1) == 2
    assert refill_both.sum() > 20  # rows whose two freed places take the tied pair
    kept = PromptEmbeddings(names[2:], ["{}"], vectors[2:], INFO)
    update = zero_shot(emb, kept, k=3, previous=old)
    _same(update, zero_shot(emb, kept, k=3))
    assert (np.sort(update.topk_indices, axis=1) == [0, 1, 2]).all()
    pairs = update.topk_indices[refill_both]
    assert (np.argmax(pairs == 0, axis=1) < np.argmax(pairs == 1, axis=1)).all()


def test_probs_are_computed_on_first_read_and_match_the_softmax():
    emb = _images(n=30)
    pred = zero_shot(emb, _prompts(["c0", "c1", "c2", "c3"]), k=2)
    assert "_probs" not in vars(pred) or vars(pred)["_probs"] is None
    logits = 50.0 * pred.similarity.astype(np.float64)
    expected = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(pred.probs, expected / expected.sum(1, keepdims=True), atol=1e-6)
    np.testing.assert_array_equal(
        pred.topk_probs, np.take_along_axis(pred.probs, pred.topk_indices, axis=1)
    )


@pytest.mark.parametrize("edit", ["edit one", "remove one", "add two"])
def test_a_flat_softmax_is_updated_exactly_too(edit):
    # at a low temperature every class carries probability: a removed column's share counts
    before, after = EDITS[edit]
    emb = _images()
    old = zero_shot(emb, _prompts(before), k=5, logit_scale=2.0)
    update = zero_shot(emb, _prompts(after), k=5, logit_scale=2.0, previous=old)
    fresh = zero_shot(emb, _prompts(after), k=5, logit_scale=2.0)
    assert fresh.topk_probs[:, -1].min() > 0.02
    _same(update, fresh)


def test_workbench_edits_equal_a_fresh_zero_shot(shapes_model):
    """Through the app: add, edit and remove a prompt, change the template; each applied
    result equals zero_shot from scratch (a stale reuse would show as a difference)."""
    from clipviz.app import Workbench
    from clipviz.datasets.shapes import COLOURS, SHAPES

    names = [f"{c} {s}" for s in SHAPES[:2] for c in COLOURS[:3]]
    centres = shapes_model.encode_texts([f"a photo of a {c}." for c in names])
    rng = np.random.default_rng(0)
    labels = rng.integers(0, len(names), 600)
    v = centres[labels] + rng.standard_normal((600, centres.shape[1])).astype(np.float32) * 0.08
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    ids = [f"img{i}" for i in range(600)]
    emb = ImageEmbeddings(ids, v.astype(np.float32), shapes_model.info, [names[i] for i in labels])
    wb = Workbench(emb, model=shapes_model, cache=False, projection="pca", k=3)
    panel = wb.views["prompts"]
    steps = [
        lambda: setattr(wb, "prompts", [*names, "a new kind of shape"]),
        lambda: setattr(wb, "prompts", [*names[:2], "an edited prompt", *names[3:]]),
        lambda: setattr(panel, "templates", "simple"),
        lambda: setattr(wb, "prompts", names[1:]),
    ]
    try:
        for step in steps:
            updates = wb.updates
            step()
            assert wb.updates == updates + 1 and not wb.errors
            got = wb.predictions
            fresh = zero_shot(wb.embeddings, wb.prompt_embeddings, k=3)
            _same(got, fresh)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                np.testing.assert_equal(wb.metrics.as_dict(), evaluate(fresh).as_dict())
    finally:
        wb.close()


def test_predictions_pickle_without_their_reuse_link():
    import pickle

    emb = _images(n=20)
    pred = zero_shot(emb, _prompts(["c0", "c1"]), k=2)
    back = pickle.loads(pickle.dumps(pred))
    np.testing.assert_array_equal(back.topk_indices, pred.topk_indices)
    np.testing.assert_array_equal(back.probs, pred.probs)
    assert back._images is None and pred._images() is emb.vectors
