"""Source of notebooks/02_your_own_images.ipynb (build it with: python tools/make_notebooks.py)."""
# ruff: noqa: B018, E402

# %% [markdown]
# # Your own images with a pretrained CLIP
#
# The bundled `clipviz-shapes` model only knows coloured shapes. For real photos you want a model
# trained on real photos, such as OpenAI's ViT-B-32 (any open_clip name and pretrained tag works:
# `open_clip.list_pretrained()` lists them). This notebook:
#
# 1. loads ViT-B-32 with OpenAI's weights, or, when they cannot be had (offline, air-gapped, CI),
#    says so, tells you how to get them, and carries on with the bundled model;
# 2. embeds a folder of photos (yours, or a small one made here from clipviz's sample photos);
# 3. classifies and searches them, and opens the workbench on them.
#
# Set `PHOTO_FOLDER` to a folder of your own images; sub-folder names become true labels
# (`pets/cat/1.jpg` is labelled `cat`), so metrics appear when your folder is organised that way.

# %%
from pathlib import Path

MODEL_NAME, PRETRAINED = "ViT-B-32", "openai"
PHOTO_FOLDER = None  # e.g. Path.home() / "Pictures" / "pets"

# %% [markdown]
# ## 1. The model
#
# The weights are about 350 MB, downloaded once into the Hugging Face cache. clipviz never hands
# you a model with random weights: when the weights cannot be had it raises
# `clipviz.models.WeightsUnavailableError`, whose message says how to get them. We catch exactly
# that error and fall back to the bundled model, so the rest of the notebook runs either way.

# %%
import clipviz
from clipviz.models import WeightsUnavailableError

try:
    model = clipviz.load_model(MODEL_NAME, pretrained=PRETRAINED)
    PRETRAINED_OK = True
except WeightsUnavailableError as err:
    PRETRAINED_OK = False
    print(f"Pretrained weights for {MODEL_NAME} ({PRETRAINED}) are not available here.\n")
    print(f"How to get them: {err}\n")
    print(
        "Continuing with the bundled offline model 'clipviz-shapes'. It has only ever seen"
        " synthetic coloured shapes, so its answers on real photos are close to guesses: what"
        " follows shows every step working, not a good photo classifier."
    )
    model = clipviz.load_model("clipviz-shapes")
model.info

# %% [markdown]
# ## 2. The photos
#
# `clipviz.datasets.photos()` holds the royalty-free photos that scikit-image bundles (an
# astronaut, a cat, a cup of coffee, a rocket, ...), each with a human label, author and licence
# (credit the authors of CC BY photos when you publish them).

# %%
photos = clipviz.datasets.photos()
photos.to_pandas()[["id", "label", "description", "author", "licence"]]

# %% [markdown]
# Without a folder of your own, we write those photos into a temporary folder laid out the way
# `ImageSet.from_folder` reads labels (one sub-folder per label), and add one file that is not an
# image at all, to show what happens to files clipviz cannot read: they are skipped and reported,
# never fatal.

# %%
import tempfile

if PHOTO_FOLDER is None:
    PHOTO_FOLDER = Path(tempfile.mkdtemp(prefix="clipviz-photos-"))
    for i in range(len(photos)):
        label_dir = PHOTO_FOLDER / photos.labels[i]
        label_dir.mkdir(exist_ok=True)
        photos.load(i).save(label_dir / f"{photos.ids[i]}.jpg".replace("/", "_"), quality=90)
    (PHOTO_FOLDER / photos.labels[0] / "notes.jpg").write_text("not a picture")

images = clipviz.ImageSet.from_folder(PHOTO_FOLDER)
images

# %% [markdown]
# ## 3. Embed once, reuse forever
#
# `embed_images` runs the image tower in batches with a progress bar and stores every vector in
# an on-disk cache keyed by the model and the image *content*: a second run, or the same photo
# under another name, costs nothing.

# %%
import time

t0 = time.perf_counter()
emb = clipviz.embed_images(model, images)
t1 = time.perf_counter()
emb_again = clipviz.embed_images(model, images, progress=False)
t2 = time.perf_counter()
print(f"{len(emb)} images embedded in {t1 - t0:.2f} s; again from the cache in {t2 - t1:.3f} s")
for item, reason in emb.skipped:
    print(f"skipped {item}: {reason}")

# %% [markdown]
# ## 4. Zero-shot classification
#
# The class names are the folder names. `zero_shot` returns every probability; `to_pandas()` shows
# the top guesses per image, and `evaluate` scores them against the true labels.

# %%
classnames = sorted(set(emb.labels))
prompts = clipviz.embed_prompts(model, classnames, templates="openai_imagenet")
pred = clipviz.zero_shot(emb, prompts, k=3)
pred.to_pandas()[["id", "label", "predicted", "confidence", "top2", "top3"]]

# %%
metrics = clipviz.evaluate(pred)
print(f"top-1 accuracy {metrics.acc1:.0%} over {len(classnames)} classes ({model.info.name})")

# %% [markdown]
# ## 5. Text search
#
# Any sentence can be a query: the images are ranked by cosine similarity to its embedding.

# %%
hits = clipviz.search(emb, "a photo of an animal", model=model, k=3)
hits

# %% [markdown]
# ## 6. The workbench on your photos
#
# The same linked views as in the quickstart. The image vectors come from the cache, so this is
# quick. Try free prompts such as "something you can eat" or "a machine".

# %%
wb = clipviz.Workbench(images, model=model, classnames=classnames)
wb
