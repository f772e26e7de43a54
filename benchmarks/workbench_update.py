"""Benchmark: prompt edit -> every Workbench view updated (server side), and bytes on the wire.

For 1k, 10k and 100k images (synthetic unit vectors clustered around the bundled model's own
text vectors, 20 classes), one prompt is replaced by a text never seen before and the time until
``wb.prompts = ...`` returns is measured: the new text encoded by the real bundled model,
zero-shot, metrics, grid page, map labels and prompt markers, heatmap, metrics panel, with every
widget's comm message serialised (no browser attached). Targets: < 100 ms, 300 ms, 1.5 s.

Baseline, same run: the naive recompute a script would do per edit with clipviz's functions
(encode all prompt texts again, zero_shot, evaluate, refit the joint PCA map).

Bytes: what each widget sends for one prompt edit, and what the map sends when all 100k points
move (a new projection: UMAP replacing PCA, or the modality-gap toggle); target < 12 bytes per
point. Counted with ``clipviz.views._plotting.record_messages`` (JSON part + binary buffers of
every comm message, as ipywidgets hands them to the kernel).

Run: ``nice -n 10 python benchmarks/workbench_update.py [--sizes 1000 10000 100000]``.
Writes benchmarks/results/workbench_update.json. The map uses PCA here (a 100k UMAP fit takes
minutes on a laptop CPU); with UMAP a prompt edit costs one ``reducer.transform`` of C points.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import platform
import statistics
import time
import warnings
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TARGETS_S = {1_000: 0.100, 10_000: 0.300, 100_000: 1.5}
N_CLASSES = 20
REPEATS = 5
COMPUTE_STAGES = ("encode", "zero_shot", "metrics", "place_prompts")  # the rest is views
RESULTS = pathlib.Path(__file__).parent / "results" / "workbench_update.json"


def classnames() -> list[str]:
    from clipviz.datasets.shapes import COLOURS, SHAPES

    return [f"{c} {s}" for s in SHAPES for c in COLOURS][:N_CLASSES]


def synthetic(model: Any, n: int, seed: int = 0) -> Any:
    """n unit vectors around the class text vectors, with true labels."""
    from clipviz.compute.types import ImageEmbeddings

    names = classnames()
    centres = model.encode_texts([f"a photo of a {c}." for c in names])
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(names), n)
    vectors = centres[labels] + rng.normal(
        0, 0.6 / np.sqrt(centres.shape[1]), (n, centres.shape[1])
    )
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    return ImageEmbeddings(
        ids=[f"img{i:06d}" for i in range(n)],
        vectors=vectors,
        model=model.info,
        labels=[names[i] for i in labels],
    )


@contextlib.contextmanager
def recording(widgets: dict[str, Any]):
    """Record the comm messages of several widgets at once: {name: [(json, binary), ...]}."""
    from clipviz.views._plotting import record_messages

    with contextlib.ExitStack() as stack:
        yield {name: stack.enter_context(record_messages(w)) for name, w in widgets.items()}


def naive_update(model: Any, emb: Any, prompts: list[str]) -> None:
    """What a script would do per edit: everything from scratch, no caches."""
    from clipviz.compute import evaluate, project, zero_shot
    from clipviz.compute.types import PromptEmbeddings

    vectors = model.encode_texts([f"a photo of a {p}." for p in prompts])
    pe = PromptEmbeddings(prompts, ["a photo of a {}."], vectors, model.info)
    pred = zero_shot(emb, pe, k=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # same notes as in the workbench; not timed there either
        evaluate(pred)
    project(emb.vectors, pe.vectors, method="pca", cache=False)


def bench_size(model: Any, n: int) -> dict[str, Any]:
    from clipviz.app import Workbench

    emb = synthetic(model, n)
    start = time.perf_counter()
    wb = Workbench(emb, model=model, projection="pca", cache=False, k=5)
    _ = wb.widget  # build every widget: updates now serialise comm messages too
    build_s = time.perf_counter() - start
    widgets = {
        "grid": wb.views["grid"].widget,
        "map": wb.views["map"].figure,
        "heatmap": wb.views["heatmap"].figure,
    }
    times, naive, sent_per_edit, stages = [], [], [], []
    base = list(wb.prompts)
    for r in range(REPEATS):
        new = [*base, f"a {r}th kind of shape"]  # one prompt added, a text never encoded before
        encodes = wb.text_encodes
        with recording(widgets) as sent:
            t0 = time.perf_counter()
            wb.prompts = new
            times.append(time.perf_counter() - t0)
        if wb.text_encodes != encodes + 1 or wb.errors:
            raise RuntimeError(f"unexpected work in the update: {wb.errors}")
        sent_per_edit.append({k: sum(a + b for a, b in v) for k, v in sent.items()})
        stages.append(dict(wb.timings))
        t0 = time.perf_counter()
        naive_update(model, wb.embeddings, new)
        naive.append(time.perf_counter() - t0)
    # A full position update of the map (new projection): all N points move.
    proj = wb.projection
    with recording({"map": widgets["map"]}) as sent:
        wb.views["map"].set_points(
            proj.image_xy[::-1].copy(),
            wb.ids,
            wb.predictions.predicted,
            proj.transform(wb.prompt_embeddings.vectors),
            wb.prompts,
        )
    move_bytes = sum(a + b for a, b in sent["map"])
    med = statistics.median(times)
    compute = sum(statistics.median(s[k] for s in stages) for k in COMPUTE_STAGES)
    result = {
        "images": n,
        "prompts": len(base),
        "build_s": round(build_s, 3),
        "prompt_edit_ms_median": round(1000 * med, 1),
        "prompt_edit_ms_all": [round(1000 * x, 1) for x in times],
        "target_ms": 1000 * TARGETS_S[n] if n in TARGETS_S else None,
        "meets_target": bool(med < TARGETS_S[n]) if n in TARGETS_S else None,
        "stages_ms_median": {
            k: round(1000 * statistics.median(s[k] for s in stages), 1) for k in stages[0]
        },
        "naive_recompute_ms_median": round(1000 * statistics.median(naive), 1),
        # Whole update (views included) vs the naive compute alone, and compute vs compute.
        "speedup_vs_naive": round(statistics.median(naive) / med, 2),
        "compute_ms_median": round(1000 * compute, 1),
        "compute_speedup_vs_naive": round(statistics.median(naive) / compute, 2),
        "bytes_per_prompt_edit": sent_per_edit[-1],
        "map_bytes_all_points_move": move_bytes,
        "map_bytes_per_point_all_move": round(move_bytes / n, 2),
        "map_bytes_per_point_prompt_edit": round(sent_per_edit[-1]["map"] / n, 2),
    }
    print(
        f"{n:>7} images: prompt edit {result['prompt_edit_ms_median']:8.1f} ms "
        f"(target {result['target_ms']} ms; its compute {result['compute_ms_median']} ms vs naive "
        f"{result['naive_recompute_ms_median']} ms, x{result['compute_speedup_vs_naive']}); map sends {result['map_bytes_per_point_all_move']} B/point "
        f"when all points move, {result['map_bytes_per_point_prompt_edit']} B/point per edit; "
        f"per edit: {sent_per_edit[-1]}\n    stages (ms): {result['stages_ms_median']}"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch and BLAS threads (default: library defaults). On a machine shared with "
        "other busy processes, 1 avoids oversubscribed spin-waiting that inflates timings.",
    )
    args = parser.parse_args()
    if args.threads:
        import threadpoolctl
        import torch

        torch.set_num_threads(args.threads)
        threadpoolctl.threadpool_limits(args.threads)
    from clipviz.models import load_model

    model = load_model("clipviz-shapes", device="cpu")
    results = [bench_size(model, n) for n in args.sizes]
    out = {
        "benchmark": "workbench_update",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "model": model.info.name,
        "projection": "pca",
        "threads": args.threads,
        "load_average": os.getloadavg(),
        "results": results,
        "bytes_target_per_point": 12,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
