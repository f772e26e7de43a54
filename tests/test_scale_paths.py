"""The million-image paths: labels as integer codes, chunked zero-shot, selections as row numbers.

Each fast path must give exactly what the string / whole-array path gives; the Workbench test
checks that a lasso reaches every view without a single id look-up.
"""

from __future__ import annotations

import numpy as np
import pytest

from clipviz.compute import ImageEmbeddings, ModelInfo, PromptEmbeddings, evaluate, zero_shot
from clipviz.compute import zeroshot as zs
from clipviz.views import EmbeddingMap, PredictionGrid
from clipviz.views._heatmap_rows import group_means

INFO = ModelInfo(key="m", name="tiny", logit_scale=30.0, dim=8)


def _unit(rng, *shape):
    x = rng.standard_normal(shape).astype(np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _data(n=50, c=6):
    rng = np.random.default_rng(3)
    names = [f"class{i}" for i in range(c)]
    labels = [names[i % c] for i in range(n)]
    labels[5] = "not a class"  # left out of the metrics
    emb = ImageEmbeddings([f"img{i}" for i in range(n)], _unit(rng, n, 8), INFO, labels=labels)
    return emb, PromptEmbeddings(names, ["{}"], _unit(rng, c, 8), INFO)


def test_chunked_zero_shot_equals_the_whole_product(monkeypatch):
    emb, prompts = _data()
    monkeypatch.setattr(zs, "_CHUNK", 7)  # chunk edges inside the data
    pred = zero_shot(emb, prompts, k=3)
    sim = emb.vectors @ prompts.vectors.T
    np.testing.assert_allclose(pred.similarity, sim, atol=1e-6)
    assert (pred.topk_indices == np.argsort(-sim, axis=1)[:, :3]).all()
    logits = 30.0 * sim.astype(np.float64)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(pred.probs, probs / probs.sum(1, keepdims=True), atol=1e-5)
    assert pred.ids is emb.ids and pred.labels is emb.labels  # shared, not copied


def test_float16_vectors_are_read_in_chunks_with_the_same_result(monkeypatch):
    emb, prompts = _data()
    half = ImageEmbeddings(emb.ids, emb.vectors.astype(np.float16), INFO, labels=emb.labels)
    monkeypatch.setattr(zs, "_CHUNK", 16)
    expected = half.vectors.astype(np.float32) @ prompts.vectors.T
    np.testing.assert_allclose(zero_shot(half, prompts).similarity, expected, atol=1e-6)


def test_label_codes_give_the_same_truth_and_metrics_as_strings():
    import pandas as pd

    emb, prompts = _data()
    codes, names = pd.factorize(pd.Series(emb.labels, dtype=object), sort=True)
    by_codes = zero_shot(emb, prompts, label_codes=(codes, list(names)))
    by_strings = zero_shot(emb, prompts)
    assert (by_codes.true_indices == by_strings.true_indices).all()
    assert by_codes.true_indices[5] == -1
    with pytest.warns(UserWarning, match="left out"):
        a = evaluate(by_codes)
    with pytest.warns(UserWarning, match="left out"):
        b = evaluate(by_strings)
    assert a.as_dict() == b.as_dict() and a.excluded_labels == b.excluded_labels == {
        "not a class": 1
    }
    assert (a.confusion == b.confusion).all().all()
    with pytest.raises(ValueError, match=r"label_codes has shape \(3,\)"):
        zero_shot(emb, prompts, label_codes=(np.zeros(3, int), ["x"])).true_indices  # noqa: B018


def test_group_means_equal_per_group_averages():
    rng = np.random.default_rng(0)
    sim = rng.standard_normal((500, 4)).astype(np.float32)
    codes = rng.integers(0, 7, 500)
    codes[codes == 3] = 4  # an empty group
    means, counts = group_means(sim, codes, 7)
    for g in range(7):
        rows = codes == g
        assert counts[g] == rows.sum()
        expected = sim[rows].mean(0) if rows.any() else np.zeros(4)
        np.testing.assert_allclose(means[g], expected, atol=1e-5)
    picked = np.arange(0, 500, 3)
    sub, sub_counts = group_means(sim, codes, 7, picked)
    np.testing.assert_allclose(sub[0], sim[picked][codes[picked] == 0].mean(0), atol=1e-5)
    assert sub_counts.sum() == len(picked)


def _coloured_as(view: EmbeddingMap) -> list[str]:
    """The label each image's colour code stands for (what the legend shows)."""
    categories = view._colours.codes([])[1]
    return [categories[c] for c in view._codes.tolist()]


def test_map_takes_label_codes_like_strings():
    ids = [f"i{k}" for k in range(6)]
    names = ["cat", "dog", "<b>fox</b>"]
    codes = np.array([0, 1, 2, 2, 1, 0], np.int32)
    predicted, true = [names[c] for c in codes], [names[c] for c in codes[::-1]]
    xy = np.arange(12, dtype=np.float32).reshape(6, 2)
    by_codes, by_strings = EmbeddingMap(), EmbeddingMap()
    by_codes.set_points(xy, ids, (codes, names), true_labels=(codes[::-1].copy(), names))
    by_strings.set_points(xy, ids, predicted, true_labels=true)
    assert _coloured_as(by_codes) == _coloured_as(by_strings) == predicted
    by_codes.color_by = by_strings.color_by = "true"
    assert _coloured_as(by_codes) == _coloured_as(by_strings) == true
    by_codes.color_by = "predicted"
    by_codes.set_labels((np.zeros(6, np.int32), names))
    assert _coloured_as(by_codes) == ["cat"] * 6
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 3\)"):
        by_codes.set_labels((np.full(6, 3), names))


def test_grid_takes_label_codes_like_strings():
    ids = [f"i{k}" for k in range(5)]
    names = ["a", "b"]
    codes = np.array([0, 1, 1, 0, 1])
    top = np.array([[0], [0], [1], [0], [1]])
    grids = PredictionGrid(), PredictionGrid()
    for grid, labels in zip(grids, [(codes, names), [names[c] for c in codes]], strict=True):
        grid.set_images(ids)
        grid.set_predictions(names, top, np.ones((5, 1)), labels=labels)
        grid.mistakes_only = True
    assert grids[0].page_items() == grids[1].page_items()
    assert [item["id"] for item in grids[0].page_items()] == ["i1"]


def test_selection_rows_follow_python_and_page_selections():
    grid = PredictionGrid()
    grid.set_images(["a", "b", "c"])
    grid.selection = ["c", "a"]
    assert grid.selected_rows.tolist() == [2, 0]
    grid.show_selection(["b"], np.array([1]))
    assert grid.selection == ["b"] and grid.selected_rows.tolist() == [1]
    with pytest.raises(Exception, match="image ids"):
        grid.selection = [3]


def test_a_few_texts_encode_on_one_thread_and_the_setting_comes_back(shapes_model):
    import torch

    seen: list[int] = []
    real = shapes_model.torch_model.encode_text

    def recording(tokens):  # the real forward pass, with the thread count it ran under
        seen.append(torch.get_num_threads())
        return real(tokens)

    before = torch.get_num_threads()
    shapes_model.torch_model.encode_text = recording
    try:
        few = shapes_model.encode_texts(["a red circle"])
        many = shapes_model.encode_texts(["a red circle"] * 17)  # more than FEW_TEXTS
    finally:
        del shapes_model.torch_model.encode_text
    assert seen[0] == 1 and seen[-1] == before == torch.get_num_threads()
    np.testing.assert_allclose(few[0], many[0], atol=1e-5)


def test_label_codes_match_pandas_factorize_without_importing_it():
    import pandas as pd

    from clipviz.app.state import factorize_sorted

    rng = np.random.default_rng(4)
    labels = [
        None if i % 17 == 0 else f"class {int(c)}" for i, c in enumerate(rng.integers(0, 40, 5000))
    ]
    labels[3] = float("nan")  # a missing label as pandas reads it
    codes, names = factorize_sorted(labels)
    want_codes, want_names = pd.factorize(pd.Series(labels, dtype=object), sort=True)
    assert codes.dtype == np.int32 and codes.tolist() == want_codes.tolist()
    assert names == [str(x) for x in want_names] and (codes == -1).sum() == 5000 // 17 + 2
    assert factorize_sorted([])[1] == [] and factorize_sorted([])[0].shape == (0,)
