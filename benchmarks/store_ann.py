"""ANN search over 1M x 512 unit vectors: faiss IVF (clipviz's index) vs exact matmul, and
faiss vs usearch (HNSW) on a subset to choose the library.

Synthetic data: unit vectors around 1,000 centres (real CLIP embeddings cluster; uniform
random vectors in 512-d have no neighbours worth the name), queries are perturbed rows.
Measured on this shared 2-core machine under load: compare ratios within one run.

    python benchmarks/store_ann.py [--n 1000000] [--subset 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).parent / "results" / "store_ann.json"


def clustered(n: int, dim: int, seed: int, path: Path) -> np.memmap:
    """(n, dim) fp16 unit vectors in a memory-mapped file, written 100k rows at a time."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((1000, dim)).astype(np.float32)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(n, dim))
    for s in range(0, n, 100_000):
        m = min(100_000, n - s)
        x = centres[rng.integers(0, 1000, m)] + 0.7 * rng.standard_normal((m, dim), np.float32)
        out[s : s + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    out.flush()
    return out


def queries(x: np.ndarray, m: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q = x[np.sort(rng.integers(0, len(x), m))].astype(np.float32)
    q += 0.3 * rng.standard_normal(q.shape, np.float32) / np.sqrt(q.shape[1])  # |noise| ~ 0.3
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def exact(x: np.ndarray, q: np.ndarray, k: int, chunk: int = 200_000) -> np.ndarray:
    """Exact top-k by chunked matmul (fp32): the ground truth."""
    best_s = np.full((len(q), k), -np.inf, np.float32)
    best_i = np.zeros((len(q), k), np.int64)
    for s in range(0, len(x), chunk):
        block = np.asarray(x[s : s + chunk], np.float32)
        sc = q @ block.T
        idx = np.argpartition(-sc, k - 1, axis=1)[:, :k]
        cand_s = np.concatenate([best_s, np.take_along_axis(sc, idx, 1)], 1)
        cand_i = np.concatenate([best_i, idx + s], 1)
        top = np.argsort(-cand_s, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(cand_s, top, 1), np.take_along_axis(cand_i, top, 1)
    return best_i


def exact_latency_ms(x: np.ndarray, q: np.ndarray) -> float:
    """One query against the whole collection held as fp32 (what exact search does)."""
    x32 = np.asarray(x, np.float32)
    return latency_ms(lambda v: np.argpartition(-(v @ x32.T), 9, axis=1), q, 20)


def recall(approx: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(a[:k]) & set(t)) / k for a, t in zip(approx, truth, strict=True)]))


def latency_ms(fn, q: np.ndarray, reps: int = 50) -> float:
    """Median wall time of one single-vector query."""
    times = []
    for i in range(min(reps, len(q))):
        t = time.perf_counter()
        fn(q[i : i + 1])
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def bench_faiss(x: np.ndarray, q: np.ndarray, truth: np.ndarray, probes: list[int]) -> dict:
    from clipviz.compute.ann import AnnIndex

    t = time.perf_counter()
    index = AnnIndex.build(x)
    build = time.perf_counter() - t
    rows = []
    for p in probes:
        index.nprobe = p
        idx, _ = index.search(q, 10)
        rows.append({"nprobe": p, "recall_at_10": recall(idx, truth),
                     "latency_ms": latency_ms(lambda v: index.search(v, 10), q)})
    return {"library": "faiss IVF,SQfp16", "cells": index.index.nlist, "build_s": build,
            "sweep": rows}


def bench_usearch(x: np.ndarray, q: np.ndarray, truth: np.ndarray) -> dict:
    from usearch.index import Index

    t = time.perf_counter()
    index = Index(ndim=x.shape[1], metric="ip", dtype="f16", connectivity=16)
    index.add(np.arange(len(x)), np.asarray(x, np.float32), threads=2)
    build = time.perf_counter() - t
    rows = []
    for ef in (64, 128):
        index.expansion_search = ef
        got = index.search(q, 10)
        rows.append({"expansion_search": ef, "recall_at_10": recall(got.keys, truth),
                     "latency_ms": latency_ms(lambda v: index.search(v, 10), q)})
    return {"library": "usearch HNSW f16 (M=16)", "build_s": build, "sweep": rows}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--subset", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--tmp", default="/tmp/clipviz_store_ann.npy")
    args = p.parse_args()
    load_start = os.getloadavg()
    t = time.perf_counter()
    x = clustered(args.n, args.dim, 0, Path(args.tmp))
    gen_s = time.perf_counter() - t
    q = queries(x, 200, 1)
    result: dict = {"n": args.n, "dim": args.dim, "queries": len(q), "data": "synthetic "
                    "clustered unit vectors (1000 centres), fp16", "generate_s": gen_s}

    sub = x[: args.subset]
    truth_sub = exact(sub, q, 10)
    result["choice_subset"] = {
        "n": args.subset,
        "faiss": bench_faiss(sub, q, truth_sub, [8, 16, 32]),
        "usearch": bench_usearch(sub, q, truth_sub),
    }

    t = time.perf_counter()
    truth = exact(x, q, 10)
    result["exact_ground_truth_s"] = time.perf_counter() - t
    result["exact_matmul_latency_ms"] = exact_latency_ms(x, q)
    result["faiss_1m"] = bench_faiss(x, q, truth, [16, 32, 64, 128])
    result["loadavg_start"], result["loadavg_end"] = load_start, os.getloadavg()
    result["note"] = "measured on a shared 2-core machine under load (see loadavg)"
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
