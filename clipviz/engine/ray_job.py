"""The Ray engine of a store job: Ray Data tasks decode, a pool of model actors encodes.

The Ray Data batch-inference pattern: the file list of the shards to do becomes a dataset (one
block per shard); ``map_batches(prepare_batch)`` decodes and preprocesses in stateless tasks;
``map_batches(_Encoder, concurrency=N)`` encodes in N actors that each load the model once
(one GPU each where the cluster has GPUs, else a few CPU threads each, so that
actors x threads fit the cores). The driver streams finished rows into the ShardCollector,
which writes each shard as it completes. Ray retries a failed decode task and restarts a dead
actor (``max_restarts``/``max_task_retries``); if a whole run dies, the shards written so far
stay, and the same command finishes the rest.

A cluster that loses a node can also leave Ray waiting for good (actors to restart on resources
that are gone, objects that lived on the dead node); Ray raises nothing then. So the driver
reads the results in a thread and waits for each batch at most ``stall_timeout`` seconds: past
that, the job fails with :class:`RayJobStalled`, saying what the cluster has left and that the
same command finishes the job (the written shards are kept).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from clipviz.engine.store_format import require
from clipviz.engine.store_rows import ModelSpec, encode_batch, prepare_batch

__all__ = ["RayJobStalled", "RayOptions", "run_ray"]

_DONE = object()  # end of the result stream


@dataclass
class RayOptions:
    """Where to run and how wide: ``address`` (else ``RAY_ADDRESS``, else a local Ray),
    ``actors`` (model actors; default one per GPU, or what the CPUs allow) and
    ``threads`` (torch threads per CPU actor)."""

    address: str | None = None
    actors: int | None = None
    threads: int | None = None
    num_cpus: int | None = None  # for a local Ray started here
    stall_timeout: float = 600.0  # seconds without a finished batch before the job fails


class RayJobStalled(RuntimeError):
    """The Ray job delivered no batch for ``stall_timeout`` seconds (e.g. a node was lost).

    A local Ray that the job started is left running after this (shutting it down under the
    blocked result thread ends the process); it stops with the process, and a rerun in the
    same process reuses it. A ``ray.shutdown()`` of your own may end the process the same way.
    """


class _Encoder:
    """A model actor: loads the model once, then encodes prepared batches."""

    def __init__(self, spec: ModelSpec, threads: int):
        import torch

        torch.set_num_threads(max(1, threads))
        self.model = spec.load()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return encode_batch(self.model, batch)


def run_ray(
    plan: Any, spec: ModelSpec, model: Any, collector: Any, batch_size: int, opts: Any
) -> None:
    """Embed the plan's shards to do on a Ray cluster, feeding ``collector`` on the driver."""
    ray = require("ray", "--engine ray")
    opts = opts or RayOptions()
    started, stalled = _connect(ray, opts), False
    try:
        ds = _dataset(ray, plan)
        gpus = int(ray.cluster_resources().get("GPU", 0))
        cpus = int(ray.cluster_resources().get("CPU", 1))
        actors, threads = _pool_size(gpus, cpus, opts)
        worker_spec = ModelSpec(spec.name, spec.pretrained, "cuda" if gpus else "cpu", spec.precision)
        ds = ds.map_batches(
            prepare_batch,
            fn_kwargs={"preprocess": model.preprocess},
            batch_size=batch_size,
            batch_format="numpy",
            num_cpus=1,
            max_retries=3,
        )
        ds = ds.map_batches(
            _Encoder,
            fn_constructor_kwargs={"spec": worker_spec, "threads": threads},
            batch_size=batch_size,
            batch_format="numpy",
            concurrency=actors,
            num_gpus=1 if gpus else 0,
            num_cpus=0 if gpus else actor_cpus(actors, threads, cpus),
            max_restarts=-1,
            max_task_retries=-1,
        )
        try:
            for batch in _within(ds.iter_batches(batch_size=None, batch_format="numpy"),
                                 opts.stall_timeout,
                                 lambda: _stall_message(ray, collector.written, opts.stall_timeout)):
                collector.add(batch)
        except RayJobStalled:
            stalled = True
            _silence_abandoned_job()
            raise
    finally:
        # Not after a stall: the result thread is still blocked inside Ray, and once Ray is shut
        # down its next call ends the whole process (core_worker: "The process will exit"),
        # a notebook's kernel too, at times before the caller could print the error. Ray then
        # stops with the process; a rerun in the same process reuses it.
        if started and not stalled:
            ray.shutdown()


def _within(batches: Iterator[Any], timeout: float, explain: Any) -> Iterator[Any]:
    """The items of ``batches`` (read in a daemon thread), each within ``timeout`` seconds of
    the last one, else :class:`RayJobStalled` with ``explain()``. Errors pass through."""
    box: queue.Queue = queue.Queue(maxsize=2)  # bounded: Ray Data's backpressure still works

    def pump() -> None:
        try:
            for item in batches:
                box.put((item, None))
            box.put((_DONE, None))
        except BaseException as err:  # handed to the caller's thread, raised there
            box.put((_DONE, err))

    threading.Thread(target=pump, name="clipviz-ray-results", daemon=True).start()
    while True:
        try:
            item, err = box.get(timeout=timeout)
        except queue.Empty:
            raise RayJobStalled(explain()) from None
        if err is not None:
            raise err
        if item is _DONE:
            return
        yield item


def _silence_abandoned_job() -> None:
    """Mute Ray's log once the job is given up: its executor, still blocked in the result
    thread, logs tracebacks when ``ray.shutdown`` pulls the cluster away, and they would bury
    the one-line error that says what to do."""
    for name in ("ray", "ray.data"):  # ray.data sets its own level and does not propagate
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _stall_message(ray: Any, written: int, timeout: float) -> str:
    """Why the job stopped and what to do, with what the cluster has left right now."""
    try:
        alive = sum(1 for node in ray.nodes() if node.get("Alive"))
        free = ray.available_resources()
        left = (f"{alive} node(s) alive, free now: {free.get('CPU', 0):g} CPU, "
                f"{free.get('GPU', 0):g} GPU")
    except Exception as err:  # noqa: BLE001 - the message must come out even so
        left = f"the cluster does not answer ({type(err).__name__})"
    return (
        f"the Ray job delivered no result for {timeout:g} s; {left}. A node or worker was "
        f"probably lost and Ray is waiting for it. {written} shard(s) were written in this "
        "run and are kept: run the same command again to embed the rest (raise the limit "
        "with --stall-timeout if batches are just slow)"
    )


def _connect(ray: Any, opts: RayOptions) -> bool:
    """Join the cluster at ``opts.address`` / ``RAY_ADDRESS``, or start a local Ray.
    Returns True when this call started (and so must stop) Ray."""
    if ray.is_initialized():
        return False
    address = opts.address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict[str, Any] = {"log_to_driver": False}
    if address is None:
        kwargs.update(include_dashboard=False, num_cpus=opts.num_cpus)
    ray.init(address=address, **kwargs)
    ray.data.DataContext.get_current().enable_progress_bars = True
    return True


def _dataset(ray: Any, plan: Any) -> Any:
    """The file list of the shards to do: one Arrow block per shard."""
    pa = require("pyarrow", "--engine ray")
    tables = []
    for k in plan.todo:
        rows = plan.rows(k)
        tables.append(
            pa.table(
                {
                    "row": pa.array(np.arange(rows.start, rows.stop, dtype=np.int64)),
                    "path": pa.array([plan.images.paths[i] for i in rows], pa.string()),
                }
            )
        )
    return ray.data.from_arrow(tables)


def actor_cpus(actors: int, threads: int, cpus: int) -> float:
    """The CPUs each CPU model actor reserves: its threads, but never so many that the actors
    leave no core for the decoding tasks (2 actors on 2 cores waited for one for good)."""
    return min(float(threads), max(cpus - 1, 0) / max(actors, 1))


def _pool_size(gpus: int, cpus: int, opts: RayOptions) -> tuple[int, int]:
    """(actors, torch threads per actor). GPUs: one actor each. CPUs: leave one core for the
    decoding tasks and split the rest so that actors x threads <= cores."""
    if gpus:
        return (opts.actors or gpus), 1
    threads = opts.threads or (1 if cpus <= 4 else 2)
    spare = max(1, cpus - 1)
    actors = opts.actors or max(1, spare // threads)
    return actors, threads
