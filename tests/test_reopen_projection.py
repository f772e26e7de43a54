"""Reopening with a UMAP map in the disk cache: it is shown at once, with no PCA first and no
background fit; without one, PCA shows first and UMAP is fitted in the background."""

from __future__ import annotations

import numpy as np
import pytest

from clipviz.app import Workbench


@pytest.fixture(scope="module")
def shapes_embeddings(shapes_model):
    from clipviz.datasets import shapes
    from clipviz.engine import embed_images

    images = shapes(40, seed=5).to_imageset("shape")
    return embed_images(shapes_model, images, cache=False, progress=False)


def _store_umap(wb: Workbench, folder) -> np.ndarray:
    """Put a UMAP map of ``wb``'s vectors into the cache, as a finished background fit does
    (``fit_xy`` is the hook the workbench's fit process uses; here it returns a known layout)."""
    from clipviz.compute import project

    projector = wb.controller.projector
    layout = {}

    def fit_xy(x: np.ndarray, params: dict) -> np.ndarray:
        layout["xy"] = np.stack([np.arange(len(x)), -np.arange(len(x))], axis=1) / 7.0
        return layout["xy"].astype(np.float32)

    project(wb.data.embeddings, projector.fit_prompts, method="umap", center=False,
            seed=projector.seed, cache=str(folder), max_fit_points=projector.max_fit_points,
            fit_xy=fit_xy)  # fmt: skip
    return layout["xy"]


def test_a_cached_umap_map_is_shown_at_once_without_a_background_fit(
    shapes_embeddings, shapes_model, tmp_path
):
    first = Workbench(shapes_embeddings, model=shapes_model, projection="umap", cache=False)
    try:
        assert first.projection.method == "pca"  # nothing cached: PCA now...
        assert first.controller.projector.pending  # ...and UMAP in the background
    finally:
        first.close()
    layout = _store_umap(first, tmp_path)

    wb = Workbench(shapes_embeddings, model=shapes_model, projection="umap", cache=str(tmp_path))
    projector = wb.controller.projector
    assert wb.projection.method == "umap" and wb.views["map"].method == "umap"
    assert projector._job is None and not projector.pending  # no fit started
    n = len(wb.ids)
    np.testing.assert_allclose(wb.projection.image_xy, layout[:n], rtol=1e-6)
    assert wb.wait_for_projection(0) and not wb.errors
    # a prompt edit places the new prompts into the cached map (no refit)
    wb.prompts = ["circle", "square", "a red star"]
    assert wb.projection is projector.current and wb.projection.method == "umap"
    assert len(wb.views["map"]._prompt_xy) == 3 and not wb.errors


def test_pca_projection_never_reads_a_umap_map(shapes_embeddings, shapes_model, tmp_path):
    wb = Workbench(shapes_embeddings, model=shapes_model, projection="pca", cache=str(tmp_path))
    _store_umap(wb, tmp_path)
    again = Workbench(shapes_embeddings, model=shapes_model, projection="pca", cache=str(tmp_path))
    assert again.projection.method == "pca" and again.controller.projector._job is None
