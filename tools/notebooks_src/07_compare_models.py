"""Source of notebooks/07_compare_models.ipynb (build it with: python tools/make_notebooks.py)."""
# ruff: noqa: B018, E402

# %% [markdown]
# # Comparing two CLIP models: where they disagree, and whether their probabilities mean anything
#
# Researchers compare models all the time: a fine-tune against its base, fp16 against fp32, this
# checkpoint against the last. Accuracy says *how much* they differ; this notebook looks at
# *where* and *why*, with three tools:
#
# - **disagreements**: images whose top-1 label differs between model A and model B;
# - **neighbour overlap** (the Embedding Comparator's measure): for each image, the share of its
#   10 nearest neighbours that both models agree on. 1 means B sees the image among the same
#   company as A, 0 among strangers;
# - **calibration**: when a model says 90%, is it right 90% of the time? The expected calibration
#   error (ECE) measures the gap, and *temperature scaling* (one number, fitted on labelled
#   images) usually closes most of it.
#
# Until a second bundled model exists, model B is an **early checkpoint**: the bundled model's
# architecture trained for a few hundred steps, right here, with `clipviz.train`. Everything runs
# offline on the CPU.

# %%
import os
import tempfile
from pathlib import Path

import pandas as pd

import clipviz
from clipviz.compute.calibration import nll
from clipviz.datasets import COLOURS, SHAPES
from clipviz.train import TrainConfig
from clipviz.train.export import export
from clipviz.train.loop import train

# The test suite sets CLIPVIZ_FAST=1 for a seconds-long run; the default is ~3 min on 2 cores.
FAST = os.environ.get("CLIPVIZ_FAST") == "1"
cfg = TrainConfig(
    steps=20 if FAST else 300,
    batch_size=32 if FAST else 128,
    n_pairs=640 if FAST else 30_000,
    processes=1 if FAST else 2,
    checkpoint_every=1000,
)
OUT = Path(tempfile.mkdtemp(prefix="clipviz-compare-"))
bundled = clipviz.load_model("clipviz-shapes")
torch_model, summary = train(cfg, OUT / "run")
early = clipviz.load_model(f"local-dir:{export(torch_model, OUT / 'early')}")
print(f"model B: {cfg.steps} steps of {cfg.batch_size} pairs (the bundled model had 1500 of 256)")

# %% [markdown]
# ## The two models on the same images
#
# `clipviz.Comparison(images, model_a, model_b, classnames=...)` embeds the images with each
# model, scores the same prompts under both, and lays the two sides next to each other: a map
# per model (select in one, the same images light up in the other), a grid per model, the
# neighbour-overlap histogram (drag along it to select), the reliability diagram and the metrics
# with the per-class difference. One prompt panel drives both sides.

# %%
data = clipviz.datasets.shapes(120 if FAST else 400, seed=7)
images = data.to_imageset(label="shape")
cmp = clipviz.Comparison(images, bundled, early, names=("bundled", "early"), classnames=SHAPES)
cmp

# %% [markdown]
# Per class, accuracy of A and B and the difference (B - A). The last row is overall top-1.

# %%
per_class = cmp.per_class()
per_class.round(3)

# %% [markdown]
# ## Where they disagree
#
# `cmp.disagreements` marks the images whose top-1 labels differ; `disagreements_only` shows only
# those in both grids, the most changed neighbourhoods first. Which true classes do they come
# from, and what does the early model call them?

# %%
cmp.disagreements_only = True
disagree = cmp.disagreements
table = pd.DataFrame(
    {
        "true": cmp.labels,
        "bundled": cmp.a.predictions.predicted,
        "early": cmp.b.predictions.predicted,
    }
)[disagree]
print(f"{int(disagree.sum())} of {len(cmp.ids)} images get different labels")
pd.crosstab(table["true"], table["early"])

# %% [markdown]
# **Why?** A contrastive model learns the easiest signal first. Training trials on this data found
# colour learned long before shape. Measure it here: the same images, scored against the eight
# colour names instead of the six shapes, by both models.

# %%
colour_images = data.to_imageset(label="colour")
colour_cmp = clipviz.Comparison(
    colour_images, bundled, early, names=("bundled", "early"), classnames=COLOURS
)
by_task = pd.DataFrame(
    {
        "shape acc1": [cmp.a.metrics.acc1, cmp.b.metrics.acc1],
        "colour acc1": [colour_cmp.a.metrics.acc1, colour_cmp.b.metrics.acc1],
    },
    index=["bundled", "early"],
)
by_task.round(3)

# %% [markdown]
# ## Whose neighbourhoods changed?
#
# The histogram counts images by neighbour overlap. Selecting its left end (here from Python;
# in the widget, drag a box along the x axis) selects images whose 10 nearest neighbours are
# mostly different under the early model: the maps and grids show them.

# %%
changed = cmp.select_overlap(0.0, 0.1)
print(f"mean overlap {cmp.overlap.mean():.2f}; {len(changed)} images share <= 10% of neighbours")
cmp.views["overlap"]

# %% [markdown]
# ## Calibration before and after temperature
#
# Each side's probabilities are `softmax(scale * cosine similarity)`, with the scale the model
# learned. `cmp.fit_temperature()` finds, per model, the scale that minimises the negative
# log-likelihood (NLL) of the true labels (a 1-D convex problem) and re-scores live: the grids,
# the reliability diagram and the ECE in the summary line update. Accuracy cannot change: a
# positive scale keeps every ranking.

# %%
before = {r.name: (r.predictions.logit_scale, r.calibration.ece, r.metrics.acc1) for r in cmp.runs}
fitted = cmp.fit_temperature()
rows = {}
for run in cmp.runs:
    scale0, ece0, acc0 = before[run.name]
    rows[run.name] = {
        "learned scale": scale0,
        "fitted scale": run.predictions.logit_scale,
        "ECE before": ece0,
        "ECE after": run.calibration.ece,
        "NLL before": nll(run.raw, scale0),
        "NLL after": nll(run.raw, run.predictions.logit_scale),
        "acc1 (unchanged)": acc0,
    }
calibration_table = pd.DataFrame(rows).T
calibration_table.round(3)

# %%
cmp.views["reliability"]

# %% [markdown]
# Bars below the dashed diagonal mean over-confidence, above it under-confidence. Fitting the
# temperature on the same images it is judged on flatters it; with real data, fit it on a
# held-out labelled split and then use that scale.
#
# ## Export
#
# Metrics go out as CLIP_benchmark writes them (`clip_benchmark build` can put them in the same
# CSV as its own runs) and predictions as Parquet, one pair of files per side.

# %%
paths = cmp.export(OUT / "export")
print("\n".join(str(p.name) for p in paths))
(OUT / "export" / "bundled_metrics.json").read_text()[:300]
