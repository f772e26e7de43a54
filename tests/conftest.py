"""Shared fixtures. Tests run offline and use the bundled model for real forward passes."""

from __future__ import annotations

import os

# Fail at once instead of waiting on a hub that cannot be reached.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def shapes_model():
    """The bundled clipviz-shapes model on the CPU (loaded once per test session)."""
    import clipviz.models

    return clipviz.models.load_model("clipviz-shapes", device="cpu")


#: A file name that is also HTML: every view must show it as text and run no script.
HOSTILE_NAME = "<img src=x onerror=alert(1)>.png"
HOSTILE_PROMPT = "<svg onload=alert(2)>"


@pytest.fixture(scope="session")
def hostile_workbench(shapes_model, tmp_path_factory):
    """A 25-image Workbench (PCA map) on shape PNG files, one of them named ``HOSTILE_NAME``.

    The images are embedded with the bundled model's real forward pass. Used by the snapshot
    tests (H6).
    """
    import clipviz
    from clipviz.compute.types import ImageEmbeddings

    folder = tmp_path_factory.mktemp("hostile_shapes")
    data = clipviz.datasets.shapes(25, seed=3)
    paths = []
    for i, image in enumerate(data.images):
        path = folder / (HOSTILE_NAME if i == 0 else f"shape_{i:02d}.png")
        image.save(path)
        paths.append(path)
    labels = list(data.labels["shape"])
    images = clipviz.ImageSet.from_paths(paths, labels=labels)
    import torch

    with torch.no_grad():
        pixels = torch.stack([shapes_model.preprocess(images.load(i)) for i in range(len(images))])
    vectors = shapes_model.encode_images(pixels)
    emb = ImageEmbeddings(list(images.ids), vectors, shapes_model.info, labels=labels)
    import warnings

    with warnings.catch_warnings():  # the hostile prompt is longer than the model's context
        warnings.simplefilter("ignore")
        return clipviz.Workbench(
            images,
            model=shapes_model,
            embeddings=emb,
            classnames=[*clipviz.datasets.SHAPES, HOSTILE_PROMPT],
            projection="pca",
        )
