"""Source of notebooks/07_compare_models.ipynb (build it with: python tools/make_notebooks.py)."""
# ruff: noqa: B018, E402

# %% [markdown]
# # Comparing two CLIP models: where they disagree, and whether their probabilities mean anything
#
# Researchers compare models all the time: a ViT against a ResNet, a fine-tune against its base,
# fp16 against fp32, this checkpoint against the last. Accuracy says *how much* they differ; this
# notebook looks at *where* and *why*, with three tools:
#
# - **disagreements**: images whose top-1 label differs between model A and model B;
# - **neighbour overlap** (the Embedding Comparator's measure): for each image, the share of its
#   10 nearest neighbours that both models agree on. 1 means B sees the image among the same
#   company as A, 0 among strangers;
# - **calibration**: when a model says 90%, is it right 90% of the time? The expected calibration
#   error (ECE) measures the gap, and *temperature scaling* (one number, fitted on labelled
#   images) usually closes most of it.
#
# The two models are the ones clipviz bundles: **`clipviz-shapes`**, a small ResNet CLIP, and
# **`clipviz-shapes-vit`**, a ViT image tower distilled from it that shares its text tower (see
# `docs/model_card_vit.md`). Everything runs offline on the CPU.

# %%
import os
import tempfile
from pathlib import Path

import pandas as pd

import clipviz
from clipviz.compute.calibration import nll
from clipviz.datasets import HELD_OUT, SHAPES
from clipviz.datasets.redrawn import redrawn_shapes

# The test suite sets CLIPVIZ_FAST=1 for fewer images; the default takes about a minute.
FAST = os.environ.get("CLIPVIZ_FAST") == "1"
N = 240 if FAST else 600
OUT = Path(tempfile.mkdtemp(prefix="clipviz-compare-"))
resnet = clipviz.load_model("clipviz-shapes")
vit = clipviz.load_model("clipviz-shapes-vit")

# %% [markdown]
# ## The two models on the same images
#
# `clipviz.Comparison(images, model_a, model_b, classnames=...)` embeds the images with each
# model, scores the same prompts under both, and lays the two sides next to each other: a map
# per model (select in one, the same images light up in the other), a grid per model, the
# neighbour-overlap histogram (drag along it to select), the reliability diagram and the metrics
# with the per-class difference. One prompt panel drives both sides.

# %%
data = clipviz.datasets.shapes(N, seed=7)
images = data.to_imageset(label="shape")
cmp = clipviz.Comparison(images, resnet, vit, names=("resnet", "vit"), classnames=SHAPES)
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
# those in both grids, the most changed neighbourhoods first. Which images are they, and what
# does the ViT call them?

# %%
cmp.disagreements_only = True
disagree = cmp.disagreements
combo = [f"{c} {s}" for c, s in zip(data.labels["colour"], data.labels["shape"], strict=True)]
table = pd.DataFrame(
    {
        "true": cmp.labels,
        "combination": combo,
        "resnet": cmp.a.predictions.predicted,
        "vit": cmp.b.predictions.predicted,
    }
)[disagree]
print(f"{int(disagree.sum())} of {len(cmp.ids)} images get different labels")
pd.crosstab(table["true"], table["vit"])

# %% [markdown]
# **Why?** Both models were trained on captions that never pair six colour-shape combinations
# (`clipviz.datasets.HELD_OUT`, for example a blue circle). The ResNet still names the shape of a
# blue circle; the ViT, which learned shape from the ResNet's embeddings of the *seen*
# combinations, often answers with a seen shape of the same colour. Count how many of the
# disagreements are held-out combinations, against their share of all images:

# %%
held_out = {f"{c} {s}" for c, s in HELD_OUT}
share_all = sum(c in held_out for c in combo) / len(combo)
share_disagree = table["combination"].isin(held_out).mean() if len(table) else 0.0
print(f"held-out combinations: {share_all:.0%} of all images, {share_disagree:.0%} of disagreements")

# %% [markdown]
# A second question a model comparison should ask: does the ranking hold on other data? The same
# prompts on shapes drawn by an **independent renderer** (`clipviz.datasets.redrawn`: outlines,
# rotations, gradients, cut-off shapes, JPEG; never used in training):

# %%
other = redrawn_shapes(N, seed=7).to_imageset(label="shape")
other_cmp = clipviz.Comparison(other, resnet, vit, names=("resnet", "vit"), classnames=SHAPES)
by_task = pd.DataFrame(
    {
        "shape acc1, own renderer": [cmp.a.metrics.acc1, cmp.b.metrics.acc1],
        "shape acc1, second renderer": [other_cmp.a.metrics.acc1, other_cmp.b.metrics.acc1],
    },
    index=["resnet", "vit"],
)
by_task.round(3)

# %% [markdown]
# The ViT gives up more on the second renderer: it learned the ResNet's shape on the drawings it
# was shown, and less of its robustness to other drawing code.

# %% [markdown]
# ## Whose neighbourhoods changed?
#
# The histogram counts images by neighbour overlap. Selecting its left end (here from Python;
# in the widget, drag a box along the x axis) selects images whose 10 nearest neighbours changed
# most under the ViT, here the lowest tenth: the maps and grids show them.

# %%
low = float(pd.Series(cmp.overlap).quantile(0.1))
changed = cmp.select_overlap(0.0, low)
print(f"mean overlap {cmp.overlap.mean():.2f}; {len(changed)} images share <= {low:.0%} of neighbours")
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
(OUT / "export" / "resnet_metrics.json").read_text()[:300]
