"""Source of notebooks/06_where_does_clip_look.ipynb (build it with: python tools/make_notebooks.py)."""
# ruff: noqa: B018, E402

# %% [markdown]
# # Where does CLIP look?
#
# A zero-shot prediction says *what* an image shows. A saliency map says *where* the image made a
# prompt match: which pixels raise the cosine between the image and the prompt's text embedding.
# This notebook computes maps on the bundled model, compares the methods, and measures them
# against ground truth: every synthetic shape image knows where its shape is.
#
# 1. maps for a few prompts on one image;
# 2. the methods side by side: LayerCAM and Grad-CAM (ResNet), gradient x input and occlusion
#    (baselines);
# 3. how often each method points at the shape (the pointing game), measured live, against a
#    map that ignores the image (a centred Gaussian);
# 4. where they fail;
# 5. the same maps in the Workbench: the grid's "where" menu and the detail view.

# %%
import os

import numpy as np
import pandas as pd
from IPython.display import display

import clipviz
from clipviz.app.saliency import saliency_view
from clipviz.compute.saliency_metrics import centre_prior, mask_mass_ratio, pointing_hits
from clipviz.models.saliency import list_methods, saliency_batch

FAST = os.environ.get("CLIPVIZ_FAST") == "1"  # the test suite: fewer images
N = 12 if FAST else 200

model = clipviz.load_model("clipviz-shapes")
data = clipviz.datasets.shapes(N, seed=606)
SHAPES = clipviz.datasets.SHAPES

# %% [markdown]
# ## 1. One image, one map per prompt
#
# `clipviz.saliency(model, image, prompts)` returns one map per prompt, at the image's own size,
# scaled to [0, 1]. The true shape's prompt should light up the shape; other prompts show what
# in the image still resembles them.

# %%
image = data.images[0]
prompts = [f"a photo of a {s}." for s in SHAPES[:4]]
print("true shape:", data.labels["shape"][0])
maps = clipviz.saliency(model, image, prompts)
print(maps.shape, maps.dtype, float(maps.min()), float(maps.max()))
display(saliency_view(model, image, prompts, size=120))

# %% [markdown]
# ## 2. The methods differ
#
# `layercam` weighs every activation of an early ResNet stage (16 x 16 cells on this 64 px model)
# by its own positive gradient of the cosine, then smooths a little. `layercam-fused` (the
# default here, `method="auto"`) multiplies that map with the next stage's (8 x 8: where the
# shape is as a whole), and averages each over the image and its left-right and upside-down
# flips: the early edge detectors favour some sides of a shape, and the flips cancel that. `gradcam` weighs a whole channel by its mean gradient on a later stage (8 x 8):
# positive and negative gradients cancel, and on the 2 x 2 stage before the attention pool it
# points worse than chance. `grad-x-input` multiplies each pixel by its gradient (sharp but
# noisy); `occlusion` blurs squares and records how far the cosine drops (slow: 64 forward
# passes per image, but it asks the model directly).

# %%
true_prompt = [f"a photo of a {data.labels['shape'][0]}."]
for method in list_methods("resnet"):
    display(saliency_view(model, image, true_prompt, method=method, size=120))

# %% [markdown]
# ## 3. Measured: the pointing game
#
# For each image, the prompt naming its true shape. A hit is the map's maximum inside the
# shape's bounding box; the mass ratio is the share of the map inside the shape divided by the
# shape's share of the image (1 for a uniform map). Random pointing hits as often as the boxes
# cover the image. The shapes sit near the middle more often than not, so a map that ignores
# the image, a centred Gaussian, already points well: a method is worth something only where
# it beats that prior.

# %%
boxes = [g.box() for g in data.geometry]
masks = np.stack([g.mask() for g in data.geometry])
true_prompts = [[f"a photo of a {s}."] for s in data.labels["shape"]]
rows = {}
for method in list_methods("resnet"):
    m = np.concatenate(saliency_batch(model, data.images, true_prompts, method=method))
    rows[method] = {
        "pointing game": float(pointing_hits(m, boxes).mean()),
        "mass in mask / area": float(mask_mass_ratio(m, masks).mean()),
    }
chance = float(np.mean([(x1 - x0 + 1) * (y1 - y0 + 1) / 64**2 for x0, y0, x1, y1 in boxes]))
rows["random pointing"] = {"pointing game": chance, "mass in mask / area": 1.0}
prior = centre_prior(len(boxes), 64, 64)
rows["centre prior (ignores the image)"] = {
    "pointing game": float(pointing_hits(prior, boxes).mean()),
    "mass in mask / area": float(mask_mass_ratio(prior, masks).mean()),
}
results = pd.DataFrame(rows).T
results

# %% [markdown]
# ## 4. Where they fail
#
# A map cannot be sharper than the feature map it comes from: Grad-CAM's stage is 8 x 8 cells
# here, so a small shape is one or two cells. A model also looks at what it learned to use,
# which need not be the object: the edge between shape and background carries the shape, so
# maps often peak on the outline, just outside a tight box. Below, the share of hits per shape
# and size for the default method and for Grad-CAM.

# %%
by = {}
for method in ("auto", "gradcam"):
    m = np.concatenate(saliency_batch(model, data.images, true_prompts, method=method))
    by[method] = pointing_hits(m, boxes)
table = pd.DataFrame({**by, "size": data.labels["size"], "shape": data.labels["shape"]})
table.groupby(["size", "shape"])[["auto", "gradcam"]].mean().round(2)

# %% [markdown]
# ## 5. In the Workbench
#
# The grid's *where* menu overlays each visible image's map for its top-1 prompt (or one prompt
# you choose), computed for the page shown only and cached, so paging back costs nothing.
# Clicking one image shows it with one map per prompt, with a method selector;
# `wb.save_html(...)` keeps the overlays and the detail view that were shown.

# %%
wb = clipviz.Workbench(
    data.to_imageset("shape")
    if FAST
    else clipviz.datasets.shapes(24, seed=606).to_imageset("shape"),
    model=model,
    classnames=list(SHAPES),
    projection="pca",
    cache=False,
)
wb.views["grid"].where = "top-1"
wb.selection = [wb.ids[0]]
wb
