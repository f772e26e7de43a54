"""Store engines on one machine: the Ray engine against the local engine on the same images,
per-worker throughput with N CPU actors, and a 100M-image cluster estimate from per-worker
figures measured here.

What scales: the Ray engine runs decode tasks and N model actors anywhere in a cluster, so its
throughput grows with workers; on this 2-core machine it only adds Ray's overhead (object
store transfers, task scheduling) to the same two cores, so expect <= 1x of the local engine.
Measured on a shared 2-core machine under load (loadavg in the JSON).

    python benchmarks/store_engine.py [--n 384]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).parent / "results" / "store_engine.json"
CLIP_RETRIEVAL_IMG_S = {"RTX 3080": 1500, "A100": 2500}  # its README, not measured here


def make_folder(root: Path, n: int) -> Path:
    from clipviz.datasets import shapes

    data = shapes(n, seed=5).to_imageset(label="shape")
    for i in range(len(data)):
        path = root / data.labels[i] / f"img_{i:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        data.load(i).save(path)
    return root


def timed_store(folder: Path, engine: str, **kw) -> float:
    from clipviz.engine.store_job import embed_to_store
    from clipviz.engine.store_rows import ModelSpec

    out = Path(tempfile.mkdtemp(prefix="cvbench"))
    spec = ModelSpec("clipviz-shapes", None, "cpu", "fp32")
    t = time.perf_counter()
    embed_to_store(folder, out, spec, engine=engine, batch_size=32, shard_size=128,
                   progress=False, **kw)
    s = time.perf_counter() - t
    shutil.rmtree(out)
    return s


def vit_b32_worker_img_s(batches: int = 3, batch: int = 16) -> dict:
    """One CPU worker (1 torch thread) running ViT-B-32 (random weights: same cost as trained)
    on preprocessed 224 px batches, and the decode + preprocess cost of a 256 px JPEG."""
    import io

    import torch
    from PIL import Image

    from clipviz.models import load_model

    torch.set_num_threads(1)
    model = load_model("ViT-B-32", allow_random=True, device="cpu")
    x = torch.randn(batch, 3, 224, 224)
    model.encode_images(x)  # warm-up
    t = time.perf_counter()
    for _ in range(batches):
        model.encode_images(x)
    encode = batches * batch / (time.perf_counter() - t)
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (256, 256, 3), np.uint8)).save(
        buf, "JPEG")
    raw = buf.getvalue()
    t = time.perf_counter()
    for _ in range(50):
        model.preprocess(Image.open(io.BytesIO(raw)).convert("RGB"))
    decode = 50 / (time.perf_counter() - t)
    return {"encode_img_s_per_core": encode, "decode_preprocess_img_s_per_core": decode}


def cluster_100m(per_core: dict, bytes_per_row: float) -> dict:
    """Workers and hours for 100M images, from the per-core figures measured above."""
    n = 100_000_000
    # one CPU worker = 1 core encoding + the cores its decoding needs
    cores_per_img_s = 1 / per_core["encode_img_s_per_core"] + 1 / per_core[
        "decode_preprocess_img_s_per_core"]
    cpu_img_s_per_core = 1 / cores_per_img_s
    out = {"images": n, "cpu_img_s_per_core_end_to_end": cpu_img_s_per_core}
    for cores in (512, 2048):
        out[f"cpu_{cores}_cores_hours"] = n / (cpu_img_s_per_core * cores) / 3600
    for gpu, img_s in CLIP_RETRIEVAL_IMG_S.items():
        decode_cores = img_s / per_core["decode_preprocess_img_s_per_core"]
        out[f"{gpu}_x8_hours"] = n / (8 * img_s) / 3600
        out[f"{gpu}_decode_cores_per_gpu"] = decode_cores
    out["store_gb"] = n * bytes_per_row / 1e9
    out["store_gb_note"] = "Parquet shards + vectors.npy at the bytes/row measured by store_open"
    return out


def _start_ray(ray, result: dict, attempts: int = 3) -> None:
    """ray.init, tried a few times: Ray gives a node a fixed 30 s to start, which a loaded
    2-core machine can miss (the failures are recorded in the JSON)."""
    failures = []
    for _ in range(attempts):
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            break
        except Exception as err:  # noqa: BLE001 - Ray raises a bare Exception on a timeout
            failures.append(f"{type(err).__name__}: {err}")
            ray.shutdown()
    result["ray_init_failures"] = failures
    if len(failures) == attempts:
        raise RuntimeError(f"ray.init failed {attempts} times: {failures[-1]}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=384)
    args = p.parse_args()
    load_start = os.getloadavg()
    folder = make_folder(Path(tempfile.mkdtemp(prefix="cvimgs")), args.n)
    result: dict = {"images": args.n, "model": "clipviz-shapes (64 px)"}
    local_s = timed_store(folder, "local")
    result["local_img_s"] = args.n / local_s
    try:
        import ray

        t = time.perf_counter()
        _start_ray(ray, result)
        result["ray_init_s"] = time.perf_counter() - t
        from clipviz.engine.ray_job import RayOptions

        for actors in (1, 2):
            s = timed_store(folder, "ray", ray_options=RayOptions(actors=actors, threads=1))
            result[f"ray_{actors}_actors_img_s"] = args.n / s
            result[f"ray_{actors}_actors_per_worker_img_s"] = args.n / s / actors
            result[f"ray_{actors}_actors_over_local"] = local_s / s
        ray.shutdown()
    except Exception as err:  # noqa: BLE001 - a benchmark reports why Ray could not run here
        result["ray_error"] = f"{type(err).__name__}: {err}"
    result["vit_b32_per_core"] = vit_b32_worker_img_s()
    opened = OUT.parent / "store_open.json"
    bytes_per_row = 2 * 512 * 2 + 120  # fp16 vectors twice (shards + vectors.npy) + metadata
    if opened.is_file():
        o = json.loads(opened.read_text())
        bytes_per_row = (o["parquet_shards_gb"] + o["vectors_npy_gb"]) * 1e9 / o["n"]
    result["bytes_per_row"] = bytes_per_row
    result["cluster_100m"] = cluster_100m(result["vit_b32_per_core"], bytes_per_row)
    result["loadavg_start"], result["loadavg_end"] = load_start, os.getloadavg()
    result["note"] = "measured on a shared 2-core machine under load (see loadavg)"
    shutil.rmtree(folder)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
