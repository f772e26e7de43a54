"""The Ray engine on a real local Ray: same rows and vectors as the local engine, bad files
skipped, and a two-node cluster (both nodes on loopback) that loses a node mid-run and is
finished, duplicate-free, by running the same command again."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray")
pytest.importorskip("pyarrow")

from test_store import (  # noqa: E402
    BAD,
    REPO,
    SPEC,
    clipviz_cli,
    local_store_of,
    make_folder,
    store_rows,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return make_folder(tmp_path_factory.mktemp("ray_images"), 24, seed=2)


@pytest.fixture(scope="module")
def local_store(folder, tmp_path_factory) -> Path:
    return local_store_of(folder, tmp_path_factory.mktemp("ray_ref") / "out", 4)


def test_ray_engine_matches_the_local_engine(folder, local_store, tmp_path):
    import ray

    import clipviz
    from clipviz.engine.store_job import embed_to_store

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        out = tmp_path / "ray"
        result = embed_to_store(folder, out, SPEC, engine="ray", batch_size=4, shard_size=4,
                                progress=False)
    finally:
        ray.shutdown()
    assert (result.count, result.skipped) == (24, len(BAD))
    ids, vectors = store_rows(out)
    ref_ids, ref_vectors = store_rows(local_store)
    assert ids == ref_ids
    np.testing.assert_allclose(vectors, ref_vectors, atol=2e-3)
    emb = clipviz.open_store(out)
    assert sorted(i for i, _ in emb.skipped) == sorted(BAD)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_node(args: list[str], temp_dir: str) -> subprocess.Popen:
    """A Ray node in its own session (``--block``), so the test can kill exactly its processes."""
    cmd = [sys.executable, "-m", "ray.scripts.scripts", "start", "--block", "--num-cpus=2",
           "--disable-usage-stats", f"--temp-dir={temp_dir}", *args]
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(cmd, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _kill_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


@pytest.fixture
def two_nodes():
    """A head node and a worker node on 127.0.0.1; both torn down (only their processes)."""
    temp_dir = tempfile.mkdtemp(prefix="cvray", dir="/tmp")
    port = _free_port()
    head = _ray_node(["--head", f"--port={port}", "--node-ip-address=127.0.0.1",
                      "--include-dashboard=false"], temp_dir)
    address = f"127.0.0.1:{port}"
    worker = None
    try:
        _wait_for_nodes(address, 1, head)
        worker = _ray_node([f"--address={address}", "--node-ip-address=127.0.0.1"], temp_dir)
        _wait_for_nodes(address, 2, worker)
        yield address, worker
    finally:
        for proc in (worker, head):
            if proc is not None:
                _kill_group(proc, signal.SIGTERM)
        for proc in (worker, head):
            if proc is not None:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    _kill_group(proc, signal.SIGKILL)


def _wait_for_nodes(address: str, n: int, node: subprocess.Popen, timeout: float = 180) -> None:
    code = (f"import ray; ray.init(address={address!r}, log_to_driver=False); "
            "print(sum(1 for x in ray.nodes() if x['Alive']))")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if node.poll() is not None:  # e.g. Ray's fixed 30 s start-up limit on a loaded machine
            raise RuntimeError(f"the Ray node for {address} exited with {node.returncode}")
        try:
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 timeout=60)
        except subprocess.TimeoutExpired:
            continue
        if out.returncode == 0 and out.stdout.strip().isdigit() and int(out.stdout) >= n:
            return
        time.sleep(2)
    raise RuntimeError(f"the Ray cluster at {address} did not reach {n} nodes in {timeout} s")


STALL_S = 60  # --stall-timeout of the run whose node is killed


def test_node_killed_mid_run_then_rerun_completes_duplicate_free(
    folder, local_store, tmp_path, two_nodes
):
    address, worker = two_nodes
    out = tmp_path / "store"
    args = ["embed", str(folder), "--store", str(out), "--engine", "ray", "--ray-address",
            address, "--shard-size", "2", "--batch-size", "2", "--actors", "2", "--threads", "1",
            "--no-progress", "--stall-timeout", str(STALL_S)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    run = subprocess.Popen([sys.executable, "-m", "clipviz", *args], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not list(out.glob("shards/part-*.parquet")):
        time.sleep(0.1)
    written = len(list(out.glob("shards/part-*.parquet")))
    _kill_group(worker, signal.SIGKILL)  # the worker node dies mid-run
    try:  # Ray finishes on the head node, or the driver gives up after STALL_S: never a hang
        _, stderr = run.communicate(timeout=STALL_S + 120)
    except subprocess.TimeoutExpired:
        run.kill()
        run.communicate()
        pytest.fail(f"the driver neither finished nor stopped {STALL_S + 120} s after the kill")
    assert run.returncode in (0, 1), stderr
    if run.returncode == 1:  # one clear line, no traceback
        assert "delivered no result" in stderr and "run the same command again" in stderr
        assert "Traceback" not in stderr
    assert 1 <= written < 13  # 13 shards of 2 rows: the node died part-way
    rerun = clipviz_cli(*args)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads((out / "manifest.json").read_text())["complete"]
    ids, vectors = store_rows(out)
    ref_ids, ref_vectors = store_rows(local_store)
    assert ids == ref_ids  # nothing lost, nothing twice
    np.testing.assert_allclose(vectors, ref_vectors, atol=2e-3)


def test_a_job_given_up_on_prints_one_line_and_no_ray_traceback(folder, tmp_path):
    """A 1 s stall limit gives up while the actors still load the model; Ray's executor, left
    in the result thread, used to log tracebacks when the driver shut Ray down (CI, stop 16)."""
    run = clipviz_cli("embed", str(folder), "--store", str(tmp_path / "store"), "--engine",
                      "ray", "--stall-timeout", "1", "--no-progress", "--batch-size", "2",
                      "--shard-size", "2")
    assert run.returncode == 1, run.stderr
    assert "delivered no result for 1 s" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr, run.stderr


def test_a_stalled_result_stream_fails_in_bounded_time_with_a_clear_error():
    """What the driver does when Ray waits for good (e.g. on a lost node's actors): the
    reading thread blocks; the driver gives up after the stall timeout, and says what to do."""
    import threading

    from clipviz.engine.ray_job import RayJobStalled, _within

    never = threading.Event()

    def stalls():
        yield "first"
        never.wait()  # as ds.iter_batches does when no block can ever be produced
        yield "never"

    got, start = [], time.monotonic()
    with pytest.raises(RayJobStalled, match="run the same command again"):
        for item in _within(stalls(), 1.0, lambda: "no result; run the same command again"):
            got.append(item)
    assert got == ["first"] and time.monotonic() - start < 10
    never.set()

    def fails():
        yield 1
        raise ValueError("a decode task failed")

    with pytest.raises(ValueError, match="decode task"):
        list(_within(fails(), 5.0, str))
    assert list(_within(iter(range(5)), 5.0, str)) == [0, 1, 2, 3, 4]


def test_cpu_actors_always_leave_a_core_for_decoding():
    """--actors 2 on 2 cores reserved both for the actors: the decode tasks never ran (the
    job stalled until --stall-timeout). Defaults and roomy clusters keep one CPU per thread."""
    from clipviz.engine.ray_job import actor_cpus

    for actors, threads, cpus in [(2, 1, 2), (1, 1, 2), (4, 2, 4), (3, 1, 16), (1, 1, 1)]:
        each = actor_cpus(actors, threads, cpus)
        assert actors * each <= max(cpus - 1, 0) + 1e-9  # one core left for decoding
        assert each <= threads
    assert actor_cpus(3, 1, 16) == 1.0 and actor_cpus(2, 1, 2) == 0.5
