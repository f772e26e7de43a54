"""Source of notebooks/01_quickstart.ipynb (build it with: python tools/make_notebooks.py)."""
# ruff: noqa: B018, E402

# %% [markdown]
# # clipviz quickstart: a CLIP workbench in three cells
#
# [CLIP](https://openai.com/research/clip) models put images and text into one vector space: a
# picture of a red star and the words "a red star" land close together. That is all zero-shot
# classification is: embed every image once, embed one prompt per class, and give each image the
# class whose prompt is most similar.
#
# clipviz lets you *see* that happen. This notebook runs fully offline on the small CLIP model that
# ships inside clipviz (`clipviz-shapes`, trained by the project on synthetic coloured shapes) and
# on a few hundred generated shape images. Nothing is downloaded.

# %% [markdown]
# **1. Load the model.** `clipviz.load_model` takes any open_clip name and pretrained tag (see
# notebook 02); `"clipviz-shapes"` is the bundled one: no download, and it runs on any CPU.

# %%
import clipviz

model = clipviz.load_model("clipviz-shapes")
model.info

# %% [markdown]
# **2. Some images.** `clipviz.datasets.shapes(n)` draws `n` images of one shape each (circle,
# square, triangle, star, hexagon, cross) in one of eight colours, with captions and true labels.
# `to_imageset(label="shape")` wraps them as an `ImageSet` whose labels are the shape names; for
# your own photos you would write `clipviz.ImageSet.from_folder("my_photos/")` instead.

# %%
data = clipviz.datasets.shapes(300, seed=1)
images = data.to_imageset(label="shape")
data.labels.head()

# %% [markdown]
# **3. The workbench.** Give it the images, the model and the class names you want to tell apart.
# It embeds the images (once: the vectors are cached on disk), embeds a prompt per class, and shows
# every view linked together.

# %%
wb = clipviz.Workbench(
    images,
    model=model,
    classnames=["circle", "square", "triangle", "star", "hexagon", "cross"],
)
wb

# %% [markdown]
# ## How to read the workbench
#
# * **Prompts**: one class name per line (put into every template) or a free prompt in double
#   quotes (used verbatim); a template set (`single` is `"a photo of a {}."`, `simple` a short
#   set, `openai_imagenet` OpenAI's 80 ImageNet templates, or your own with `{}`); "ensemble
#   templates" averages a class's template embeddings into one vector. Edit and press **Apply**:
#   every view updates at once. The images are never re-embedded; only new prompt texts go
#   through the model. An optional prompt set B is scored against A in the metrics.
# * **Grid**: each image with its top predictions and their probabilities, paged. With true labels,
#   correct and wrong predictions are marked; tick "mistakes only" to see only the errors, or sort
#   by confidence (the least confident images are the interesting ones) or by similarity to one
#   prompt. Click an image to select it (shift/ctrl-click adds).
# * **Map**: images (dots, coloured by predicted or true label) and prompts (labelled markers) in
#   one 2-D projection of the shared space: PCA at once, then UMAP when it has been computed in the
#   background. Images of one class should cluster. Notice that the prompts sit apart from the
#   images: that is CLIP's *modality gap*. Tick "remove modality gap" to centre each modality and
#   see each prompt move next to the images it matches (notebook 04 measures the gap). Lasso or
#   box-select dots to select those images; hovering shows the image.
# * **Heatmap**: the cosine similarity of every image (rows) with every prompt (columns), rows
#   ordered by true label, by prediction, or as given. A good prompt set shows a clean block
#   diagonal when rows are ordered by label. Click a cell to select that image.
# * **Metrics**: top-1 and top-5 accuracy, mean per-class recall, per-class accuracy (A vs B when
#   two prompt sets are given) and the confusion matrix: which class gets mistaken for which.
# * **Search**: type any text ("a small yellow star") and the best-matching images come up in the
#   grid.
#
# A selection made in one view shows in all of them.
#
# ## Drive it from Python
#
# Everything the widgets do is also a Python handle: `wb.prompts`, `wb.selection`,
# `wb.predictions` (a `clipviz.Predictions`), `wb.metrics`, `wb.search(text)` and `wb.views` (each
# view can be displayed alone, e.g. `wb.views["map"]`). For example, select every mistake:

# %%
table = wb.predictions.to_pandas()  # one row per image: label, predicted, confidence, top-k
mistakes = table.query("not correct")
wb.selection = list(mistakes["id"])
print(f"{len(mistakes)} of {len(table)} images misclassified; now selected in every view")
mistakes.head()

# %% [markdown]
# Or change the prompts as if you had typed them. Add a seventh prompt that names a colour rather
# than a shape, and see which images it pulls away from their shape prompts: every prompt competes
# with every other for each image, so a prompt set is a classifier you design.

# %%
wb.prompts = [*wb.prompts, '"a yellow shape"']  # in double quotes: a free prompt, used verbatim
stolen = wb.predictions.to_pandas().query("predicted == 'a yellow shape'")
print(f"'a yellow shape' now wins {len(stolen)} images")
stolen[["id", "label", "predicted", "confidence"]].head()

# %% [markdown]
# ## Share it
#
# `wb.save_html(...)` writes a static snapshot (grid, map, heatmap, metrics) that opens in any
# browser without Python, for slides and course pages. This one lands next to the notebook.

# %%
from pathlib import Path

snapshot = Path("quickstart.html").resolve()
wb.save_html(snapshot)
print(f"snapshot written: {snapshot}")

# %% [markdown]
# ## Next
#
# * `02_your_own_images.ipynb`: a pretrained ViT-B-32 on your own photos.
# * `03_prompt_engineering.ipynb`: templates, ensembling and A/B prompt sets, measured.
# * `04_embedding_space.ipynb`: the joint map, the modality gap, neighbours and text search.
# * `05_train_your_own_clip.ipynb`: train a CLIP like this one from scratch on your laptop.
