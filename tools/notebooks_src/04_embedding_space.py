"""Source of notebooks/04_embedding_space.ipynb (build it with: python tools/make_notebooks.py)."""
# ruff: noqa: B018, E402

# %% [markdown]
# # Inside the embedding space
#
# CLIP maps images and texts to unit vectors in one space (128 dimensions for the bundled model,
# 512 for ViT-B-32). Everything clipviz shows is read off that space: zero-shot is "which prompt is
# closest", search is "which images are closest to this text", the map is a 2-D picture of it.
# This notebook looks at the space itself:
#
# 1. the joint map of images and prompts, and how to read it;
# 2. the *modality gap*: images and texts live in two separate regions, measured here, and what
#    centring each modality does to it;
# 3. nearest neighbours (image -> images) and text -> image search.

# %%
import os

import numpy as np
import pandas as pd
from IPython.display import display
from PIL import Image, ImageDraw

import clipviz
from clipviz.compute import center_modalities, nearest

# The test suite sets CLIPVIZ_FAST=1: fewer images and PCA only (UMAP costs ~15 s of compilation
# the first time it runs in a process).
FAST = os.environ.get("CLIPVIZ_FAST") == "1"
N = 240 if FAST else 1200
METHOD = "pca" if FAST else "umap"

model = clipviz.load_model("clipviz-shapes")
data = clipviz.datasets.shapes(N, seed=4)
images = data.to_imageset(label="shape")
emb = clipviz.embed_images(model, images, progress=False)
SHAPES = clipviz.datasets.SHAPES
prompts = clipviz.embed_prompts(model, SHAPES, templates="single")
pred = clipviz.zero_shot(emb, prompts)
print(
    f"{len(emb)} images, {emb.vectors.shape[1]}-d vectors; zero-shot shape accuracy "
    f"{clipviz.evaluate(pred).acc1:.1%}"
)

# %% [markdown]
# ## 1. The joint map
#
# `clipviz.project` fits one 2-D layout to the image vectors and the prompt vectors together, so
# distances in the map (roughly) reflect distances in the space. PCA is exact and instant but
# linear; UMAP keeps local neighbourhoods and separates clusters better. Each view of the workbench
# also works alone: here `EmbeddingMap` shows the projection, images coloured by their true shape,
# prompts as labelled markers.


# %%
def show_map(projection, title):
    view = clipviz.views.EmbeddingMap(height=420)
    view.set_points(
        projection.image_xy,
        emb.ids,
        pred.predicted,
        projection.prompt_xy,
        [f"a photo of a {s}." for s in SHAPES],
        true_labels=emb.labels,
    )
    view.color_by = "true"
    view.figure.update_layout(title=title)
    return view


raw_map = clipviz.project(emb, prompts, method=METHOD)
show_map(raw_map, f"{METHOD.upper()} of images and prompts, as they are")

# %% [markdown]
# Images of one shape form clusters. The prompts, though, do not sit inside their clusters: they
# huddle together off to one side. That is not a bug of the projection, it is the space itself.

# %% [markdown]
# ## 2. The modality gap
#
# [Liang et al. (2022)](https://arxiv.org/abs/2203.02053) showed that CLIP's image vectors and text
# vectors occupy two narrow, separate cones. A matched image-caption pair is *relatively* close
# (closer than unmatched pairs), but every image is far from every text in absolute terms. We
# measure it with each image's own caption, embedded by the text tower:

# %%
img = emb.vectors
txt = model.encode_texts(data.captions)  # (N, D), one caption per image, L2-normalised


def gap_report(img, txt):
    rng = np.random.default_rng(0)
    shuffled = rng.permutation(len(txt))
    off = ~np.eye(len(img), dtype=bool)
    return {
        "distance between modality means": float(np.linalg.norm(img.mean(0) - txt.mean(0))),
        "cos(image, image), mean over pairs": float((img @ img.T)[off].mean()),
        "cos(text, text), mean over pairs": float((txt @ txt.T)[off].mean()),
        "cos(image, its own caption)": float(np.sum(img * txt, axis=1).mean()),
        "cos(image, a random caption)": float(np.sum(img * txt[shuffled], axis=1).mean()),
    }


img_c, txt_c = center_modalities(img, txt)
gap = pd.DataFrame({"raw": gap_report(img, txt), "centred": gap_report(img_c, txt_c)})
gap.style.format("{:.3f}")

# %%
raw_gap, centred_gap = gap.loc["distance between modality means"]
print(
    f"distance between the image mean and the text mean: {raw_gap:.2f} raw, {centred_gap:.2f} centred"
)

# %% [markdown]
# How to read the table: in the raw space, two unrelated images are more alike than an image and
# its own caption, and the two modality means are far apart: every similarity carries a large
# shared offset, and "matching" is a small margin on top of it. `center_modalities` subtracts each
# modality's mean and renormalises: the means (nearly) coincide, within-modality similarity drops
# to about zero, and what is left of an image-caption similarity is mostly the match itself.
# Zero-shot classification is hardly hurt by the gap: for one image it only compares prompts with
# each other, and the shared text offset adds the same amount to every prompt's score. What the gap
# distorts is any picture that puts both modalities on one map.
#
# The same centring, applied before projecting, puts each prompt inside the cluster it names. The
# workbench's "remove modality gap" checkbox does exactly this:

# %%
centred_map = clipviz.project(emb, prompts, method=METHOD, center=True)
centred_view = show_map(centred_map, f"{METHOD.upper()} after centring each modality")
centred_view

# %% [markdown]
# New prompts can be placed into an existing map without refitting it (`Projection.transform`):
# the workbench does this when you type, so the map never jumps. Here two colour-shape prompts
# join the centred map.

# %%
extra = ["a photo of a yellow star.", "a photo of a small blue square."]
extra_xy = centred_map.transform(model.encode_texts(extra), modality="text")
centred_view.update_prompts(
    np.vstack([centred_map.prompt_xy, extra_xy]),
    [f"a photo of a {s}." for s in SHAPES] + extra,
)
pd.DataFrame(extra_xy, index=extra, columns=["x", "y"])

# %% [markdown]
# ## 3. Neighbours and search
#
# Nearest neighbours are read in the full space, not in the map. A small helper draws a strip of
# images with their cosine similarity to the query.


# %%
def strip(indices, captions, size=80):
    """The images at ``indices`` side by side, each with a short caption underneath."""
    canvas = Image.new("RGB", (size * len(indices), size + 16), "white")
    draw = ImageDraw.Draw(canvas)
    for k, (i, caption) in enumerate(zip(indices, captions, strict=True)):
        canvas.paste(images.load(int(i)).resize((size, size)), (k * size, 0))
        draw.text((k * size + 3, size + 2), caption, fill="black")
    return canvas


query = 0
idx, scores = nearest(emb, emb.vectors[query], k=7, exclude=query)
print(f"query image: {data.captions[query]!r}; its 7 nearest images (cosine):")
strip([query, *idx], ["query"] + [f"cos {x:.3f}" for x in scores])

# %% [markdown]
# Text -> image search (`clipviz.search`) embeds the text with the text tower and ranks the images
# by cosine similarity. With the gap in place the scores are low in absolute terms (about 0.2-0.4), but the
# ranking is what matters.

# %%
row_of = {image_id: row for row, image_id in enumerate(emb.ids)}
for text in ["a photo of a yellow star", "a small pink circle on a dark background"]:
    hits = clipviz.search(emb, text, model=model, k=7)  # a DataFrame: rank, id, score, label
    print(text)
    display(strip([row_of[i] for i in hits["id"]], [f"cos {x:.3f}" for x in hits["score"]]))
hits
