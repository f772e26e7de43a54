"""Joint PCA/UMAP maps: shapes, determinism, transform, modality centering and the disk cache.

UMAP is fitted once per module on a small set (its numba compilation costs seconds).
"""

from __future__ import annotations

import numpy as np
import pytest

from clipviz.compute import (
    ImageEmbeddings,
    ModelInfo,
    PromptEmbeddings,
    center_modalities,
    project,
)
from clipviz.compute import projection as projection_mod

INFO = ModelInfo(key="m", name="tiny", logit_scale=100.0, dim=32)


def _unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _clusters(n_per=50, c=4, dim=32, seed=0, gap=0.0):
    """c tight clusters of images; prompts at the cluster centres shifted by a common gap."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((c, dim))
    img = _unit(np.repeat(centres, n_per, axis=0) + 0.3 * rng.standard_normal((c * n_per, dim)))
    txt = _unit(centres + gap * rng.standard_normal(dim))
    names = [f"class{i}" for i in range(c)]
    emb = ImageEmbeddings([f"i{j}" for j in range(len(img))], img, INFO)
    prm = PromptEmbeddings(names, ["{}"], txt, INFO)
    return emb, prm


@pytest.fixture(scope="module")
def umap_map(tmp_path_factory):
    emb, prm = _clusters()
    folder = tmp_path_factory.mktemp("proj")
    return emb, prm, folder, project(emb, prm, "umap", n_neighbors=10, cache=folder)


def test_umap_shapes_and_cluster_structure(umap_map):
    emb, prm, _, proj = umap_map
    assert proj.method == "umap" and not proj.from_cache
    assert proj.image_xy.shape == (200, 2) and proj.prompt_xy.shape == (4, 2)
    assert proj.image_xy.dtype == np.float32 and np.isfinite(proj.xy).all()
    assert proj.ids == emb.ids and proj.classnames == prm.classnames
    # each cluster's images sit closer to their own centroid than to any other cluster's
    cents = proj.image_xy.reshape(4, 50, 2).mean(axis=1)
    d = np.linalg.norm(proj.image_xy[:, None] - cents[None], axis=2)
    assert (d.argmin(axis=1) == np.repeat(np.arange(4), 50)).mean() > 0.95


def test_umap_deterministic_with_seed(umap_map):
    emb, prm, _, proj = umap_map
    again = project(emb, prm, "umap", n_neighbors=10, cache=False)
    np.testing.assert_array_equal(again.image_xy, proj.image_xy)
    np.testing.assert_array_equal(again.prompt_xy, proj.prompt_xy)


def _spread(xy):
    return float(np.linalg.norm(xy.max(0) - xy.min(0)))


def test_umap_transform_places_copy_near_original(umap_map):
    emb, _, _, proj = umap_map
    placed = proj.transform(emb.vectors[[3, 120]], modality="image")
    err = np.linalg.norm(placed - proj.image_xy[[3, 120]], axis=1)
    assert placed.shape == (2, 2) and (err < 0.1 * _spread(proj.image_xy)).all()
    assert proj.transform(emb.vectors[3]).shape == (1, 2)
    with pytest.raises(ValueError, match=r"\(M, 32\) vectors"):
        proj.transform(np.ones((2, 5)))


def test_umap_cache_hit_and_knn_fallback(umap_map, monkeypatch):
    emb, prm, folder, proj = umap_map
    same_process = project(emb, prm, "umap", n_neighbors=10, cache=folder)
    assert same_process.from_cache and same_process._fit.reducer is not None  # memoised
    monkeypatch.setattr(projection_mod, "_REDUCERS", projection_mod.OrderedDict())  # new process
    hit = project(emb, prm, "umap", n_neighbors=10, cache=folder)
    assert hit.from_cache and hit.key == proj.key
    np.testing.assert_array_equal(hit.image_xy, proj.image_xy)
    np.testing.assert_array_equal(hit.prompt_xy, proj.prompt_xy)
    assert hit._fit.reducer is None
    placed = hit.transform(prm.vectors[1:2])  # fallback: a copy lands on the mapped prompt
    np.testing.assert_allclose(placed[0], proj.prompt_xy[1], atol=1e-3 * _spread(proj.xy))


def test_pca_matches_sklearn_up_to_sign_and_transform_is_exact(tmp_path):
    decomposition = pytest.importorskip("sklearn.decomposition")
    emb, prm = _clusters(seed=1)
    proj = project(emb, prm, "pca", cache=False)
    ref = decomposition.PCA(2).fit_transform(np.vstack([emb.vectors, prm.vectors]))
    signs = np.sign((proj.xy * ref).sum(axis=0))
    np.testing.assert_allclose(proj.xy, ref * signs, atol=1e-4)
    np.testing.assert_allclose(proj.transform(prm.vectors), proj.prompt_xy, atol=1e-5)


def test_pca_cache_hit_identical_and_changes_miss(tmp_path):
    emb, prm = _clusters(seed=2)
    first = project(emb, prm, "pca", cache=tmp_path)
    hit = project(emb, prm, "pca", cache=True, cache_dir=tmp_path)
    assert not first.from_cache and hit.from_cache
    np.testing.assert_array_equal(hit.xy, first.xy)
    np.testing.assert_allclose(hit.transform(prm.vectors), first.prompt_xy, atol=1e-5)
    changed = emb.vectors.copy()
    changed[5] = _unit(changed[5] + 0.01)
    emb2 = ImageEmbeddings(emb.ids, changed, INFO)
    assert not project(emb2, prm, "pca", cache=tmp_path).from_cache
    assert not project(emb, prm, "pca", center=True, cache=tmp_path).from_cache
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".npz"] * 3  # no temp files left


def test_corrupt_cache_file_is_recomputed(tmp_path):
    emb, prm = _clusters(seed=3)
    first = project(emb, prm, "pca", cache=tmp_path)
    (tmp_path / f"{first.key}.npz").write_bytes(b"not a zip")
    with pytest.warns(UserWarning, match="unreadable projection cache"):
        again = project(emb, prm, "pca", cache=tmp_path)
    assert not again.from_cache
    np.testing.assert_array_equal(again.xy, first.xy)
    assert project(emb, prm, "pca", cache=tmp_path).from_cache  # rewritten


def test_center_modalities_closes_the_gap():
    emb, prm = _clusters(gap=3.0, seed=4)
    img, txt = center_modalities(emb.vectors, prm.vectors)
    np.testing.assert_allclose(np.linalg.norm(img, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(txt, axis=1), 1, atol=1e-5)
    gap_before = np.linalg.norm(emb.vectors.mean(0) - prm.vectors.mean(0))
    gap_after = np.linalg.norm(img.mean(0) - txt.mean(0))
    assert gap_before > 0.5 and gap_after < 0.2 * gap_before
    # each image still matches its own cluster's prompt best
    assert ((img @ txt.T).argmax(axis=1) == np.repeat(np.arange(4), 50)).mean() > 0.95
    with pytest.raises(ValueError, match="at least two prompt vectors, got 1"):
        center_modalities(emb.vectors, prm.vectors[:1])


def test_raw_arrays_images_only_and_errors():
    emb, prm = _clusters(seed=5)
    proj = project(emb.vectors, None, "pca", cache=False)
    assert proj.prompt_xy.shape == (0, 2) and proj.ids is None
    with pytest.raises(ValueError, match="Unknown projection method 'tsne'"):
        project(emb, prm, "tsne")
    with pytest.raises(ValueError, match="different spaces"):
        project(emb, PromptEmbeddings(["a"], ["{}"], prm.vectors[:1], ModelInfo("x", "y", 1, 32)))
    with pytest.raises(ValueError, match="n_neighbors must be an integer >= 2"):
        project(emb, prm, "umap", n_neighbors=1, cache=False)
    with pytest.warns(UserWarning, match="using PCA instead"):
        tiny = project(emb.vectors[:2], prm.vectors[:1], "umap", cache=False)
    assert tiny.method == "pca" and tiny.xy.shape == (3, 2)


def test_umap_on_a_sample_places_the_other_images_by_their_neighbours(umap_map, tmp_path):
    from clipviz.compute._projection_scale import Cancelled, sample_indices

    emb, prm, _, _ = umap_map
    calls: list[int] = []

    def fit_xy(x, params):  # the workbench runs this in a child process; here in-process
        calls.append(len(x))
        return projection_mod._umap(x, params)[0]

    steps: list[str] = []
    proj = project(
        emb,
        prm,
        "umap",
        n_neighbors=10,
        cache=tmp_path,
        max_fit_points=80,
        fit_xy=fit_xy,
        progress=steps.append,
    )
    assert calls == [80 + len(prm.vectors)]  # the sample plus every prompt, not all 200 images
    assert proj.params["max_fit_points"] == 80 and proj.image_xy.shape == (200, 2)
    assert steps[0] == "fitting 80 of 200 images" and steps[-1].endswith("100%")
    # placed images land in their cluster: nearer their own cluster's centre than any other
    centres = np.stack([proj.image_xy[k * 50 : (k + 1) * 50].mean(axis=0) for k in range(4)])
    rest = np.setdiff1d(np.arange(200), sample_indices(200, 80, 0))
    nearest = np.argmin(((proj.image_xy[rest, None] - centres[None]) ** 2).sum(-1), axis=1)
    assert (nearest == rest // 50).mean() > 0.9
    # prompts edited later are placed by their nearest fitted points (no reducer needed)
    np.testing.assert_allclose(proj.transform(prm.vectors), proj.prompt_xy, atol=1e-3)
    hit = project(
        emb, prm, "umap", n_neighbors=10, cache=tmp_path, max_fit_points=80, fit_xy=fit_xy
    )
    assert hit.from_cache and len(calls) == 1
    np.testing.assert_array_equal(hit.image_xy, proj.image_xy)
    with pytest.raises(Cancelled):
        project(
            emb,
            prm,
            "umap",
            n_neighbors=10,
            cache=False,
            max_fit_points=80,
            fit_xy=fit_xy,
            cancelled=lambda: True,
        )


def test_pca_of_many_points_needs_no_stacked_copy_and_matches_the_exact_axes():
    rng = np.random.default_rng(3)
    img = _unit(rng.standard_normal((50_000, 16)) * np.linspace(3, 0.1, 16))
    txt = _unit(rng.standard_normal((3, 16)))
    proj = project(img, txt, "pca", cache=False)  # axes from a 20k-row sample
    from sklearn.decomposition import PCA

    ref = PCA(2).fit_transform(np.vstack([img, txt]))
    for axis in range(2):
        corr = np.corrcoef(proj.xy[:, axis], ref[:, axis])[0, 1]
        assert abs(corr) > 0.99  # the sampled axes: within ~1e-2 of the exact ones
