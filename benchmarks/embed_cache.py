"""Benchmark 2: a second embedding run over the same images, served by the disk cache.

Target: the second run >= 50x faster than the first (cold cache), with identical vectors.
Both runs are timed in this process, over the same JPEG files (dated an hour back, like an
existing photo folder), into a fresh cache folder. The second run finds unchanged files by
their stat (size, mtime, inode) without reading them, then their vectors by content hash.
``second_run_unseen_files_s`` times a second run that must re-read and re-hash every file
(as a new process would): the cost floor of content addressing.

    python benchmarks/embed_cache.py                 # bundled model, 300 images
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from embed_throughput import make_jpegs  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def timed_embed(model, folder: Path, cache: Path, batch_size: int):
    from clipviz.engine import embed_images

    t = time.perf_counter()
    emb = embed_images(model, folder, batch_size=batch_size, cache=cache, progress=False)
    return emb, time.perf_counter() - t


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="clipviz-shapes")
    ap.add_argument("--pretrained", default=None)
    ap.add_argument("--allow-random", action="store_true")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--jpeg-size", type=int, default=0, help="0: the model's input size")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    import clipviz.models

    model = clipviz.models.load_model(
        args.model, args.pretrained, device=args.device, allow_random=args.allow_random
    )
    size = args.jpeg_size or max(model.image_size)
    with tempfile.TemporaryDirectory(prefix="clipviz-bench-") as tmp:
        folder, cache = Path(tmp) / "images", Path(tmp) / "cache"
        folder.mkdir()
        make_jpegs(folder, args.n, size)
        # warm-up on a separate cache so the first timed run pays no import/JIT costs
        timed_embed(model, folder, Path(tmp) / "warmup-cache", args.batch_size)
        first, t1 = timed_embed(model, folder, cache, args.batch_size)
        second, t2 = timed_embed(model, folder, cache, args.batch_size)
        from clipviz.engine import _filememo

        _filememo.clear()  # forget the stat -> digest memo: every file is read and hashed
        _, t3 = timed_embed(model, folder, cache, args.batch_size)
    identical = bool(np.array_equal(first.vectors, second.vectors)) and first.ids == second.ids
    result = {
        "benchmark": "embed_cache",
        "model": args.model,
        "device": str(model.device),
        "n_images": args.n,
        "jpeg_size": size,
        "batch_size": args.batch_size,
        "cpu_count": os.cpu_count(),
        "load_avg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "first_run_s": round(t1, 4),
        "second_run_s": round(t2, 4),
        "speedup": round(t1 / t2, 1),
        "second_run_unseen_files_s": round(t3, 4),
        "speedup_unseen_files": round(t1 / t3, 1),
        "identical_vectors": identical,
        "target_speedup": 50,
    }
    result["meets_target"] = result["speedup"] >= 50 and identical
    print(json.dumps(result, indent=2))
    name = "embed_cache" + ("" if args.model == "clipviz-shapes" else f"_{args.model}")
    out = Path(args.out) if args.out else RESULTS / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
