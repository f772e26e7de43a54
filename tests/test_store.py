"""The embedding store with the local engine: layout, resumption after a kill, open_store
(clipviz and clip-retrieval layouts), the search index. Real model, real files, no mocks."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyarrow")

from clipviz.engine.store_rows import ModelSpec  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SPEC = ModelSpec("clipviz-shapes", None, "cpu", "fp32")
BAD = {"circle/bad.png": b"not an image at all", "star/empty.jpg": b""}


def make_folder(root: Path, n: int, seed: int = 1) -> Path:
    """``n`` shape PNGs in one sub-folder per label, plus the two broken files of ``BAD``."""
    from clipviz.datasets import shapes

    data = shapes(n, seed=seed).to_imageset(label="shape")
    for i in range(len(data)):
        path = root / data.labels[i] / f"img_{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        data.load(i).save(path)
    for rel, raw in BAD.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(raw)
    return root


def clipviz_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "clipviz", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def store_rows(store: Path) -> tuple[list[str], np.ndarray]:
    """Every row of a store as DuckDB reads it: (ids, vectors in fp32), ordered by id."""
    import duckdb

    rows = duckdb.sql(f"select id, vector from '{store}/shards/*.parquet' order by id").fetchall()
    return [r[0] for r in rows], np.array([r[1] for r in rows], np.float32)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return make_folder(tmp_path_factory.mktemp("store_images"), 30)


def local_store_of(folder: Path, out: Path, size: int) -> Path:
    """The reference store: the local engine, ``size`` rows per batch and per shard."""
    from clipviz.engine.store_job import embed_to_store

    embed_to_store(folder, out, SPEC, batch_size=size, shard_size=size, progress=False)
    return out


@pytest.fixture(scope="module")
def local_store(folder, tmp_path_factory) -> Path:
    return local_store_of(folder, tmp_path_factory.mktemp("store") / "out", 8)


def test_store_rows_match_imageset_ids_and_embed_images(folder, local_store, shapes_model):
    import clipviz

    images = clipviz.ImageSet.from_folder(folder)
    reference = clipviz.embed_images(shapes_model, images, cache=False, progress=False)
    emb = clipviz.open_store(local_store)
    assert emb.ids == reference.ids  # same ids, same order, the same files skipped
    assert sorted(i for i, _ in emb.skipped) == sorted(BAD)
    assert emb.labels == reference.labels
    assert emb.vectors.dtype == np.float16
    np.testing.assert_allclose(emb.vectors, reference.vectors, atol=2e-3)
    ids, vectors = store_rows(local_store)  # what any Arrow tool sees
    assert ids == sorted(reference.ids) and len(set(ids)) == len(ids)
    manifest = json.loads((local_store / "manifest.json").read_text())
    assert manifest["count"] == 30 and manifest["skipped"] == 2 and manifest["complete"]
    assert manifest["model_key"] == shapes_model.info.key and manifest["dim"] == 128


def test_open_store_memory_maps_the_vectors(local_store):
    import clipviz

    emb = clipviz.open_store(local_store)
    assert isinstance(emb.vectors, np.memmap) and not emb.vectors.flags.writeable
    assert emb.paths[0] == os.path.join(json.loads((local_store / "manifest.json").read_text())
                                        ["root"], emb.ids[0])


def test_vectors_file_is_rewritten_when_deleted(local_store, tmp_path):
    import shutil

    import clipviz

    copy = tmp_path / "copy"
    shutil.copytree(local_store, copy)
    before = np.array(clipviz.open_store(copy).vectors)
    (copy / "vectors.npy").unlink()
    np.testing.assert_array_equal(clipviz.open_store(copy).vectors, before)


def synthetic_store(root: Path, n: int, dim: int, shard: int, bad_row: int | None = None) -> Path:
    """A complete store of random unit vectors through the store's own writer (no model);
    ``bad_row`` gets NaN instead."""
    from clipviz.engine.store_format import Manifest, ShardRows, StoreLayout, shard_digest
    from clipviz.engine.store_job import _finish

    layout, rng = StoreLayout(root), np.random.default_rng(0)
    shards = -(-n // shard)
    manifest = Manifest("0" * 64, "synthetic", 100.0, dim, "fp32", "float16", shard, shards,
                        str(root), n)
    layout.write_manifest(manifest)
    for k in range(shards):
        ids = [f"c{i % 3}/img_{i:06d}.png" for i in range(k * shard, min(n, (k + 1) * shard))]
        v = rng.standard_normal((len(ids), dim)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        if bad_row is not None and k * shard <= bad_row < (k + 1) * shard:
            v[bad_row - k * shard] = np.nan
        rows = ShardRows(ids, [i[:2] for i in ids], ["0" * 64] * len(ids), v, [])
        layout.write_shard(k, shard_digest(ids, "float16"), manifest.model_key, rows, "float16")
    _finish(layout, manifest)
    return root


def _resident_bytes(path: Path) -> int:
    """Resident bytes of this process's memory maps of ``path`` (Linux /proc/self/smaps)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if line[:1].isdigit() or line[:1] in "abcdef":  # a mapping's header line
            inside = line.rstrip().endswith(str(path))
        elif inside and line.startswith("Rss:"):
            total += int(line.split()[1]) * 1024
    return total


@pytest.mark.skipif(not Path("/proc/self/smaps").is_file(), reason="needs Linux /proc")
def test_open_store_reads_no_vector_page(tmp_path):
    """Opening maps vectors.npy without touching it (rows were checked when it was written):
    at 1M x 512 a full pass over the rows costs seconds and the file's size in RSS."""
    import clipviz

    store = synthetic_store(tmp_path / "s", 8192, 512, 2048)  # 8 MiB of fp16 vectors
    emb = clipviz.open_store(store)
    assert _resident_bytes(store / "vectors.npy") < 1 << 20
    assert isinstance(emb.vectors, np.memmap) and emb.rows_checked
    assert abs(float(np.linalg.norm(emb.vectors[5].astype(np.float32))) - 1) < 1e-3
    bad = np.array(emb.vectors[:2])  # a copy, not the checked map: checked as any other
    bad[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        dataclasses.replace(emb, ids=emb.ids[:2], vectors=bad)


def test_a_nan_vector_in_a_shard_is_refused_when_the_vectors_file_is_written(tmp_path):
    with pytest.raises(ValueError, match=r"shard 1 of .*NaN, infinite or all zero"):
        synthetic_store(tmp_path / "s", 64, 16, 16, bad_row=20)


def test_rerun_keeps_valid_shards_and_redoes_a_truncated_one(folder, local_store, tmp_path):
    import shutil

    from clipviz.engine.store_job import embed_to_store

    copy = tmp_path / "copy"
    shutil.copytree(local_store, copy)
    shard = copy / "shards" / "part-00001.parquet"
    shard.write_bytes(shard.read_bytes()[:100])  # as if a foreign tool cut it short
    result = embed_to_store(folder, copy, SPEC, batch_size=8, shard_size=8, progress=False)
    assert (result.embedded_shards, result.kept_shards) == (1, 3)
    assert store_rows(copy)[0] == store_rows(local_store)[0]


def test_sigkill_mid_run_then_rerun_is_complete_without_duplicates(folder, local_store, tmp_path):
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    args = [sys.executable, "-m", "clipviz", "embed", str(folder), "--store", str(out),
            "--shard-size", "4", "--batch-size", "2", "--no-progress"]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(out.glob("shards/part-*.parquet"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list(out.glob("shards/part-*.parquet")))
    assert 2 <= done_before < 8  # killed part-way (8 shards of 4 rows)
    assert not json.loads((out / "manifest.json").read_text())["complete"]
    rerun = clipviz_cli(*args[3:])
    assert rerun.returncode == 0, rerun.stderr
    assert f"kept from before: {done_before}" in rerun.stdout
    ids, vectors = store_rows(out)
    ref_ids, ref_vectors = store_rows(local_store)
    assert ids == ref_ids  # no row lost, none twice
    np.testing.assert_allclose(vectors, ref_vectors, atol=2e-3)


def test_cli_store_errors_are_one_line(folder, tmp_path):
    r = clipviz_cli("embed", "--sample", "shapes", "--store", str(tmp_path / "x"))
    assert r.returncode == 2 and "needs a FOLDER" in r.stderr
    r = clipviz_cli("index", str(tmp_path / "nothing"))
    assert r.returncode == 2 and "not an embedding store" in r.stderr


def test_open_store_reads_clip_retrieval_output(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    import clipviz

    rng = np.random.default_rng(0)
    # clip-retrieval writes L2-normalised fp16 embeddings
    raw = [rng.standard_normal((n, 16)) for n in (5, 3)]
    parts = [(r / np.linalg.norm(r, axis=1, keepdims=True)).astype(np.float16) for r in raw]
    (tmp_path / "img_emb").mkdir()
    (tmp_path / "metadata").mkdir()
    names = [[f"/data/imgs/cat/{i}.jpg" for i in range(5)], [f"/data/imgs/dog/{i}.jpg" for i in range(3)]]
    for n, (vecs, paths) in enumerate(zip(parts, names, strict=True)):
        np.save(tmp_path / "img_emb" / f"img_emb_{n}.npy", vecs)
        table = pa.table({"image_path": paths, "caption": ["a photo"] * len(paths)})
        pq.write_table(table, tmp_path / "metadata" / f"metadata_{n}.parquet")
    emb = clipviz.open_store(tmp_path, images_root="/data/imgs")
    assert emb.ids[:2] == ["cat/0.jpg", "cat/1.jpg"] and emb.ids[-1] == "dog/2.jpg"
    np.testing.assert_array_equal(emb.vectors, np.concatenate(parts))
    assert emb.model.dim == 16
    (tmp_path / "metadata" / "metadata_1.parquet").unlink()
    with pytest.raises(ValueError, match=r"parts \[1\]"):
        clipviz.open_store(tmp_path)


def clustered(n: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around 50 centres (embeddings cluster); queries are perturbed rows."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((50, dim)).astype(np.float32)
    x = centres[rng.integers(0, 50, n)] + 0.6 * rng.standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[rng.integers(0, n, 50)] + 0.3 * rng.standard_normal((50, dim)).astype(np.float32)
    return x, q / np.linalg.norm(q, axis=1, keepdims=True)


def test_ann_recall_at_10_against_exact_search():
    pytest.importorskip("faiss")
    from clipviz.compute import nearest
    from clipviz.compute.ann import AnnIndex

    x, q = clustered(20_000, 64, seed=0)
    exact, _ = nearest(x, q, k=10)
    index = AnnIndex.build(x.astype(np.float16))
    approx, scores = index.search(q, 10)
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact, strict=True)])
    assert recall >= 0.9, recall
    assert np.all(np.diff(scores, axis=1) <= 1e-6)  # best first


def test_index_cli_and_search_use_the_index_above_the_threshold(local_store, shapes_model,
                                                                  monkeypatch):
    pytest.importorskip("faiss")
    import clipviz
    from clipviz.compute import ann

    r = clipviz_cli("index", str(local_store), "--cells", "2")
    assert r.returncode == 0, r.stderr
    emb = clipviz.open_store(local_store)
    assert emb.ann_index is not None and emb.ann_index.count == len(emb)
    exact = clipviz.search(emb, "a red circle", model=shapes_model, k=5)
    monkeypatch.setattr(ann, "ANN_MIN_ROWS", 10)
    emb.ann_index.nprobe = 2  # every cell: the index must give the exact answer
    approx = clipviz.search(emb, "a red circle", model=shapes_model, k=5)
    assert approx["id"].tolist() == exact["id"].tolist()
    by_id = clipviz.search(emb, emb.ids[3], k=4)
    assert emb.ids[3] not in by_id["id"].tolist() and len(by_id) == 4


def test_workbench_opens_a_store_with_its_images_folder(folder, local_store, shapes_model):
    import clipviz

    emb = clipviz.open_store(local_store)
    wb = clipviz.Workbench(str(folder), embeddings=emb, model=shapes_model,
                           classnames=["circle", "square", "star"])
    assert list(wb.ids) == emb.ids
    assert wb.search("a circle", k=3)["id"].tolist()[0] in emb.ids


def test_import_clipviz_does_not_import_the_distributed_extra():
    code = ("import sys, clipviz; clipviz.open_store; "
            "print(sorted(m for m in ('ray', 'faiss', 'pyarrow', 'torch') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
