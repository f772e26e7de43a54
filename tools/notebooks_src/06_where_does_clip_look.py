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
# 2. the methods side by side: Grad-CAM (ResNet), gradient x input and occlusion (baselines);
# 3. how often each method points at the shape (the pointing game), measured live;
# 4. where they fail.

# %%
import os

import numpy as np
import pandas as pd
from IPython.display import display

import clipviz
from clipviz.app.saliency import saliency_view
from clipviz.compute.saliency_metrics import mask_mass_ratio, pointing_hits
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
# `gradcam` weighs a late ResNet stage's channels by the gradient of the cosine (coarse: an 8 x 8
# grid on this 64 px model); `grad-x-input` multiplies each pixel by its gradient (sharp but
# noisy); `occlusion` greys out squares and records how far the cosine drops (slow: 64 forward
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
# cover the image.

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
results = pd.DataFrame(rows).T
results

# %% [markdown]
# ## 4. Where they fail
#
# The images a method misses most often are small shapes: the model's late feature maps are
# only a few cells across, so a map cannot be sharper than a cell. A model also looks at what
# it learned to use, which need not be the object: the edge between shape and background
# carries the shape, so maps often peak on the outline, just outside a tight box.

# %%
gradcam_maps = np.concatenate(saliency_batch(model, data.images, true_prompts, method="gradcam"))
hits = pointing_hits(gradcam_maps, boxes)
misses = pd.DataFrame(
    {"hit": hits, "size": data.labels["size"], "shape": data.labels["shape"]}
).groupby("size")["hit"].mean()
print("Grad-CAM pointing by shape size:")
misses
