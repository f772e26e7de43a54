"""The map's projection policy: PCA at once, UMAP in a background thread, prompts placed later.

The map is fitted on image and prompt vectors together once (and again only when the
modality-gap toggle changes). A prompt edit does not refit: the new prompt vectors are placed
into the existing map with ``Projection.transform``. A UMAP fit runs in a daemon thread and
replaces the PCA map when it finishes, unless something newer was asked for meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np


class Projector:
    """Keeps the current 2-D projection and places prompts into it.

    Parameters
    ----------
    method : {"umap", "pca"}
        The projection wanted in the end; PCA is always shown first because it is instant.
    on_ready : callable
        ``on_ready(projection)``, called from the worker thread when a UMAP fit is done.
    on_error : callable
        ``on_error(exception)``, called from the worker thread when the UMAP fit fails.
    cache : bool or str
        Passed to ``compute.project`` (disk cache of projections).
    seed : int
        Random seed of the UMAP fit.
    """

    def __init__(
        self,
        method: str,
        on_ready: Callable[[Any], None],
        on_error: Callable[[BaseException], None],
        *,
        cache: bool | str = True,
        seed: int = 0,
    ) -> None:
        if method not in ("umap", "pca"):
            raise ValueError(f"projection must be 'umap' or 'pca', got {method!r}")
        self.method = method
        self.on_ready, self.on_error = on_ready, on_error
        self.cache, self.seed = cache, seed
        self.current: Any = None  # the Projection shown now
        self.center = False
        self.fit_prompts: np.ndarray | None = None
        self._generation = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def pending(self) -> bool:
        """True while a background UMAP fit is running."""
        return self._thread is not None and self._thread.is_alive()

    def fit(self, image_vectors: np.ndarray, prompt_vectors: np.ndarray, *, center: bool) -> Any:
        """Fit a PCA map now (returned) and, for UMAP, start the background fit."""
        from clipviz.compute import project

        self.center = center
        img, txt = image_vectors, prompt_vectors
        self.fit_prompts = prompt_vectors  # prompts the map was fitted with
        with self._lock:
            self._generation += 1
            generation = self._generation
        pca = project(img, txt, method="pca", center=center, seed=self.seed, cache=False)
        with self._lock:
            self.current = pca
        if self.method == "umap":
            self._thread = threading.Thread(
                target=self._fit_umap,
                args=(img, txt, center, generation),
                daemon=True,
                name="clipviz-umap",
            )
            self._thread.start()
        return pca

    def place(self, prompt_vectors: np.ndarray) -> np.ndarray:
        """(C, 2) positions of prompt vectors in the current map, without refitting it.

        With the modality gap removed, ``transform`` subtracts the prompt mean of the fit.
        """
        if self.current is None:
            raise RuntimeError("place() before fit(): no map yet")
        return np.asarray(self.current.transform(prompt_vectors), dtype=np.float32)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a background fit; True when none is running any more."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.pending

    def _fit_umap(self, img: np.ndarray, txt: np.ndarray, center: bool, generation: int) -> None:
        from clipviz.compute import project

        try:
            proj = project(img, txt, method="umap", center=center, seed=self.seed, cache=self.cache)
        except Exception as err:  # reported in the workbench's Output, never swallowed
            if generation == self._generation:
                self.on_error(err)
            return
        with self._lock:
            if generation != self._generation:
                return  # a newer fit was started (e.g. the gap toggle): drop this one
            self.current = proj
        self.on_ready(proj)
