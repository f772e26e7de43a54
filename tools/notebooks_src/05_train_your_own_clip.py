"""Source of notebooks/05_train_your_own_clip.ipynb (build it with: python tools/make_notebooks.py)."""
# ruff: noqa: B018, E402

# %% [markdown]
# # Train your own CLIP
#
# The model bundled with clipviz was trained from scratch by the project, on a laptop-class CPU, on
# synthetic pictures of coloured shapes and their captions. This notebook trains one like it, in a
# few minutes, and lets you watch contrastive learning happen: the loss falling, zero-shot accuracy
# rising, and the embedding map of a fixed set of probe images organising itself, first by colour,
# then by shape.
#
# The recipe is the bundled model's (`clipviz.train`: architecture, optimiser, schedule, data);
# `python -m clipviz.train` runs the full 20-minute version with checkpoints. Here the loop is
# written out so you can read and change every line.

# %%
import dataclasses
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
import torch.nn.functional as F
from IPython.display import display
from plotly.subplots import make_subplots

import clipviz
from clipviz.datasets import COLOURS, SHAPES
from clipviz.train import PREPROCESS_CFG, TrainConfig
from clipviz.train.data import PairData, tokenize
from clipviz.train.export import export
from clipviz.train.loop import build_model, lr_at, make_optimizer

# The test suite sets CLIPVIZ_FAST=1 for a seconds-long run; the default is a real one (~4 min
# on 2 CPU cores). More steps learn shape better: the bundled model took 1500 steps of 256.
FAST = os.environ.get("CLIPVIZ_FAST") == "1"
cfg = TrainConfig(
    steps=20 if FAST else 600,
    batch_size=32 if FAST else 128,
    n_pairs=640 if FAST else 40_000,
    processes=1 if FAST else 2,
    seed=0,
)
EVAL_EVERY = 10 if FAST else 25
OUT = Path(tempfile.mkdtemp(prefix="my-shapes-clip-"))  # change to keep your model
torch.manual_seed(cfg.seed)
torch.set_num_threads(cfg.threads)
print(cfg)

# %% [markdown]
# ## The data
#
# `PairData` generates `n_pairs` (image, caption) pairs from the combinations allowed in training
# (the held-out colour-shape pairs never appear) and tokenises the captions. Each batch is a
# random set of pairs, flipped and rotated (which never changes a shape's name).

# %%
t0 = time.perf_counter()
pairs = PairData(
    cfg.n_pairs,
    cfg.seed,
    shape_only=cfg.shape_only_frac,
    colour_only=cfg.colour_only_frac,
    processes=cfg.processes,
)
print(f"{len(pairs)} pairs in {time.perf_counter() - t0:.1f} s, e.g.:")
for i in range(5):
    print("  ", pairs.captions[i])

# %% [markdown]
# ## The model and the loss
#
# An open_clip `CLIP` with a small ResNet image tower (64x64 input) and a 3-layer text transformer,
# both projecting to 128 dimensions, freshly initialised. The loss is CLIP's: in a batch of B pairs,
# each image must pick its own caption among the B captions, and each caption its own image, a
# cross-entropy over the B x B similarity matrix, in both directions. The learnable `scale` (the
# inverse temperature) sharpens the softmax as training goes on.

# %%
model = build_model(cfg.seed)
optimizer = make_optimizer(model, cfg)
print(f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters")


def clip_loss(image_features, text_features, scale):
    """Symmetric InfoNCE; the same as open_clip.ClipLoss on one process."""
    logits = scale * image_features @ text_features.T  # (B, B): image i vs caption j
    target = torch.arange(len(logits))  # the matching caption is on the diagonal
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


# %% [markdown]
# ## A probe to watch
#
# A fixed set of probe images (from seeds training never uses) is embedded every few steps. We
# record zero-shot accuracy for shape and for colour, and a 2-D PCA map of the probe vectors where
# each point is drawn in its true colour and with its true shape as the marker.

# %%
probe = clipviz.datasets.shapes(96 if FAST else 240, seed=12345, split="seen")
mean = torch.tensor(PREPROCESS_CFG["mean"]).view(1, 3, 1, 1)
std = torch.tensor(PREPROCESS_CFG["std"]).view(1, 3, 1, 1)
probe_x = torch.from_numpy(np.stack([np.asarray(im) for im in probe.images]))
probe_x = (probe_x.permute(0, 3, 1, 2).float() / 255 - mean) / std
shape_tokens = tokenize([f"a photo of a {s}." for s in SHAPES])
colour_tokens = tokenize([f"a photo of a {c} shape." for c in COLOURS])
true_shape = np.array([SHAPES.index(s) for s in probe.labels["shape"]])
true_colour = np.array([COLOURS.index(c) for c in probe.labels["colour"]])
SYMBOLS = {
    "circle": "circle",
    "square": "square",
    "triangle": "triangle-up",
    "star": "star",
    "hexagon": "hexagon",
    "cross": "cross",
}


@torch.no_grad()
def look(model):
    """Probe accuracies and a 2-D PCA of the probe image vectors."""
    model.eval()
    img = F.normalize(model.encode_image(probe_x), dim=-1)
    shapes_txt = F.normalize(model.encode_text(shape_tokens), dim=-1)
    colours_txt = F.normalize(model.encode_text(colour_tokens), dim=-1)
    model.train()
    acc_shape = float(((img @ shapes_txt.T).argmax(1).numpy() == true_shape).mean())
    acc_colour = float(((img @ colours_txt.T).argmax(1).numpy() == true_colour).mean())
    xy = clipviz.project(img.numpy(), method="pca", cache=False).image_xy
    return acc_shape, acc_colour, xy


# %% [markdown]
# ## Train, and watch
#
# The figure below updates while the cell runs: the loss (left; 4.85 = ln 128 is chance for a batch
# of 128), the probe's zero-shot accuracy (middle; chance is 1/6 for shape, 1/8 for colour) and the
# probe map (right).

# %%
live = go.FigureWidget(
    make_subplots(
        rows=1,
        cols=3,
        subplot_titles=("contrastive loss", "probe zero-shot accuracy", "probe map (PCA)"),
    )
)
live.add_scatter(name="loss", mode="lines", row=1, col=1)
live.add_scatter(name="shape acc", mode="lines+markers", row=1, col=2)
live.add_scatter(name="colour acc", mode="lines+markers", row=1, col=2)
live.add_scatter(
    name="probe",
    mode="markers",
    row=1,
    col=3,
    showlegend=False,
    marker={
        "color": list(probe.labels["colour"]),
        "size": 7,
        "symbol": [SYMBOLS[s] for s in probe.labels["shape"]],
    },
)
live.update_yaxes(range=[0, 1.02], row=1, col=2)
live.update_layout(height=360, legend={"orientation": "h", "y": -0.15})
display(live)

losses, evals, snapshots = [], [], {}
t0 = time.perf_counter()
for step in range(cfg.steps):
    if step % EVAL_EVERY == 0:
        acc_shape, acc_colour, xy = look(model)
        evals.append((step, acc_shape, acc_colour))
        snapshots[step] = xy
        with live.batch_update():
            steps_e, shape_e, colour_e = zip(*evals, strict=True)
            live.data[1].x, live.data[1].y = steps_e, shape_e
            live.data[2].x, live.data[2].y = steps_e, colour_e
            live.data[3].x, live.data[3].y = xy[:, 0], xy[:, 1]
    for group in optimizer.param_groups:
        group["lr"] = lr_at(step, cfg)
    images, tokens = pairs.batch(step, cfg.batch_size, cfg.seed)
    image_features, text_features, scale = model(images, tokens)
    loss = clip_loss(image_features, text_features, scale)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    with torch.no_grad():  # as in CLIP: the scale stays at most 100
        model.logit_scale.clamp_(0, np.log(100))
    losses.append(loss.item())
    if step % 5 == 0 or step == cfg.steps - 1:
        live.data[0].x, live.data[0].y = list(range(len(losses))), losses

acc_shape, acc_colour, xy = look(model)
evals.append((cfg.steps, acc_shape, acc_colour))
snapshots[cfg.steps] = xy
minutes = (time.perf_counter() - t0) / 60
print(
    f"{cfg.steps} steps in {minutes:.1f} min; loss {losses[0]:.2f} -> {losses[-1]:.2f}; "
    f"probe shape accuracy {acc_shape:.0%}, colour {acc_colour:.0%}; "
    f"scale {model.logit_scale.exp().item():.1f}"
)

# %% [markdown]
# ## The map, organising
#
# Four moments of the run side by side. At initialisation the probe points are a shapeless cloud.
# Colour is the easier signal (a mean over pixels nearly gives it away), so points usually sort
# into colour clusters first; shape needs more steps, and as it is learned, markers of one shape
# gather together. The table says when each skill arrived in this run.

# %%
moments = sorted(snapshots)
picked = [moments[round(i * (len(moments) - 1) / 3)] for i in range(4)]
grid = make_subplots(rows=1, cols=4, subplot_titles=[f"step {s}" for s in picked])
for col, s in enumerate(picked, start=1):
    xy = snapshots[s]
    grid.add_scatter(
        x=xy[:, 0],
        y=xy[:, 1],
        mode="markers",
        row=1,
        col=col,
        showlegend=False,
        marker={
            "color": list(probe.labels["colour"]),
            "size": 6,
            "symbol": [SYMBOLS[t] for t in probe.labels["shape"]],
        },
    )
grid.update_xaxes(showticklabels=False)
grid.update_yaxes(showticklabels=False)
grid.update_layout(height=300)
grid.show()

history = pd.DataFrame(evals, columns=["step", "shape acc", "colour acc"]).set_index("step")
for skill in history.columns:
    reached = history.index[history[skill] >= 0.9]
    when = f"step {reached[0]}" if len(reached) else "not within this run"
    print(f"{skill} first reached 90% at {when}")
history.style.format("{:.0%}")

# %% [markdown]
# ## Use it in clipviz
#
# `export` writes the model in the folder format open_clip reads (a config JSON and fp16
# safetensors), exactly like the bundled model. `clipviz.load_model("local-dir:<folder>")` loads such a folder, and from
# there every clipviz tool works on your model. Compare it with the bundled one on fresh images:

# %%
folder = export(model, OUT / "my-shapes-clip", meta={"steps": cfg.steps, "notebook": "05"})
mine = clipviz.load_model(f"local-dir:{folder}")
bundled = clipviz.load_model("clipviz-shapes")

test = clipviz.datasets.shapes(100 if FAST else 600, seed=777, split="seen")
rows = {}
for name, m in [("your model", mine), ("bundled model", bundled)]:
    emb = clipviz.embed_images(m, test.to_imageset(label="shape"), cache=False, progress=False)
    row = {}
    for label, classes in [("shape", SHAPES), ("colour", COLOURS)]:
        emb = dataclasses.replace(emb, labels=test.label_strings(label))
        pred = clipviz.zero_shot(emb, clipviz.embed_prompts(m, classes, templates="single"))
        row[f"{label} acc1"] = clipviz.evaluate(pred).acc1
    rows[name] = row
pd.DataFrame(rows).T.style.format("{:.1%}")

# %% [markdown]
# To keep going: raise `steps` (the bundled model used 1500 steps of batch 256, about 20 minutes
# on 2 cores), or run the full recipe with checkpoints and resume:
#
# ```bash
# python -m clipviz.train --out runs/shapes --steps 2000 --pairs 80000 --variety 0.5 --seed 0   # see --help
# ```
#
# and open your model in the workbench:
#
# ```python
# clipviz.Workbench(test.to_imageset(label="shape"), model=mine, classnames=SHAPES)
# ```
