"""The map's projection: PCA at once, UMAP in the background, cancelled when superseded.

``Projector.fit`` returns a PCA map at once and, for UMAP, starts a background job. Each fit
gets a generation number; a job whose generation is no longer the newest is cancelled and its
result dropped, so an older fit is never drawn over a newer map. UMAP cannot be interrupted
mid-fit, so the fit itself runs in a child process (spawned once, reused while no fit is
cancelled, fed only the fitted sample, at a lower priority) that ``cancel``/``close`` kill; the cache look-up, sampling and placing of the other images run in a
worker thread that checks for cancellation between chunks. Prompts are always placed by their
nearest fitted points (``Projection.transform`` without a reducer): no numba compile, no
``umap.transform`` on a prompt edit.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from clipviz.compute._projection_scale import DEFAULT_MAX_FIT_POINTS, Cancelled


def _worker(conn: Any) -> None:
    """Child process: UMAP fits, one per request, until the pipe closes or it is killed.

    It runs at a lower priority so the kernel and the browser stay responsive, and it stays
    alive between fits: numba compiles UMAP once per process (tens of seconds on two cores).
    """
    import os
    import signal

    from clipviz.compute.projection import _umap

    # a kernel interrupt or shutdown signals the whole process group: that is the parent's to
    # handle (it kills this process when the fit is no longer wanted), not a traceback here
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(10)
    while True:
        try:
            x, params = conn.recv()
        except (EOFError, OSError):
            return
        try:
            conn.send(("ok", _umap(x, params)[0]))
        except Exception as err:  # sent to the parent, which reports it
            conn.send(("error", f"{type(err).__name__}: {err}"))


class _FitProcess:
    """The UMAP worker process: started on first use, reused, killed to cancel a fit."""

    def __init__(self) -> None:
        self._process: Any = None
        self._conn: Any = None
        self._lock = threading.Lock()

    def fit(self, x: np.ndarray, params: dict[str, Any], cancelled: Callable[[], bool]) -> Any:
        with self._lock:
            if cancelled():  # a job cancelled before it got here must not start a process
                raise Cancelled  # that its cancel's kill() has already missed
            if self._process is None or not self._process.is_alive():
                ctx = multiprocessing.get_context("spawn")  # fork is unsafe in a threaded kernel
                self._conn, child = ctx.Pipe()
                self._process = ctx.Process(
                    target=_worker, args=(child,), daemon=True, name="clipviz-umap-worker"
                )
                self._process.start()
                child.close()
            conn, process = self._conn, self._process
        conn.send((x, params))
        while not conn.poll(0.2):
            if cancelled():
                raise Cancelled
            if not process.is_alive():
                raise RuntimeError(f"the UMAP process ended (exit code {process.exitcode})")
        try:
            status, value = conn.recv()
        except (EOFError, OSError):
            raise Cancelled from None  # killed while sending
        if status != "ok":
            raise RuntimeError(f"UMAP fit failed: {value}")
        return np.asarray(value, np.float32)

    def kill(self) -> None:
        with self._lock:
            process, self._process = self._process, None
            conn, self._conn = self._conn, None
        if process is not None and process.is_alive():
            process.kill()
            process.join(5)
        if conn is not None:
            conn.close()


class _NotCached(Exception):
    """A projection asked of the disk cache only is not there."""


class _UmapJob:
    """One background UMAP fit: a worker thread that drives the fit process."""

    def __init__(self, generation: int, process: _FitProcess) -> None:
        self.generation = generation
        self.cancel_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.process = process

    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def cancel(self) -> None:
        """Drop the result; a fit in progress is stopped by killing the fit process."""
        self.cancel_event.set()
        self.process.kill()

    def fit_in_child(self, x: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        return self.process.fit(x, params, self.cancelled)


class Projector:
    """Keeps the current 2-D projection, places prompts into it, owns the background fit.

    Parameters
    ----------
    method : {"umap", "pca"}
        The projection wanted in the end; PCA is always shown first because it is instant.
    on_ready : callable
        ``on_ready(projection)``, called from the worker thread when a UMAP fit is current.
    on_error : callable
        ``on_error(exception)``, called from the worker thread when the current fit fails.
    on_progress : callable, optional
        ``on_progress(text)`` with the background fit's progress ("" when done).
    cache : bool or str
        Passed to ``compute.project`` (disk cache of projections).
    seed : int
        Random seed of the UMAP fit and of the sample.
    max_fit_points : int
        Above this many images, UMAP fits a sample and places the rest.
    """

    def __init__(
        self,
        method: str,
        on_ready: Callable[[Any], None],
        on_error: Callable[[BaseException], None],
        *,
        on_progress: Callable[[str], None] | None = None,
        cache: bool | str = True,
        seed: int = 0,
        max_fit_points: int = DEFAULT_MAX_FIT_POINTS,
    ) -> None:
        if method not in ("umap", "pca"):
            raise ValueError(f"projection must be 'umap' or 'pca', got {method!r}")
        self.method = method
        self.on_ready, self.on_error = on_ready, on_error
        self.on_progress = on_progress or (lambda text: None)
        self.cache, self.seed, self.max_fit_points = cache, seed, int(max_fit_points)
        self.current: Any = None  # the Projection shown now
        self.center = False
        self.fit_prompts: np.ndarray | None = None
        self.progress = ""
        self._generation = 0
        self._lock = threading.Lock()
        self._job: _UmapJob | None = None
        self._process = _FitProcess()

    @property
    def generation(self) -> int:
        """Number of the newest fit; a result of an older one is never shown."""
        return self._generation

    @property
    def pending(self) -> bool:
        """True while a background UMAP fit is running."""
        job = self._job
        return job is not None and job.thread is not None and job.thread.is_alive()

    def fit(self, image_vectors: np.ndarray, prompt_vectors: np.ndarray, *, center: bool) -> Any:
        """Fit a PCA map now (returned) and, for UMAP, start the background fit.

        A UMAP map already in the disk cache (a reopen) is returned at once instead: no PCA
        first, no background fit. Any background fit still running is cancelled first (its
        result is not wanted).
        """
        from clipviz.compute import project

        self.cancel()
        self.center = center
        self.fit_prompts = prompt_vectors  # prompts the map was fitted with
        cached = self._cached_umap(image_vectors, prompt_vectors, center)
        if cached is not None:
            with self._lock:
                self._generation += 1
                self.current = cached
            return cached
        pca = project(image_vectors, prompt_vectors, method="pca", center=center, cache=False)
        with self._lock:
            self._generation += 1
            self.current = pca
            job = _UmapJob(self._generation, self._process)
            if self.method == "umap":
                job.thread = threading.Thread(
                    target=self._run,
                    args=(job, image_vectors, prompt_vectors, center),
                    daemon=True,
                    name=f"clipviz-umap-{job.generation}",
                )
                self._job = job
                job.thread.start()
        return pca

    def _cached_umap(self, img: Any, txt: np.ndarray, center: bool) -> Any:
        """The UMAP map of these vectors from the disk cache, or None (nothing is fitted)."""
        from clipviz.compute import project
        from clipviz.compute.projection import _MIN_UMAP_POINTS

        if self.method != "umap" or not self.cache or len(img) + len(txt) < _MIN_UMAP_POINTS:
            return None

        def not_cached(x: np.ndarray, params: dict[str, Any]) -> np.ndarray:
            raise _NotCached  # project() asks for a fit only on a cache miss

        try:
            return project(img, txt, method="umap", center=center, seed=self.seed,
                           cache=self.cache, max_fit_points=self.max_fit_points,
                           fit_xy=not_cached)  # fmt: skip
        except _NotCached:
            return None

    def place(self, prompt_vectors: np.ndarray) -> np.ndarray:
        """(C, 2) positions of prompt vectors in the current map, without refitting it."""
        if self.current is None:
            raise RuntimeError("place() before fit(): no map yet")
        return np.asarray(self.current.transform(prompt_vectors), dtype=np.float32)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a background fit; True when none is running any more."""
        job = self._job
        if job is not None and job.thread is not None:
            job.thread.join(timeout)
        return not self.pending

    def cancel(self) -> None:
        """Stop the background fit (kill its child process) and drop its result."""
        with self._lock:
            job, self._job = self._job, None
            self._generation += 1
        if job is not None and job.thread is not None and job.thread.is_alive():
            job.cancel()
            self._set_progress("")

    def close(self, timeout: float = 10.0) -> None:
        """Cancel background work and wait until its thread has ended."""
        job = self._job
        self.cancel()
        self._process.kill()
        if job is not None and job.thread is not None:
            job.thread.join(timeout)

    def _set_progress(self, text: str) -> None:
        self.progress = text
        self.on_progress(text)

    def _run(self, job: _UmapJob, img: np.ndarray, txt: np.ndarray, center: bool) -> None:
        from clipviz.compute import project

        def progress(text: str) -> None:
            if not job.cancelled():
                self._set_progress(f"UMAP: {text}")

        try:
            proj = project(
                img,
                txt,
                method="umap",
                center=center,
                seed=self.seed,
                cache=self.cache,
                max_fit_points=self.max_fit_points,
                fit_xy=job.fit_in_child,
                cancelled=job.cancelled,
                progress=progress,
            )
        except Cancelled:
            return
        except Exception as err:  # reported in the workbench's Output, never swallowed
            if not job.cancelled() and job.generation == self._generation:
                self._set_progress("")
                self.on_error(err)
            return
        with self._lock:
            if job.cancelled() or job.generation != self._generation:
                return  # a newer fit was started (e.g. the gap toggle): drop this one
            self.current = proj
        self._set_progress("")
        self.on_ready(proj)
