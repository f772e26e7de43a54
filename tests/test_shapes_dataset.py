"""The synthetic shapes generator: vocabulary, determinism, held-out split, captions."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from clipviz.datasets import COLOURS, HELD_OUT, SHAPES, SIZES, shapes, shapes_array
from clipviz.datasets.shapes import combinations


def test_vocabulary_is_exactly_the_documented_one():
    assert SHAPES == ["circle", "square", "triangle", "star", "hexagon", "cross"]
    assert COLOURS == ["red", "orange", "yellow", "green", "blue", "purple", "pink", "gray"]
    assert SIZES == ["small", "large"]
    assert len(HELD_OUT) == 6 and len(set(HELD_OUT)) == 6
    assert all(c in COLOURS and s in SHAPES for c, s in HELD_OUT)


def test_images_are_64px_rgb_and_arrays_uint8():
    data = shapes(20, seed=1)
    assert len(data) == 20 and len(data.captions) == 20 and len(data.labels) == 20
    assert all(isinstance(im, Image.Image) and im.mode == "RGB" for im in data.images)
    assert {im.size for im in data.images} == {(64, 64)}
    arr, labels, captions = shapes_array(5, seed=1)
    assert arr.shape == (5, 64, 64, 3) and arr.dtype == np.uint8
    assert {"shape", "colour", "size", "background"} <= set(labels.columns)
    assert len(set(data.ids)) == 20


def test_same_seed_same_data_other_seed_other_data():
    a, la, ca = shapes_array(30, seed=7)
    b, lb, cb = shapes_array(30, seed=7)
    c, _, _ = shapes_array(30, seed=8)
    assert np.array_equal(a, b) and ca == cb and la.equals(lb)
    assert not np.array_equal(a, c)


def test_parallel_generation_matches_serial():
    a, la, ca = shapes_array(2100, seed=3, processes=2)
    b, lb, cb = shapes_array(2100, seed=3, processes=1)
    assert np.array_equal(a, b) and ca == cb


def test_prefix_is_stable_whatever_n():
    small, _, cap_small = shapes_array(10, seed=5)
    large, _, cap_large = shapes_array(25, seed=5)
    assert np.array_equal(small, large[:10]) and cap_small == cap_large[:10]


def test_held_out_combinations_never_in_train_split():
    _, labels, _ = shapes_array(3000, seed=0, split="train")
    pairs = set(zip(labels["colour"], labels["shape"], strict=True))
    assert not pairs & set(HELD_OUT)
    assert len(pairs) == 42  # every seen combination does occur
    _, held, _ = shapes_array(200, seed=0, split="heldout")
    assert set(zip(held["colour"], held["shape"], strict=True)) == set(HELD_OUT)
    assert len(combinations("seen")) + len(combinations("heldout")) == 48


def test_captions_name_colour_and_shape_and_vary():
    data = shapes(300, seed=2)
    for cap, (_, row) in zip(data.captions, data.labels.iterrows(), strict=True):
        assert row["colour"] in cap.split() and row["shape"] in cap.split(), cap
    assert (
        len({c.replace(r, "") for c, r in zip(data.captions, data.labels["colour"], strict=True)})
        > 20
    )


def test_all_labels_occur_and_shape_is_visible():
    arr, labels, _ = shapes_array(600, seed=4)
    assert set(labels["shape"]) == set(SHAPES) and set(labels["colour"]) == set(COLOURS)
    assert set(labels["size"]) == set(SIZES)
    for img, (_, row) in zip(arr[:50], labels.iloc[:50].iterrows(), strict=True):
        y, x = int(round(row["y"])), int(round(row["x"]))
        centre = img[y - 1 : y + 2, x - 1 : x + 2].reshape(-1, 3).astype(int).mean(0)
        corner = img[:3, :3].reshape(-1, 3).astype(int).mean(0)
        # the centre shows the shape (crosses and stars are solid there too), not the background
        assert np.abs(centre - corner).sum() > 60, (row.to_dict(), centre, corner)
    large = labels["radius"][labels["size"] == "large"]
    small = labels["radius"][labels["size"] == "small"]
    assert small.min() >= 11 and large.min() > small.max()


def test_to_imageset_labels():
    data = shapes(6, seed=0)
    assert data.label_strings("colour_shape")[0] == (
        f"{data.labels['colour'][0]} {data.labels['shape'][0]}"
    )
    assert data.label_strings("shape") == list(data.labels["shape"])
    with pytest.raises(ValueError, match="colour_shape"):
        data.label_strings("texture")


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="split must be one of"):
        shapes(3, split="test")
    with pytest.raises(ValueError, match="non-negative integer"):
        shapes_array(-1)
    arr, labels, caps = shapes_array(0)
    assert arr.shape == (0, 64, 64, 3) and caps == []
