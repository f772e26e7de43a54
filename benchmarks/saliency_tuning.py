"""Tuning record for ``layercam-fused`` (ResNet: flipped views, coarse-stage weight, smoothing)
and ``chefer-rollout`` (ViT, ``--tower vit``: flipped views, rollout weight).

Runs on tuning seeds only (default 555 and 556; never the benchmark's 777), true-shape prompt,
pointing game and mass-in-mask / mask area as in ``saliency_quality.py``. Each view's per-stage
maps come from the method's own ``stage_maps``; the grid over views, weight and sigma is then
fused with its own ``fuse_stages``, so every cell is exactly what the method would return. The
ViT grid likewise uses ``attention_relevancy.view_maps`` and ``fuse`` (weight 0: Chefer et al.'s
relevancy alone; ``rollout`` rows: attention rollout alone).

Run: python benchmarks/saliency_tuning.py [--n 500] [--seeds 555 556] [--tower vit]
    [--model clipviz-shapes-vit or local-dir:/path]
Writes benchmarks/results/saliency_tuning.json (ViT: saliency_tuning_vit.json).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

import clipviz
from clipviz.compute.saliency_metrics import mask_mass_ratio, pointing_hits
from clipviz.datasets import shapes
from clipviz.models.saliency import _targets
from clipviz.models.saliency._tower import pixels_for
from clipviz.models.saliency.layercam_fused import _stages, fuse_stages, stage_maps

BENCHMARK_SEED = 777
VIEWS = {
    "original": ((),),
    "+left-right": ((), (-1,)),
    "+left-right+upside-down": ((), (-1,), (-2,)),
}
WEIGHTS = (0.0, 0.5, 1.0)  # 0: the finer stage alone
SIGMAS = (0.25, 0.5, 0.75, 1.0)  # cells of the finer stage
VIT_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0)  # rollout's exponent; 0: chefer alone


def per_view_maps(model, seed: int, n: int, batch: int = 50):
    """{flip: (n, L, S, S)} per-stage maps of each single view, plus boxes and masks."""
    import torch

    data = shapes(n, seed=seed)
    prompts = [[f"a photo of a {s}."] for s in data.labels["shape"]]
    views: dict[tuple[int, ...], list[np.ndarray]] = {f: [] for f in VIEWS[max(VIEWS, key=len)]}
    for a in range(0, n, batch):
        pixels = pixels_for(model, data.images[a : a + batch])
        targets = torch.stack(_targets(model, prompts[a : a + batch]))
        with torch.enable_grad():
            for f in views:
                views[f].append(stage_maps(model, pixels, targets, flips=(f,))[:, 0])
        print(f"  seed {seed}: {min(a + batch, n)}/{n}", flush=True)
    boxes = [g.box() for g in data.geometry]
    masks = np.stack([g.mask() for g in data.geometry])
    return {f: np.concatenate(v) for f, v in views.items()}, boxes, masks


def grid(model, seed: int, n: int) -> list[dict]:
    maps, boxes, masks = per_view_maps(model, seed, n)
    size = masks.shape[-1]
    _, cells = _stages(model.torch_model.visual, size)
    rows = []
    for name, flips in VIEWS.items():
        stages = np.mean([maps[f] for f in flips], axis=0)
        for w in WEIGHTS:
            for s in SIGMAS:
                fused = fuse_stages(stages, w, s * size / cells)
                cell = {"seed": seed, "views": name, "coarse_weight": w, "sigma_cells": s}
                rows.append(_row(cell, fused, boxes, masks))
    return rows


def _row(cell: dict, maps: np.ndarray, boxes, masks) -> dict:
    """One grid cell's scores (printed as they come)."""
    row = {
        **cell,
        "pointing": float(pointing_hits(maps, boxes).mean()),
        "mass_ratio": float(mask_mass_ratio(maps, masks).mean()),
    }
    print(row, flush=True)
    return row


def vit_views() -> dict:
    """{name: (views for chefer, views for rollout)}."""
    from clipviz.models.saliency.attention_relevancy import VIEWS as SHIFTS
    from clipviz.models.saliency.attention_relevancy import View

    one, lr = (View(),), View(flip=(-1,))
    return {
        "original": (one, one),
        "+left-right": ((*one, lr), (*one, lr)),
        "half-patch shifts": (SHIFTS, SHIFTS),
        "half-patch shifts+left-right": ((*SHIFTS, lr), (*SHIFTS, lr)),
        "chefer original, rollout half-patch shifts": (one, SHIFTS),
    }


def vit_grid(model, seed: int, n: int, batch: int = 50) -> list[dict]:
    """Per-view chefer and rollout maps of ``chefer-rollout``, fused over views and weights."""
    import torch

    from clipviz.models.saliency.attention_relevancy import _numpy, fuse, view_maps

    data = shapes(n, seed=seed)
    prompts = [[f"a photo of a {s}."] for s in data.labels["shape"]]
    grids = vit_views()
    singles = list(dict.fromkeys(v for pair in grids.values() for vs in pair for v in vs))
    rel: dict = {v: [] for v in singles}
    roll: dict = {v: [] for v in singles}
    for a in range(0, n, batch):
        pixels = pixels_for(model, data.images[a : a + batch])
        targets = torch.stack(_targets(model, prompts[a : a + batch]))
        with torch.enable_grad():
            for v in singles:
                r, o = view_maps(model, pixels, targets, views=(v,))
                rel[v].append(r)
                roll[v].append(o)
        print(f"  seed {seed}: {min(a + batch, n)}/{n}", flush=True)
    boxes = [g.box() for g in data.geometry]
    masks = np.stack([g.mask() for g in data.geometry])
    rows = []
    for name, (rel_views, roll_views) in grids.items():
        r = torch.stack([torch.cat(rel[v]) for v in rel_views]).mean(0)
        o = torch.stack([torch.cat(roll[v]) for v in roll_views]).mean(0)
        cells = {f"chefer x rollout^{w:g}": fuse(r, o, w) for w in VIT_WEIGHTS}
        cells["rollout"] = o
        for cell, maps in cells.items():
            rows.append(
                _row({"seed": seed, "views": name, "map": cell}, _numpy(maps)[:, 0], boxes, masks)
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--seeds", type=int, nargs="+", default=[555, 556])
    parser.add_argument("--tower", choices=["resnet", "vit"], default="resnet")
    parser.add_argument("--model", help="default: clipviz-shapes (resnet), clipviz-shapes-vit")
    parser.add_argument("--out", help="default: results/saliency_tuning[_vit].json")
    args = parser.parse_args(argv)
    if BENCHMARK_SEED in args.seeds:
        parser.error(f"seed {BENCHMARK_SEED} is the benchmark's; tune on other seeds")
    vit = args.tower == "vit"
    name = args.model or ("clipviz-shapes-vit" if vit else "clipviz-shapes")
    out = args.out or str(
        Path(__file__).parent / "results" / f"saliency_tuning{'_vit' if vit else ''}.json"
    )
    load_before = os.getloadavg()
    model = clipviz.load_model(name, device="cpu")
    tune = vit_grid if vit else grid
    rows = [r for seed in args.seeds for r in tune(model, seed, args.n)]
    result = {
        "model": name,
        "n_images_per_seed": args.n,
        "seeds": args.seeds,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "rows": rows,
    }
    Path(out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
