"""zero_shot(previous=...) along long edit sequences: every step equals a fresh zero_shot.

The update paths checked here: rows that lost a top-k column refill it from the kept
columns only when too few new columns beat their old last entry; rows whose top-k did not
change rescale their softmax probabilities (exact again every ``_EXACT_EVERY`` edits) or
keep their sigmoid ones; the true label columns are reused only when no labelled class
was renamed.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from clipviz.compute import (
    ImageEmbeddings,
    ModelInfo,
    PromptEmbeddings,
    evaluate,
    metrics,
    zero_shot,
)
from clipviz.compute import _topk_update as tu
from clipviz.compute import zeroshot as zs

INFO = ModelInfo(key="m1", name="tiny", logit_scale=30.0, dim=6)
SIGLIP = ModelInfo(
    key="m1", name="tiny", logit_scale=10.0, dim=6, scoring="sigmoid", logit_bias=-2.0
)


def _dyadic(rng, count, dim=6):
    """Unit vectors of four halves (+-0.5) and zeros: every dot product is a sum of quarters,
    exact in float32 in any summation order, so similarities tie exactly and the update and
    a fresh zero_shot compute them bit for bit."""
    x = np.zeros((count, dim), np.float32)
    for row in x:
        row[rng.choice(dim, 4, replace=False)] = rng.choice([-0.5, 0.5], 4)
    return x


def _images(n=500, info=INFO):
    rng = np.random.default_rng(0)
    labels = [f"c{i % 7}" for i in range(n)]
    return ImageEmbeddings([f"i{i}" for i in range(n)], _dyadic(rng, n), info, labels)


def _bank(info=INFO):
    """A fixed vector per prompt name: a kept name keeps its vector bit for bit."""
    rng = np.random.default_rng(5)
    names = [f"c{i}" for i in range(7)] + [f"x{i}" for i in range(9)]
    vectors = np.unique(_dyadic(rng, 200), axis=0)  # distinct: no name reuses another's
    return dict(zip(names, vectors[rng.permutation(len(vectors))[: len(names)]], strict=True))


def _prompts(names, bank, info=INFO):
    return PromptEmbeddings(list(names), ["{}"], np.stack([bank[n] for n in names]), info)


def _same(update, fresh):
    np.testing.assert_array_equal(update.similarity, fresh.similarity)
    np.testing.assert_array_equal(update.topk_indices, fresh.topk_indices)
    np.testing.assert_array_equal(update.topk_similarity, fresh.topk_similarity)
    np.testing.assert_allclose(update.topk_probs, fresh.topk_probs, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(update.true_indices, fresh.true_indices)


def _edits(rng, names, pool, steps):
    """A random sequence of adds, removes, in-place edits and reorders of prompt names."""
    for _ in range(steps):
        names = list(names)
        unused = [n for n in pool if n not in names]
        kind = rng.choice(["add", "remove", "edit", "edit", "free", "free", "reorder"])
        free = [i for i, n in enumerate(names) if n.startswith("x")]  # no label names them
        spare = [n for n in unused if n.startswith("x")]
        if kind == "free" and free and spare:  # the common workbench edit: one free prompt
            names[int(rng.choice(free))] = str(rng.choice(spare))
        elif kind == "add" and unused:
            names.insert(int(rng.integers(0, len(names) + 1)), str(rng.choice(unused)))
        elif kind == "remove" and len(names) > 2:
            names.pop(int(rng.integers(0, len(names))))
        elif kind == "edit" and unused:
            names[int(rng.integers(0, len(names)))] = str(rng.choice(unused))
        else:
            i, j = rng.choice(len(names), 2, replace=False)
            names[i], names[j] = names[j], names[i]
        yield names


@pytest.mark.parametrize("info", [INFO, SIGLIP], ids=["softmax", "sigmoid"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_step_of_a_random_edit_sequence_equals_a_fresh_zero_shot(info, seed, monkeypatch):
    monkeypatch.setattr(zs, "_CHUNK", 64)  # chunk edges inside the data
    recounted = []
    real = metrics._updated_counts
    monkeypatch.setattr(
        metrics, "_updated_counts", lambda *a: recounted.append(real(*a)) or recounted[-1]
    )
    emb, bank = _images(info=info), _bank(info)
    pool = list(bank)
    rng = np.random.default_rng(seed)
    start = ["c0", "c1", "x0", "c2", "c3", "x1", "c4"]
    codes = (np.arange(len(emb)) % 7, [f"c{i}" for i in range(7)])  # as the workbench passes
    pred = zero_shot(emb, _prompts(start, bank, info), k=5, label_codes=codes)
    for names in _edits(rng, start, pool, 40):
        prompts = _prompts(names, bank, info)
        evaluate_quietly(pred)  # as the workbench does: true label columns computed
        # the previous predictions stay alive until the new ones are evaluated, as there
        before, pred = pred, zero_shot(emb, prompts, k=5, label_codes=codes, previous=pred)
        fresh = zero_shot(emb, prompts, k=5)
        _same(pred, fresh)
        np.testing.assert_equal(evaluate_quietly(pred), evaluate_quietly(fresh))
        del before
    assert sum(r is not None for r in recounted) >= 5  # metrics recounted on changed rows only


def evaluate_quietly(pred):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # labels that no prompt names are left out
        try:
            return evaluate(pred).as_dict()
        except ValueError:  # no label among the prompts
            return None


def _spy_refill(monkeypatch):
    rows = []
    real = tu._refill

    def spy(ti, tv, sim, which, added, filled):
        rows.extend(which.tolist())
        return real(ti, tv, sim, which, added, filled)

    monkeypatch.setattr(tu, "_refill", spy)
    return rows


def test_an_edit_moving_a_column_a_little_refills_no_row(monkeypatch):
    """Every row whose top-k held the edited column gets a new value above its old last
    entry: the freed place is taken by the new column itself, no refill."""
    rng = np.random.default_rng(2)
    img = rng.standard_normal((400, 6)).astype(np.float32)
    img /= np.linalg.norm(img, axis=1, keepdims=True)
    emb = ImageEmbeddings([f"i{i}" for i in range(400)], img, INFO, labels=None)
    txt = rng.standard_normal((6, 6)).astype(np.float32)
    txt /= np.linalg.norm(txt, axis=1, keepdims=True)
    old = zero_shot(emb, PromptEmbeddings(list("abcdef"), ["{}"], txt, INFO), k=3)
    moved = txt.copy()
    moved[2] += 1e-3 * rng.standard_normal(6).astype(np.float32)
    moved[2] /= np.linalg.norm(moved[2])
    held = (old.topk_indices == 2).any(axis=1)
    assert held.sum() > 50
    new = PromptEmbeddings(list("abcdef"), ["{}"], moved, INFO)
    refilled = _spy_refill(monkeypatch)
    update = zero_shot(emb, new, k=3, previous=old)
    fresh = zero_shot(emb, new, k=3)
    np.testing.assert_array_equal(update.topk_indices, fresh.topk_indices)
    np.testing.assert_allclose(update.topk_probs, fresh.topk_probs, rtol=1e-5, atol=1e-7)
    floor = old.topk_similarity[:, -1]
    dropped = held & (fresh.similarity[:, 2] <= floor)
    assert sorted(refilled) == np.flatnonzero(dropped).tolist()


def test_a_column_that_stops_being_the_top_1_refills_from_the_kept_columns(monkeypatch):
    """The edited prompt was nearly every row's top-1 and falls to last: each of those rows
    must take its next-best kept column (refill); edited back, it becomes the row maximum
    again and enters at the top. Both equal a fresh zero_shot, ties included."""
    rng = np.random.default_rng(4)
    favourite = np.eye(6, dtype=np.float32)[0]
    img = _dyadic(rng, 300)
    img[:180] = favourite  # their similarity to it is 1; to the other prompts 0
    emb = ImageEmbeddings([f"i{i}" for i in range(300)], img, INFO, labels=None)
    others = _dyadic(rng, 4)
    others[:, 0] = 0.0
    others /= np.linalg.norm(others, axis=1, keepdims=True)
    top = np.vstack([others[:2], favourite, others[2:]])
    old = zero_shot(emb, PromptEmbeddings(list("abcde"), ["{}"], top, INFO), k=3)
    was_top1 = old.topk_indices[:, 0] == 2
    assert was_top1.sum() >= 180
    worst = top.copy()
    worst[2] = -favourite  # the former favourite now scores lowest for those images
    refilled = _spy_refill(monkeypatch)
    down = PromptEmbeddings(list("abcde"), ["{}"], worst, INFO)
    update = zero_shot(emb, down, k=3, previous=old)
    _same_rank(update, zero_shot(emb, down, k=3))
    assert set(range(180)) <= set(refilled)  # every lost top-1 of theirs refilled
    assert not (update.topk_indices[:180] == 2).any()
    back = zero_shot(emb, PromptEmbeddings(list("abcde"), ["{}"], top, INFO), k=3, previous=update)
    _same_rank(back, old)


def _same_rank(update, fresh):
    np.testing.assert_array_equal(update.topk_indices, fresh.topk_indices)
    np.testing.assert_array_equal(update.topk_similarity, fresh.topk_similarity)
    np.testing.assert_allclose(update.topk_probs, fresh.topk_probs, rtol=1e-5, atol=1e-7)


def test_a_new_value_tied_with_the_old_last_entry_is_refilled(monkeypatch):
    """A new column equal to the last entry may rank below a kept outside column of the same
    value (a lower column number): such a row must refill, not take the new column."""
    img = np.array([[1.0, 0.0]], np.float32)
    emb = ImageEmbeddings(["i0"], img, INFO, labels=None)
    # similarities: a 0.875, b 0.5, c 0.75, d 0.5 (b and d tie, different vectors)
    old_txt = np.array([[0.875, 0.25], [0.5, 0.5], [0.75, 0.0], [0.5, -0.5]], np.float32)
    old = zero_shot(emb, PromptEmbeddings(list("abcd"), ["{}"], old_txt, INFO), k=2)
    assert old.topk_indices.tolist() == [[0, 2]]
    new_txt = old_txt.copy()
    new_txt[2] = [0.5, 0.25]  # c falls to 0.5: below the old last entry, tied with b and d
    refilled = _spy_refill(monkeypatch)
    new = PromptEmbeddings(list("abcd"), ["{}"], new_txt, INFO)
    update = zero_shot(emb, new, k=2, previous=old)
    fresh = zero_shot(emb, new, k=2)
    assert fresh.topk_indices.tolist() == [[0, 1]]  # the lower tied column wins
    np.testing.assert_array_equal(update.topk_indices, fresh.topk_indices)
    assert refilled == [0]


def test_rescaled_probabilities_are_recomputed_exactly_every_few_edits(monkeypatch):
    emb, bank = _images(), _bank()
    names = ["c0", "c1", "c2", "c3", "c4", "x0"]
    pred = zero_shot(emb, _prompts(names, bank), k=3)
    steps = []
    for i in range(2 * zs._EXACT_EVERY + 3):
        names[-1] = f"x{1 + i % 2}"  # one prompt edited back and forth
        pred = zero_shot(emb, _prompts(names, bank), k=3, previous=pred)
        steps.append(pred._inexact)
        fresh = zero_shot(emb, _prompts(names, bank), k=3)
        np.testing.assert_allclose(pred.topk_probs, fresh.topk_probs, rtol=1e-5, atol=1e-8)
    assert max(steps) == zs._EXACT_EVERY - 1 and steps.count(0) == 2  # rescaled, then exact


def test_sigmoid_probabilities_of_unchanged_rows_are_kept_bit_for_bit():
    emb, bank = _images(info=SIGLIP), _bank(SIGLIP)
    names = ["c0", "c1", "c2", "c3", "x0"]
    old = zero_shot(emb, _prompts(names, bank, SIGLIP), k=3)
    names[-1] = "x1"
    update = zero_shot(emb, _prompts(names, bank, SIGLIP), k=3, previous=old)
    fresh = zero_shot(emb, _prompts(names, bank, SIGLIP), k=3)
    np.testing.assert_array_equal(update.topk_probs, fresh.topk_probs)
    same = (update.topk_indices == old.topk_indices).all(axis=1)
    same &= (update.topk_similarity == old.topk_similarity).all(axis=1)
    assert 0 < same.sum() < len(same)
    np.testing.assert_array_equal(update.topk_probs[same], old.topk_probs[same])


def test_true_label_columns_are_reused_only_when_no_labelled_class_is_renamed():
    emb, bank = _images(), _bank()
    codes = (np.arange(len(emb)) % 7, [f"c{i}" for i in range(7)])
    names = ["c0", "c1", "c2", "x0"]
    old = zero_shot(emb, _prompts(names, bank), k=2, label_codes=codes)
    known = old.true_indices
    kept = zero_shot(emb, _prompts([*names[:3], "x1"], bank), k=2, label_codes=codes, previous=old)
    assert kept.true_indices is known  # only an unlabelled prompt was edited
    renamed = ["c0", "x2", "c2", "x0"]  # label c1 no longer names a prompt
    other = zero_shot(emb, _prompts(renamed, bank), k=2, label_codes=codes, previous=old)
    fresh = zero_shot(emb, _prompts(renamed, bank), k=2, label_codes=codes)
    np.testing.assert_array_equal(other.true_indices, fresh.true_indices)
    assert (other.true_indices != known).any()
    moved = ["c2", "c1", "c0", "x0"]  # reordered: same names, other columns
    swapped = zero_shot(emb, _prompts(moved, bank), k=2, label_codes=codes, previous=old)
    fresh = zero_shot(emb, _prompts(moved, bank), k=2, label_codes=codes)
    np.testing.assert_array_equal(swapped.true_indices, fresh.true_indices)
