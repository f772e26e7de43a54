"""``python -m clipviz.train --out DIR --steps N --seed S``: train, export, evaluate."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# Before torch loads OpenMP: passive waiting keeps 2 threads fast when other processes share the
# cores (measured: 1.3 s/step instead of 3.3 s/step with the default spin-waiting).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from clipviz.train.config import TrainConfig


def _parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="python -m clipviz.train",
        description="Train a bundled clipviz-shapes CLIP on synthetic shapes (CPU).",
    )
    p.add_argument("--out", required=True, help="run folder (checkpoint, logs, exported model)")
    p.add_argument(
        "--steps", type=int, default=d.steps, help=f"optimiser steps (default {d.steps})"
    )
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--minutes", type=float, default=None, help="stop early after this wall time")
    p.add_argument(
        "--stop-after",
        type=int,
        default=None,
        help="stop early once this many steps are done (the schedule stays that of --steps): "
        "reproduces a run that --minutes stopped at that step",
    )
    p.add_argument("--pairs", type=int, default=d.n_pairs, help="pre-generated training pairs")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--shape-only", type=float, default=d.shape_only_frac)
    p.add_argument("--colour-only", type=float, default=d.colour_only_frac)
    p.add_argument(
        "--variety",
        type=float,
        default=d.variety_frac,
        help="share of pairs from the varied renderer (clipviz.train.variety), 0 to 1",
    )
    p.add_argument(
        "--arch",
        choices=["resnet", "vit"],
        default=d.arch,
        help="resnet: clipviz-shapes, contrastive from scratch; vit: clipviz-shapes-vit, an image "
        "tower distilled from --teacher beside the teacher's frozen text tower",
    )
    p.add_argument(
        "--teacher",
        default=d.teacher,
        help=f"vit only: bundled model name or exported folder (default {d.teacher})",
    )
    p.add_argument(
        "--distill",
        type=float,
        default=d.distill_weight,
        help="vit only: weight of the cosine loss to the teacher's image embeddings",
    )
    p.add_argument(
        "--distill-varied",
        action="store_true",
        help="vit only: distil on the varied pairs too (default: plain renderer's pairs only)",
    )
    p.add_argument(
        "--label-loss",
        type=float,
        default=d.label_weight,
        help="vit only: weight of classifying each image's shape (6-way) and colour (8-way) "
        "against the frozen text embeddings of the class names",
    )
    p.add_argument("--patch", type=int, default=d.vit_patch, help="vit only: patch size (px)")
    p.add_argument("--width", type=int, default=d.vit_width, help="vit only: tower width")
    p.add_argument("--layers", type=int, default=d.vit_layers, help="vit only: blocks")
    p.add_argument(
        "--init-from",
        default="",
        help="vit only: start the image tower from this exported model (a bundled name such as "
        "clipviz-shapes-vit, or an exported folder / run folder holding model/) with a fresh "
        "optimiser and schedule (default: a fresh tower)",
    )
    p.add_argument("--warmup", type=float, default=d.warmup_frac, help="warm-up share of steps")
    p.add_argument("--threads", type=int, default=d.threads)
    p.add_argument(
        "--export", default=None, help="bundled-model folder to write (default OUT/model)"
    )
    p.add_argument(
        "--eval-images", type=int, default=1000, help="images per evaluation set, 0: skip"
    )
    return p


def _command(argv: list[str] | None = None) -> str:
    return "python -m clipviz.train " + " ".join(sys.argv[1:] if argv is None else argv)


def _chain(cfg: TrainConfig, command: str) -> list[str]:
    """Every command that led to this model, oldest first (the init model's chain, then ours)."""
    earlier: list[str] = []
    if cfg.init_from:
        from clipviz.train.distill import init_meta

        meta = init_meta(cfg.init_from)
        earlier = list(meta.get("chain") or [meta.get("command", f"<unknown: {cfg.init_from}>")])
    return [*earlier, command]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.steps < 1 or args.pairs < args.batch_size:
        print(
            f"error: need --steps >= 1 and --pairs >= --batch-size, got steps={args.steps}, "
            f"pairs={args.pairs}, batch size={args.batch_size}",
            file=sys.stderr,
        )
        return 2
    from clipviz.train.evaluate import evaluate, format_table
    from clipviz.train.export import export, load_exported
    from clipviz.train.loop import train

    cfg = TrainConfig(
        steps=args.steps,
        seed=args.seed,
        n_pairs=args.pairs,
        batch_size=args.batch_size,
        lr=args.lr,
        shape_only_frac=args.shape_only,
        colour_only_frac=args.colour_only,
        variety_frac=args.variety,
        warmup_frac=args.warmup,
        threads=args.threads,
        arch=args.arch,
        teacher=args.teacher,
        distill_weight=args.distill,
        distill_varied=args.distill_varied,
        label_weight=args.label_loss,
        vit_patch=args.patch,
        vit_width=args.width,
        vit_layers=args.layers,
        init_from=args.init_from,
    )
    if cfg.init_from and cfg.arch != "vit":
        print("error: --init-from is for --arch vit only", file=sys.stderr)
        return 2
    if cfg.arch == "vit":
        from clipviz.train.distill import check_init, teacher_folder

        try:
            teacher_folder(cfg.teacher)
            if cfg.init_from:
                check_init(cfg)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    t0 = time.perf_counter()
    model, summary = train(cfg, args.out, minutes=args.minutes, stop_after=args.stop_after)
    summary["wall_seconds"] = round(time.perf_counter() - t0, 1)
    folder = Path(args.export) if args.export else Path(args.out) / "model"
    as_model = {"model_cfg": cfg.model_cfg(), "name": cfg.model_name()}
    command = _command(argv)
    meta = {"training": summary, "command": command, "chain": _chain(cfg, command)}
    export(model, folder, meta=meta, **as_model)
    print(json.dumps(summary, indent=2))
    if args.eval_images:
        loaded, _, tokenizer = load_exported(folder)
        results = evaluate(loaded, tokenizer, n=args.eval_images)
        summary["zero_shot"] = results
        export(model, folder, meta=meta, **as_model)
        print(format_table(results))
    print(f"exported to {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
