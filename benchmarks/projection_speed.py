"""Benchmark 4: PCA and UMAP projection times for 1k, 10k and 50k points.

Points are clustered unit vectors (D=512) split 95% images / 5% prompts, fitted jointly as
``clipviz.compute.project`` does. Reported per size: our PCA and sklearn's PCA (the baseline,
same run; best of 3, plus our first call, which includes importing sklearn); UMAP's first call in the process (import plus numba compilation) separately from a
warm call; a disk-cache hit against the fit it replaces; and placing one new prompt with
``Projection.transform``. UMAP runs with seed=0 (reproducible, hence single-threaded).

Run (niced, it is CPU-heavy): nice -n 10 python benchmarks/projection_speed.py \
    [--sizes 1000 10000 50000] [--umap-sizes 1000 10000]
Writes benchmarks/results/projection_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from clipviz.compute import project

DIM = 512


def _points(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((50, DIM)).astype(np.float32)
    x = centres[rng.integers(0, 50, n)] + 0.6 * rng.standard_normal((n, DIM), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    n_txt = max(2, n // 20)
    return x[n_txt:], x[:n_txt]


def _timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _pca_row(img: np.ndarray, txt: np.ndarray, cache: Path) -> dict:
    from sklearn.decomposition import PCA

    first, proj = _timed(lambda: project(img, txt, "pca", cache=False))
    ours = min(_timed(lambda: project(img, txt, "pca", cache=False))[0] for _ in range(3))
    joint = np.vstack([img, txt])
    sk = min(_timed(lambda: PCA(2, random_state=0).fit_transform(joint))[0] for _ in range(3))
    project(img, txt, "pca", cache=cache)
    hit, again = _timed(lambda: project(img, txt, "pca", cache=cache))
    assert again.from_cache and np.array_equal(again.xy, proj.xy)
    return {
        "pca_first_call_s": round(first, 4),
        "pca_s": round(ours, 4),
        "sklearn_pca_s": round(sk, 4),
        "pca_speedup_vs_sklearn": round(sk / ours, 2),
        "pca_cache_hit_s": round(hit, 4),
    }


def _umap_row(img: np.ndarray, txt: np.ndarray, cache: Path, first: bool) -> dict:
    row: dict = {}
    if first:
        row["umap_first_call_s"] = round(_timed(lambda: project(img, txt, cache=False))[0], 2)
    warm, proj = _timed(lambda: project(img, txt, "umap", cache=cache))
    row["umap_warm_s"] = round(warm, 2)
    hit, again = _timed(lambda: project(img, txt, "umap", cache=cache))
    assert again.from_cache and np.array_equal(again.xy, proj.xy)
    row["umap_cache_hit_s"] = round(hit, 4)
    row["umap_cache_speedup"] = round(warm / hit, 1)
    new = txt[:1] + 0.01
    if first:
        row["umap_transform_first_s"] = round(_timed(lambda: proj.transform(new))[0], 2)
    row["umap_transform_warm_s"] = round(_timed(lambda: proj.transform(new))[0], 4)
    return row


def run(sizes: list[int], umap_sizes: list[int], path: Path) -> dict:
    """Run every size, rewriting ``path`` after each one (a killed 50k run keeps the rest)."""
    t0 = time.perf_counter()
    import umap  # noqa: F401  (import cost reported on its own)

    import_s = time.perf_counter() - t0
    rows: list[dict] = []
    result = {
        "benchmark": "projection_speed",
        "umap_import_s": round(import_s, 2),
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count()},
        "complete": False,
        "results": rows,
    }
    with tempfile.TemporaryDirectory() as tmp:
        first = True
        for n in sizes:
            img, txt = _points(n)
            row = {"points": n, "images": len(img), "prompts": len(txt), "dim": DIM}
            row |= _pca_row(img, txt, Path(tmp))
            if n in umap_sizes:
                row |= _umap_row(img, txt, Path(tmp), first)
                first = False
            rows.append(row)
            print(json.dumps(row), flush=True)
            result["load_average_1min"] = round(os.getloadavg()[0], 2)
            path.write_text(json.dumps(result, indent=2) + "\n")
    result["complete"] = True
    path.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 50_000])
    parser.add_argument(
        "--umap-sizes", type=int, nargs="+", default=None, help="sizes to run UMAP on (all)"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "projection_speed.json"
    run(args.sizes, args.umap_sizes if args.umap_sizes is not None else args.sizes, path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
