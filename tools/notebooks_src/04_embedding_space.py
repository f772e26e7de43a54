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


def placement(projection, k=20):
    """For each prompt: the share of its k nearest images on the map that show its class."""
    labels = np.array(emb.labels)
    shares = {}
    for shape, xy in zip(SHAPES, projection.prompt_xy, strict=True):
        nearest_images = np.argsort(np.linalg.norm(projection.image_xy - xy, axis=1))[:k]
        shares[shape] = float((labels[nearest_images] == shape).mean())
    table = pd.Series(shares, name=f"own class among the {k} nearest images on the map")
    print(f"mean over prompts: {table.mean():.0%}")
    return table.to_frame().style.format("{:.0%}")


raw_map = clipviz.project(emb, prompts, method=METHOD)
show_map(raw_map, f"{METHOD.upper()} of images and prompts, as they are")

# %% [markdown]
# Each dot is an image, coloured by its true shape; each labelled marker a prompt. Hover a dot to
# see the image. Images of one shape should form a cluster; the question is where the prompts
# land: a prompt placed well is surrounded by images of its class.

# %%
placement(raw_map)

# %% [markdown]
# ## 2. The modality gap
#
# [Liang et al. (2022)](https://arxiv.org/abs/2203.02053) showed that CLIP's image vectors and text
# vectors occupy two separate narrow cones: in OpenAI's models, an image is typically more similar
# to an unrelated image than to its own caption, and a joint map shows the prompts as an island of
# their own. How large the gap is depends on the model and its training. We measure it for the
# model in hand, with each image's own caption embedded by the text tower:

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
raw, centred = gap["raw"], gap["centred"]
print(
    f"distance between the image mean and the text mean: {raw.iloc[0]:.2f} raw, "
    f"{centred.iloc[0]:.2f} centred\n"
    f"an image vs its own caption: {raw.iloc[3]:.2f}; vs an unrelated image: {raw.iloc[1]:.2f}; "
    f"vs a random caption: {raw.iloc[4]:.2f} (raw)"
)

# %% [markdown]
# How to read the table: the distance between the two modality means *is* the gap (0 would be no
# gap, up to 2 for opposite directions). Mean cosines over unrelated pairs show how much every
# similarity is an offset shared by the whole modality rather than content; the matched pair
# against a random caption is the signal that zero-shot and search use. `center_modalities`
# subtracts each modality's mean and renormalises: the means (nearly) coincide, unrelated pairs
# drop to a cosine of about zero, and what is left of an image-caption similarity is the match.
#
# Zero-shot classification is hardly hurt by a gap: for one image it only compares prompts with
# each other, and the shared text offset adds the same amount to every prompt's score. What a gap
# distorts is any picture that puts both modalities on one map. The same centring, applied before
# projecting, is the workbench's "remove modality gap" checkbox. Compare where the prompts land:

# %%
centred_map = clipviz.project(emb, prompts, method=METHOD, center=True)
centred_view = show_map(centred_map, f"{METHOD.upper()} after centring each modality")
display(centred_view)
placement(centred_map)

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
# by cosine similarity. Compare scores with each other, not with a fixed threshold: their level
# depends on the model and on its modality gap.

# %%
row_of = {image_id: row for row, image_id in enumerate(emb.ids)}
for text in ["a photo of a yellow star", "a small pink circle on a dark background"]:
    hits = clipviz.search(emb, text, model=model, k=7)  # a DataFrame: rank, id, score, label
    print(text)
    display(strip([row_of[i] for i in hits["id"]], [f"cos {x:.3f}" for x in hits["score"]]))
hits
