"""The second renderer (evaluation only) and the training-time variety renderer."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from clipviz.datasets.redrawn import _HSV, IMAGE_SIZES, redrawn_shapes
from clipviz.datasets.shapes import COLOURS, HELD_OUT, SHAPES


def test_redrawn_is_reproducible_per_image():
    a = redrawn_shapes(6, seed=4)
    b = redrawn_shapes(6, seed=4)
    for x, y in zip(a.images, b.images, strict=True):
        assert np.array_equal(np.asarray(x), np.asarray(y))
    c = redrawn_shapes(6, seed=5)
    assert not np.array_equal(np.asarray(a.images[0]), np.asarray(c.images[0]))


def test_redrawn_varies_what_the_names_do_not_depend_on():
    data = redrawn_shapes(200, seed=2)
    labels = data.labels
    assert set(labels["image_size"]) == set(IMAGE_SIZES)
    assert set(labels["style"]) == {"fill", "outline"}
    assert labels["cut"].any() and not labels["cut"].all()
    assert set(labels["shape"]) == set(SHAPES)
    assert set(labels["colour"]) == set(COLOURS)
    for image, side in zip(data.images, labels["image_size"], strict=True):
        assert image.size == (side, side) and image.mode == "RGB"


def test_redrawn_draws_the_named_colour_at_a_filled_shape_centre():
    data = redrawn_shapes(60, seed=3)
    for image, row in zip(data.images, data.labels.itertuples(), strict=True):
        if row.style != "fill" or row.shape in ("star", "cross", "triangle") or row.cut:
            continue  # their centre is thin or the centroid is off the circumcentre
        pixel = np.asarray(image, float)[int(row.y), int(row.x)]
        hue_deg, _, _ = _HSV[row.colour]
        r, g, b = pixel / 255
        if row.colour == "gray":
            assert np.ptp(pixel) < 40, (row, pixel)
        else:
            import colorsys

            h = colorsys.rgb_to_hsv(r, g, b)[0] * 360
            assert min(abs(h - hue_deg), 360 - abs(h - hue_deg)) < 25, (row, pixel)


def test_redrawn_splits_respect_held_out_combinations():
    held = set(HELD_OUT)
    heldout = redrawn_shapes(40, seed=1, split="heldout").labels
    assert all((c, s) in held for c, s in zip(heldout["colour"], heldout["shape"], strict=True))
    seen = redrawn_shapes(80, seed=1, split="seen").labels
    assert not any((c, s) in held for c, s in zip(seen["colour"], seen["shape"], strict=True))


def test_redrawn_names_its_bad_arguments():
    with pytest.raises(ValueError, match="split must be one of"):
        redrawn_shapes(2, split="test")
    with pytest.raises(ValueError, match="non-negative integer"):
        redrawn_shapes(-1)


def test_colour_table_covers_the_vocabulary():
    assert set(_HSV) == set(COLOURS)


def test_second_renderer_shares_no_drawing_code_with_the_training_generator():
    source = Path(__file__).parents[1] / "clipviz" / "datasets" / "redrawn.py"
    tree = ast.parse(source.read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "clipviz.datasets.shapes"
        for alias in node.names
    }
    # vocabulary and containers only: no private drawing helper of shapes.py
    assert imported <= {
        "SHAPES",
        "COLOURS",
        "SIZES",
        "SPLITS",
        "HELD_OUT",
        "ShapesData",
        "combinations",
    }
    assert "clipviz.train" not in source.read_text()


def test_varied_training_images_cover_outlines_and_stay_in_the_train_split():
    from clipviz.train.variety import varied_shapes_array

    images, labels, captions = varied_shapes_array(120, seed=0)
    assert images.shape == (120, 64, 64, 3) and images.dtype == np.uint8
    assert set(labels["style"]) == {"fill", "outline"}
    held = set(HELD_OUT)
    assert not any((c, s) in held for c, s in zip(labels["colour"], labels["shape"], strict=True))
    assert all(
        s in cap and c in cap
        for s, c, cap in zip(labels["shape"], labels["colour"], captions, strict=True)
    )
    again, _, _ = varied_shapes_array(120, seed=0, processes=1)
    assert np.array_equal(images, again)


def test_pair_data_mixes_the_varied_share():
    from clipviz.train.data import PairData

    data = PairData(100, 0, shape_only=0.0, colour_only=0.0, variety=0.25, processes=1)
    assert len(data) == 100 and len(data.labels) == 100
    plain = PairData(100, 0, shape_only=0.0, colour_only=0.0, processes=1)
    # the first 75 are the plain generator's images, unchanged by the option
    assert np.array_equal(data.images[:75].numpy(), plain.images[:75].numpy())
    assert not np.array_equal(data.images[75:].numpy(), plain.images[75:].numpy())
