"""embed_prompts agrees with open_clip's zero-shot classifier; text queries; search."""

from __future__ import annotations

import numpy as np
import pytest

import clipviz.datasets
from clipviz.compute import get_templates, zero_shot
from clipviz.engine import embed_images, embed_prompts, encode_text_query, search

CLASSES = ["circle", "square", "triangle", "star", "hexagon", "cross"]


@pytest.mark.parametrize("templates", ["openai_imagenet", "simple", "single"])
def test_ensemble_matches_open_clip_build_zero_shot_classifier(shapes_model, templates):
    from open_clip import build_zero_shot_classifier

    tmpl = get_templates(templates)
    ref = build_zero_shot_classifier(
        shapes_model.torch_model,
        shapes_model.tokenizer,
        CLASSES,
        tmpl,
        num_classes_per_batch=4,
        device="cpu",
    )  # (D, C)
    ours = embed_prompts(shapes_model, CLASSES, templates)
    np.testing.assert_allclose(ours.vectors, ref.numpy().T, atol=1e-5)


def test_prompt_embeddings_fields(shapes_model):
    p = embed_prompts(shapes_model, ["red circle", "blue star"], ["a {}.", "a photo of a {}."])
    assert p.classnames == ["red circle", "blue star"]
    assert p.texts == [
        ["a red circle.", "a photo of a red circle."],
        ["a blue star.", "a photo of a blue star."],
    ]
    assert p.per_template.shape == (2, 2, shapes_model.dim)
    np.testing.assert_allclose(np.linalg.norm(p.per_template, axis=-1), 1.0, atol=1e-5)
    direct = shapes_model.encode_texts(["a photo of a blue star."])[0]
    np.testing.assert_allclose(p.per_template[1, 1], direct, atol=1e-6)
    assert p.model == shapes_model.info and len(p) == 2
    with pytest.raises(TypeError, match="list of strings"):
        embed_prompts(shapes_model, "circle")
    with pytest.raises(ValueError, match="empty"):
        embed_prompts(shapes_model, [])


def test_encode_text_query(shapes_model):
    v = encode_text_query(shapes_model, "a red circle")
    assert v.shape == (shapes_model.dim,) and v.dtype == np.float32
    np.testing.assert_allclose(v, shapes_model.encode_texts(["a red circle"])[0], atol=1e-6)


@pytest.fixture(scope="module")
def emb(shapes_model):
    data = clipviz.datasets.shapes(30, seed=11)
    return embed_images(
        shapes_model, data.to_imageset(label="colour_shape"), cache=False, progress=False
    )


def test_search_by_text_id_image_and_vector(shapes_model, emb):
    hits = search(emb, "a photo of a red circle", model=shapes_model, k=5)
    assert list(hits.columns) == ["rank", "id", "score", "label", "path"]
    assert hits["rank"].tolist() == [1, 2, 3, 4, 5]
    assert np.all(np.diff(hits["score"].to_numpy()) <= 0)
    q = shapes_model.encode_texts(["a photo of a red circle"])[0]
    best = int(np.argmax(emb.vectors @ q))
    assert hits["id"].iloc[0] == emb.ids[best]
    assert hits["score"].iloc[0] == pytest.approx(float(emb.vectors[best] @ q), abs=1e-5)
    by_id = search(emb, emb.ids[4], k=3)  # image -> images, without the query itself
    assert emb.ids[4] not in by_id["id"].tolist() and len(by_id) == 3
    by_vec = search(emb, emb.vectors[4], k=1)
    assert by_vec["id"].iloc[0] == emb.ids[4]
    img = clipviz.datasets.shapes(30, seed=11).images[4]
    assert search(emb, img, model=shapes_model, k=1)["id"].iloc[0] == emb.ids[4]


def test_search_errors(shapes_model, emb):
    with pytest.raises(ValueError, match="pass model="):
        search(emb, "a red circle")
    with pytest.raises(KeyError, match="no image with id"):
        search(emb, "nope", by="id")
    with pytest.raises(ValueError, match="dimensions"):
        search(emb, np.ones(3))
    with pytest.raises(TypeError, match="cannot search"):
        search(emb, 42)


def test_zero_shot_end_to_end_runs(shapes_model, emb):
    prompts = embed_prompts(shapes_model, CLASSES, "single")
    pred = zero_shot(emb, prompts, k=3)
    assert pred.probs.shape == (len(emb), len(CLASSES))
    np.testing.assert_allclose(pred.probs.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    ("classnames", "error", "message"),
    [
        ("circle", TypeError, "one string 'circle'"),
        ([1, "circle"], TypeError, r"got 1 \(int\)"),
        (["circle", None], TypeError, r"got None \(NoneType\)"),
        ([], ValueError, "empty"),
        (["circle", ""], ValueError, "blank entry ''"),
        (["circle", "  "], ValueError, "blank entry '  '"),
        (["circle", "square", "circle"], ValueError, "'circle' appears twice"),
        (["circle", " circle "], ValueError, "'circle' appears twice"),
    ],
)
def test_embed_prompts_rejects_bad_classnames_naming_the_value(
    shapes_model, classnames, error, message
):
    with pytest.raises(error, match=message):
        embed_prompts(shapes_model, classnames, "single")


def test_duplicate_class_would_have_split_its_probability(shapes_model, emb):
    """Why duplicates are refused: two equal columns halve the class's probability."""
    from clipviz.compute import evaluate

    names = sorted(set(emb.labels))
    good = evaluate(zero_shot(emb, embed_prompts(shapes_model, names, "single")))
    assert good.acc1 > 0.5
    with pytest.raises(ValueError, match="appears twice"):
        embed_prompts(shapes_model, [*names, names[0]], "single")
