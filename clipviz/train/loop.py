"""The contrastive training loop: ClipLoss, AdamW, warm-up + cosine, checkpoints that resume."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from clipviz.train.config import MODEL_CFG, TrainConfig

CHECKPOINT = "checkpoint.pt"


def build_model(seed: int, model_cfg: dict[str, Any] | None = None) -> Any:
    """A freshly initialised open_clip CLIP (default: the bundled ResNet architecture)."""
    import open_clip
    import torch

    torch.manual_seed(seed)
    return open_clip.CLIP(**(model_cfg or MODEL_CFG))


def make_optimizer(model: Any, cfg: TrainConfig) -> Any:
    """AdamW with weight decay on weight matrices only; frozen parameters are left out."""
    import torch

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        # open_clip's own exclusion rule (norms, biases, embeddings, logit scale)
        skip = p.ndim < 2 or any(k in name for k in ("bn", "ln", "bias", "embed", "logit_scale"))
        (no_decay if skip else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=1e-6)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up over ``warmup_frac`` of the steps, then cosine to zero."""
    warm = max(1, int(cfg.warmup_frac * cfg.steps))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    t = (step - warm) / max(1, cfg.steps - warm)
    return 0.5 * cfg.lr * (1 + math.cos(math.pi * min(1.0, t)))


def save_checkpoint(
    out: Path, model: Any, opt: Any, step: int, cfg: TrainConfig, log: list
) -> None:
    """Write atomically (temp file then rename) so an interrupted save never corrupts a run."""
    import torch

    # only tensors and plain containers/numbers: the checkpoint loads with weights_only=True
    state = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "step": step,
        "config": cfg.as_dict(),
        "log": log,
        "torch_rng": torch.get_rng_state(),
    }
    tmp = out / (CHECKPOINT + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, out / CHECKPOINT)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a run's checkpoint with ``weights_only=True``: a planted pickle never runs.

    Raises
    ------
    clipviz.models.UnsafeCheckpointError
        The file holds pickled Python objects besides tensors (not written by this loop).
    """
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        from clipviz.models._errors import UnsafeCheckpointError

        # `from None`: torch's message advises weights_only=False, which would run the payload
        raise UnsafeCheckpointError(
            f"{str(path)!r} holds pickled Python objects besides tensors, so it was not loaded "
            "(this training loop never writes such files); delete it or use another --out."
        ) from None


class ContrastiveStep:
    """The ResNet model's objective: CLIP's contrastive loss between images and their captions."""

    def __init__(self, model: Any):
        import open_clip

        self.model = model
        self.loss_fn = open_clip.ClipLoss()

    def __call__(self, images: Any, tokens: Any, index: Any) -> tuple[Any, dict[str, float]]:
        """``(loss, parts)`` of a batch (``index``: its pairs); parts are logged (none here)."""
        img_f, txt_f, scale = self.model(images, tokens)
        return self.loss_fn(img_f, txt_f, scale), {}


def resume(ckpt: Path, cfg: TrainConfig, model: Any, opt: Any) -> tuple[int, list]:
    """Load ``ckpt`` (if it exists) into ``model`` and ``opt``: ``(start_step, log)``.

    Raises
    ------
    ValueError
        The checkpoint was written with another recipe.
    """
    import torch

    if not ckpt.exists():
        return 0, []
    state = load_checkpoint(ckpt)
    # from_dict fills fields added since the checkpoint was written with their defaults
    if TrainConfig.from_dict(state["config"]) != cfg:
        raise ValueError(
            f"{ckpt} was written with a different recipe ({state['config']}); "
            f"use another --out folder or the same options ({cfg.as_dict()})."
        )
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    if "torch_rng" in state:  # nothing random in a step today; kept so a resume stays exact
        torch.set_rng_state(state["torch_rng"])
    return state["step"], state["log"]


def train(
    cfg: TrainConfig,
    out: str | os.PathLike,
    *,
    minutes: float | None = None,
    stop_after: int | None = None,
    progress=True,
) -> tuple[Any, dict[str, Any]]:
    """Train (or resume from ``out/checkpoint.pt``) and return ``(model, summary)``.

    Parameters
    ----------
    cfg : TrainConfig
        The recipe. A resumed run must use the same recipe as the checkpoint.
    out : path
        Run folder: checkpoint, ``log.json``.
    minutes : float, optional
        Stop early (with a checkpoint) after this much wall time.
    stop_after : int, optional
        Stop early (with a checkpoint) once this many steps are done, the schedule still that
        of ``cfg.steps``: reproduces exactly a run that ``minutes`` stopped at that step.
    """
    import torch
    from tqdm.auto import tqdm

    from clipviz.train.data import PairData

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.threads)
    t0 = time.perf_counter()
    data = PairData(
        cfg.n_pairs,
        cfg.seed,
        shape_only=cfg.shape_only_frac,
        colour_only=cfg.colour_only_frac,
        variety=cfg.variety_frac,
        processes=cfg.processes,
    )
    data_s = time.perf_counter() - t0
    if cfg.arch == "vit":
        from clipviz.train.distill import DistillStep

        objective = DistillStep(cfg, data)
    else:
        objective = ContrastiveStep(build_model(cfg.seed))
    model = objective.model
    opt = make_optimizer(model, cfg)
    start, log = resume(out / CHECKPOINT, cfg, model, opt)
    model.train()
    t1 = time.perf_counter()
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, disable=not progress)
    done = start
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        images, tokens = data.batch(step, cfg.batch_size, cfg.seed)
        loss, parts = objective(images, tokens, data.batch_indices(step, cfg.batch_size, cfg.seed))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():  # as in CLIP: keep the temperature above 1/100
            model.logit_scale.clamp_(0, math.log(100))
        log.append([step, round(loss.item(), 5), *(round(v, 5) for v in parts.values())])
        shown = {k: f"{v:.3f}" for k, v in parts.items()}
        bar.set_postfix(
            loss=f"{loss.item():.3f}", scale=f"{model.logit_scale.exp().item():.1f}", **shown
        )
        done = step + 1
        late = minutes is not None and time.perf_counter() - t0 > minutes * 60
        late = late or (stop_after is not None and done >= stop_after)
        if done % cfg.checkpoint_every == 0 or done == cfg.steps or late:
            save_checkpoint(out, model, opt, done, cfg, log)
        if late:
            break
    train_s = time.perf_counter() - t1
    summary = {
        "steps_done": done,
        "steps": cfg.steps,
        "resumed_from": start,
        "data_seconds": round(data_s, 1),
        "train_seconds": round(train_s, 1),
        "steps_per_second": round((done - start) / max(train_s, 1e-9), 3),
        "final_loss": log[-1][1] if log else None,
        "config": cfg.as_dict(),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    model.eval()
    return model, summary
