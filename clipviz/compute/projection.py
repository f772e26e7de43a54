"""Joint 2-D maps of image and prompt vectors (PCA or UMAP), cached on disk.

Images and prompts are fitted together, so prompts land among the images they describe.
``Projection.transform`` places new prompt vectors into an existing map without refitting.
umap-learn is imported lazily (it costs seconds of numba compilation on first use).
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import numpy as np

from clipviz.compute import _projection_cache as pcache
from clipviz.compute import _projection_scale as scale
from clipviz.compute._projection_fit import center_each, pca_axes, umap_layout, unit_rows
from clipviz.compute.types import ImageEmbeddings, PromptEmbeddings
from clipviz.compute.zeroshot import _check_compatible, _vectors

# the workbench's UMAP child process (app/projection.py) and the tests import it by this name
_umap = umap_layout

METHODS = ("umap", "pca")
_MIN_UMAP_POINTS = 5  # below this UMAP's spectral layout fails; PCA is used instead
# cache key -> fitted UMAP, this process only (a disk-cache hit then still has a real transform);
# each holds its training data and graph, so keep few. The workbench fits in a thread: lock.
_REDUCERS: OrderedDict[str, Any] = OrderedDict()
_MAX_REDUCERS = 2
_REDUCERS_LOCK = threading.Lock()


@dataclass
class _Fit:
    """What ``transform`` needs: the fitted inputs and whichever model made the layout."""

    vectors: np.ndarray  # (N + C, D) the vectors the layout was fitted on (after centering)
    xy: np.ndarray  # (N + C, 2) their layout
    means: tuple[np.ndarray, np.ndarray] | None  # (image mean, prompt mean) when centered
    pca: tuple[np.ndarray, np.ndarray] | None = None  # (mean (D,), components (2, D))
    reducer: Any = None  # fitted umap.UMAP, when this process fitted (or memoised) it
    n_neighbors: int = 15
    layout: Any = None  # (N + C, 2) every point's position (differs from xy for a sample fit)


@dataclass
class Projection:
    """A joint 2-D layout of images and prompts.

    Attributes
    ----------
    image_xy : np.ndarray
        (N, 2) float32 image coordinates.
    prompt_xy : np.ndarray
        (C, 2) float32 prompt coordinates (0 rows when no prompts were given).
    method : str
        "pca" or "umap" (UMAP on fewer than 5 points falls back to "pca", with a warning).
    params : dict
        The settings that made the layout (also part of the cache key).
    ids, classnames : list of str or None
        Names of the rows, when known.
    from_cache : bool
        True when the layout was read from the disk cache.
    """

    image_xy: np.ndarray
    prompt_xy: np.ndarray
    method: str
    params: dict[str, Any]
    ids: list[str] | None = None
    classnames: list[str] | None = None
    from_cache: bool = False
    key: str = ""
    _fit: _Fit | None = field(default=None, repr=False)

    @property
    def xy(self) -> np.ndarray:
        """(N + C, 2) images then prompts."""
        return np.vstack([self.image_xy, self.prompt_xy])

    def transform(self, vectors: np.ndarray, *, modality: str = "text") -> np.ndarray:
        """Place new vectors into this map without refitting it.

        PCA applies the fitted linear map (exact). UMAP uses the fitted reducer's
        ``transform``. After a disk-cache hit in a new process there is no fitted reducer
        (it is not stored: unpickling is unsafe), so each new point is put at the
        distance-weighted mean position of its ``n_neighbors`` nearest fitted vectors
        (cosine), which places a copy of a mapped point on top of it.

        Parameters
        ----------
        vectors : np.ndarray
            (M, D) or (D,) vectors from the same model; normalised here.
        modality : {"text", "image"}
            Which modality's mean to subtract when the map was made with ``center=True``.

        Returns
        -------
        np.ndarray
            (M, 2) float32 (also for a single (D,) vector).
        """
        if self._fit is None:
            raise ValueError("This Projection holds no fitted state; make it with project().")
        if modality not in ("text", "image"):
            raise ValueError(f"modality must be 'text' or 'image', got {modality!r}.")
        v = _prepare_new(vectors, self._fit, modality)
        if len(v) == 0:
            return np.zeros((0, 2), np.float32)
        fit = self._fit
        if fit.pca is not None:
            mean, comps = fit.pca
            return ((v - mean) @ comps.T).astype(np.float32)
        if fit.reducer is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                return np.asarray(fit.reducer.transform(v), dtype=np.float32)
        return scale.place_by_neighbours(v, fit.vectors, fit.xy, fit.n_neighbors)


def center_modalities(
    image_vectors: np.ndarray, prompt_vectors: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Remove the modality gap: subtract each modality's mean, then renormalise.

    CLIP puts image and text vectors in two separate cones, so a joint map otherwise shows two
    islands; centering each modality lets prompts sit among the images they match.

    Parameters
    ----------
    image_vectors : np.ndarray
        (N, D), N >= 2.
    prompt_vectors : np.ndarray
        (C, D), C >= 2.

    Returns
    -------
    tuple of np.ndarray
        Centered and L2-normalised (N, D) and (C, D) float32 arrays.

    Raises
    ------
    ValueError
        Fewer than two vectors in a modality (its centered vector would be zero).
    """
    img, txt, _ = center_each(
        np.asarray(image_vectors, np.float32), np.asarray(prompt_vectors, np.float32)
    )
    return img, txt


def project(
    emb: ImageEmbeddings | np.ndarray,
    prompts: PromptEmbeddings | np.ndarray | None = None,
    method: str = "umap",
    *,
    center: bool = False,
    seed: int | None = 0,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    metric: str = "cosine",
    cache: bool | str | Any = True,
    cache_dir: Any = None,
    max_fit_points: int | None = None,
    fit_xy: Callable[[np.ndarray, dict[str, Any]], np.ndarray] | None = None,
    cancelled: Callable[[], bool] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Projection:
    """Fit one 2-D map on images and prompts together.

    Parameters
    ----------
    emb : ImageEmbeddings or np.ndarray
        (N, D) image vectors.
    prompts : PromptEmbeddings or np.ndarray, optional
        (C, D) prompt vectors placed in the same map; None for images only.
    method : {"umap", "pca"}
        PCA is instant and linear; UMAP keeps neighbourhoods (first call compiles: seconds).
    center : bool
        Remove the modality gap first (see :func:`center_modalities`).
    seed : int or None
        UMAP random state: same seed, same map. None runs UMAP in parallel, not reproducibly.
    n_neighbors, min_dist, metric
        UMAP settings (n_neighbors is clipped to the number of points - 1).
    cache : bool or folder
        True: the platform user cache (``clipviz/projections``) or ``cache_dir``;
        a folder path: that folder; False: no disk cache.
    cache_dir : path, optional
        Folder used with ``cache=True``.
    max_fit_points : int, optional
        UMAP only: above this many images, fit a seeded sample of them (plus every prompt) and
        place the others at the weighted mean of their nearest sampled images. None fits all.
    fit_xy : callable, optional
        UMAP only: ``fit_xy(vectors, params) -> (M, 2)`` runs the fit (e.g. in a child process that can
        be killed). The map's ``transform`` then places by nearest fitted points.
    cancelled : callable, optional
        Checked between steps; when it returns True the work stops with ``Cancelled``.
    progress : callable, optional
        ``progress(text)`` with what is being done.

    Returns
    -------
    Projection

    Raises
    ------
    ValueError
        Unknown method, mismatched models or dimensions, no image vectors, or ``center``
        with fewer than two vectors in a modality.
    """
    method = _check_method(method)
    img = _vectors(emb, "images")
    txt = (
        _vectors(prompts, "prompts")
        if prompts is not None
        else np.zeros((0, img.shape[1]), np.float32)
    )
    if len(img) == 0:
        raise ValueError("project() needs at least one image vector; got 0.")
    _check_compatible(emb, prompts, img, txt)
    if method == "umap" and len(img) + len(txt) < _MIN_UMAP_POINTS:
        warnings.warn(
            f"UMAP needs at least {_MIN_UMAP_POINTS} points, got {len(img) + len(txt)}; "
            "using PCA instead.",
            stacklevel=2,
        )
        method = "pca"
    params = _params(method, center, seed, n_neighbors, min_dist, metric)
    if method == "umap" and max_fit_points is not None and len(img) > max_fit_points:
        params["max_fit_points"] = int(max_fit_points)
    means = None
    if center:
        img_fit, txt_fit, means = center_each(img, txt)
    else:
        img_fit, txt_fit = img, txt
    folder = pcache.resolve_dir(cache, cache_dir)
    key, stored = "", None
    if folder is not None:  # hashing 100 MB of vectors costs ~0.3 s: only when caching
        key = pcache.cache_key(_preamble(method, params), [img, txt])
        stored = pcache.load(folder, key)
    n_all = len(img) + len(txt)
    if stored is not None and stored.get("xy", np.zeros(0)).shape == (n_all, 2):
        return _from_stored(stored, method, params, means, img_fit, txt_fit, emb, prompts, key)
    if method == "pca":
        fit = _fit_pca(img_fit, txt_fit, means)
    else:
        reducers: list[Any] = []

        def fit_here(x: np.ndarray) -> np.ndarray:  # in this process: keep the fitted model
            xy, reducer = umap_layout(x, params)
            reducers.append(reducer)
            return xy

        xy, fitted, fitted_xy = scale.fit_on_sample(
            img_fit,
            txt_fit,
            fit_here if fit_xy is None else (lambda x: fit_xy(x, params)),
            max_fit_points=params.get("max_fit_points"),
            seed=seed,
            n_neighbors=params["n_neighbors"],
            cancelled=cancelled,
            progress=progress,
        )
        fit = _Fit(fitted, fitted_xy, means, n_neighbors=params["n_neighbors"])
        fit.reducer = reducers[0] if reducers else None
        fit.layout = xy
    if folder is not None:
        arrays = {"xy": fit.layout}
        if fit.pca is not None:
            arrays |= {"pca_mean": fit.pca[0], "pca_components": fit.pca[1]}
        else:
            arrays |= {"fitted_vectors": fit.vectors, "fitted_xy": fit.xy}
        pcache.save(folder, key, arrays)
    if fit.reducer is not None and folder is not None:
        _remember(key, fit.reducer)
    return _result(fit, len(img), method, params, emb, prompts, key, from_cache=False)


def _from_stored(
    stored: dict[str, np.ndarray],
    method: str,
    params: dict[str, Any],
    means: Any,
    img_fit: np.ndarray,
    txt_fit: np.ndarray,
    emb: Any,
    prompts: Any,
    key: str,
) -> Projection:
    nn = params.get("n_neighbors", 15)
    if method == "pca":
        fit = _Fit(
            txt_fit[:0], stored["xy"], means, pca=(stored["pca_mean"], stored["pca_components"])
        )
    elif "fitted_vectors" in stored:  # a sample fit: place new points among the fitted ones
        fit = _Fit(stored["fitted_vectors"], stored["fitted_xy"], means, n_neighbors=nn)
    else:
        fit = _Fit(np.vstack([img_fit, txt_fit]), stored["xy"], means, n_neighbors=nn)
    fit.layout = stored["xy"]
    with _REDUCERS_LOCK:
        fit.reducer = _REDUCERS.get(key)
    return _result(fit, len(img_fit), method, params, emb, prompts, key, from_cache=True)


def _fit_pca(img: np.ndarray, txt: np.ndarray, means: Any) -> _Fit:
    """Linear 2-D map of images and prompts, without stacking or centering an (N, D) copy."""
    mean, comps = pca_axes(img, txt)
    shift = mean @ comps.T
    xy = np.empty((len(img) + len(txt), 2), np.float32)
    np.subtract(img @ comps.T, shift, out=xy[: len(img)])
    np.subtract(txt @ comps.T, shift, out=xy[len(img) :])
    fit = _Fit(txt[:0], xy, means, pca=(mean, comps))
    fit.layout = xy
    return fit


def _prepare_new(vectors: np.ndarray, fit: _Fit, modality: str) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float32)
    v = v[None, :] if v.ndim == 1 else v
    dim = fit.vectors.shape[1] if fit.pca is None else fit.pca[1].shape[1]
    if v.ndim != 2 or v.shape[1] != dim:
        raise ValueError(
            f"transform() needs (M, {dim}) vectors from the model this map was made with, "
            f"got shape {np.shape(vectors)}."
        )
    v = unit_rows(v)
    if fit.means is not None:
        v = unit_rows(v - fit.means[0 if modality == "image" else 1])
    return v


def _check_method(method: str) -> str:
    m = str(method).lower()
    if m not in METHODS:
        raise ValueError(f"Unknown projection method {method!r}; use one of {', '.join(METHODS)}.")
    return m


def _params(method: str, center: bool, seed: Any, nn: int, min_dist: float, metric: str) -> dict:
    params: dict[str, Any] = {"center": bool(center)}
    if method == "umap":
        if isinstance(nn, bool) or not isinstance(nn, (int, np.integer)) or nn < 2:
            raise ValueError(f"n_neighbors must be an integer >= 2, got {nn!r}.")
        params |= {
            "seed": None if seed is None else int(seed),
            "n_neighbors": int(nn),
            "min_dist": float(min_dist),
            "metric": str(metric),
        }
    return params


def _preamble(method: str, params: dict[str, Any]) -> dict[str, Any]:
    from clipviz import __version__

    out = {"kind": "projection", "clipviz": __version__, "method": method, "params": params}
    if method == "umap":
        out["umap"] = metadata.version("umap-learn")
    return out


def _remember(key: str, reducer: Any) -> None:
    with _REDUCERS_LOCK:
        _REDUCERS[key] = reducer
        _REDUCERS.move_to_end(key)
        while len(_REDUCERS) > _MAX_REDUCERS:
            _REDUCERS.popitem(last=False)


def _result(
    fit: _Fit,
    n_img: int,
    method: str,
    params: dict,
    emb: Any,
    prompts: Any,
    key: str,
    *,
    from_cache: bool,
) -> Projection:
    ids = list(emb.ids) if isinstance(emb, ImageEmbeddings) else None
    names = list(prompts.classnames) if isinstance(prompts, PromptEmbeddings) else None
    xy = np.asarray(fit.layout if fit.layout is not None else fit.xy, dtype=np.float32)
    return Projection(xy[:n_img], xy[n_img:], method, params, ids, names, from_cache, key, fit)
